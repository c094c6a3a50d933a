package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/usherlb/usher/internal/pki"
)

// The HTTP API over TLS. With api_tls (on by default when the tls block is
// set and the API listens on an address other than loopback, see
// validateAPI) the API serves HTTPS with the node's certificate of the tls
// block, read from the same pki.Store as Raft's at every handshake, so a
// certificate reloaded on SIGHUP applies to the next connection. Clients
// present no certificate: the API tokens say who may do what.
//
// A node certificate names its node and farm in a URI (usher://farm/node/
// name), which crypto/tls's host name check does not read, so a client
// checks the chain itself (APIClientTLS): it must lead to the farm's CA and
// name a node of that farm and, when the client knows which node it means
// to reach, that node. A follower forwarding a drain requires the
// certificate of the node Raft knows as the leader; an address forged in
// gossip therefore gets a TLS handshake that fails, never the request or
// its token.

// ErrAPICertificate is wrapped by the error of a connection whose server
// did not prove the certificate APIClientTLS asks for.
var ErrAPICertificate = errors.New("the API's certificate is not the one expected")

// apiServerTLS returns the API server's TLS configuration: TLS 1.3 with
// the node's current certificate from store.
func apiServerTLS(store *pki.Store) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return store.Certificate(), nil
		},
	}
}

// APIClientTLS returns the TLS configuration of a client of an agent's
// API: the server's certificate chain must verify against v's farm CA at
// the time of the handshake and name a node of v's farm, and, when node is
// not empty, name node. A failed check fails the handshake with an error
// wrapping ErrAPICertificate, before any request is sent.
func APIClientTLS(v *pki.Verifier, node string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// The default check wants a DNS name or IP address in the
		// certificate; VerifyConnection checks the farm identity
		// instead, on every connection, resumed ones included.
		InsecureSkipVerify: true, //nolint:gosec // G402: VerifyConnection checks the chain
		VerifyConnection: func(cs tls.ConnectionState) error {
			id, err := v.Verify(cs.PeerCertificates, time.Now())
			if err != nil {
				return fmt.Errorf("%w: %w", ErrAPICertificate, err)
			}
			if node != "" && id.Node != node {
				return fmt.Errorf("%w: it names node %q, not %q", ErrAPICertificate, id.Node, node)
			}
			return nil
		},
	}
}
