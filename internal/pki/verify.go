package pki

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// Verifier checks certificate chains against one farm's CA.
type Verifier struct {
	ca    *x509.Certificate
	roots *x509.CertPool
	farm  string
}

// NewVerifier returns a verifier for the farm CA certificate in caPEM (its
// first certificate).
func NewVerifier(caPEM []byte) (*Verifier, error) {
	certs, err := ParseCertificates(caPEM)
	if err != nil {
		return nil, err
	}
	farm, err := caFarm(certs[0])
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(certs[0])
	return &Verifier{ca: certs[0], roots: roots, farm: farm}, nil
}

// Farm returns the farm the CA certifies.
func (v *Verifier) Farm() string { return v.farm }

// CA returns the CA certificate.
func (v *Verifier) CA() *x509.Certificate { return v.ca }

// Verify checks a peer's certificate chain, leaf first as a TLS handshake
// delivers it: the leaf must chain to the CA and be valid at now, be good
// for both server and client authentication, and name a node of the CA's
// farm. It returns that identity. Errors wrap ErrUntrusted, ErrNoIdentity
// or ErrOtherFarm.
func (v *Verifier) Verify(chain []*x509.Certificate, now time.Time) (Identity, error) {
	if len(chain) == 0 {
		return Identity{}, fmt.Errorf("%w: no certificate", ErrUntrusted)
	}
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	if _, err := leaf.Verify(opts); err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrUntrusted, err)
	}
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if !slices.Contains(leaf.ExtKeyUsage, u) {
			return Identity{}, fmt.Errorf("%w: not valid for both TLS server and client authentication", ErrUntrusted)
		}
	}
	id, err := identityOf(leaf)
	if err != nil {
		return Identity{}, err
	}
	switch {
	case id.Node == "":
		return Identity{}, fmt.Errorf("%w: it names no node", ErrNoIdentity)
	case id.Farm != v.farm:
		return Identity{}, fmt.Errorf("%w: farm %q, this CA's is %q", ErrOtherFarm, id.Farm, v.farm)
	}
	return id, nil
}

// Bundle is one node's TLS material: its certificate chain and key, the
// identity the certificate names, and the verifier of its farm's CA.
type Bundle struct {
	Cert     tls.Certificate // Leaf is set
	Identity Identity
	Verifier *Verifier
}

// NewBundle checks that chain[0] is key's certificate, that the chain is
// valid for the CA in caPEM at now, and that it names a node of that farm.
func NewBundle(caPEM []byte, chain []*x509.Certificate, key crypto.Signer, now time.Time) (*Bundle, error) {
	if len(chain) == 0 {
		return nil, errors.New("no certificate")
	}
	if err := matches(chain[0], key); err != nil {
		return nil, err
	}
	v, err := NewVerifier(caPEM)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	id, err := v.Verify(chain, now)
	if err != nil {
		return nil, err
	}
	b := &Bundle{Identity: id, Verifier: v}
	b.Cert.PrivateKey = key
	b.Cert.Leaf = chain[0]
	for _, c := range chain {
		b.Cert.Certificate = append(b.Cert.Certificate, c.Raw)
	}
	return b, nil
}

// Store holds a node's current Bundle and swaps it atomically, so that a
// certificate reloaded from disk applies to the next TLS handshake without
// a restart. It is the cluster's TLS source. The zero value holds nothing;
// its Now, when set, replaces time.Now (tests).
type Store struct {
	cur atomic.Pointer[Bundle]
	Now func() time.Time
}

// NewStore returns a store holding b.
func NewStore(b *Bundle) *Store {
	s := &Store{}
	s.cur.Store(b)
	return s
}

// Bundle returns the current bundle (nil if none was stored).
func (s *Store) Bundle() *Bundle { return s.cur.Load() }

// Set replaces the current bundle.
func (s *Store) Set(b *Bundle) { s.cur.Store(b) }

// Certificate returns this node's current certificate and key.
func (s *Store) Certificate() *tls.Certificate { return &s.cur.Load().Cert }

// VerifyPeer checks a peer's chain with the current bundle's verifier at
// the current time and returns the node it certifies.
func (s *Store) VerifyPeer(chain []*x509.Certificate) (string, error) {
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	id, err := s.cur.Load().Verifier.Verify(chain, now)
	return id.Node, err
}
