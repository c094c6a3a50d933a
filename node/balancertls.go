package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// The balancer address over TLS (balancer_tls): a browser configured with
// turns:VIP:5349 opens TLS to the balancer address, checks its certificate
// against the name it was configured with, and sends its Allocate; the
// leader answers with the 300 naming the least loaded TURN server and,
// when the server's service block has a domain, that domain
// (ALTERNATE-DOMAIN), which the browser checks the alternate's certificate
// against. The certificate is the operator's (a public CA's, for
// browsers), not the farm's: it names the balancer address's DNS name.

// checkBalancerTLS checks balancer_tls and its certificate and key files:
// a port, not the one balancer_tcp listens on, and files that hold a
// certificate chain and its key, the key readable by its owner only.
func (r *Runtime) checkBalancerTLS(bad func(key, value, problem string)) {
	port, certFile, keyFile := r.BalancerTLS, r.BalancerTLSCertFile, r.BalancerTLSKeyFile
	switch {
	case port < 0 || port > 65535:
		bad("balancer_tls", strconv.Itoa(port), "is not a port number (1 to 65535), or 0 for off")
		return
	case port == 0:
		if certFile != "" {
			bad("balancer_tls_cert_file", certFile, "is set but balancer_tls is not")
		}
		if keyFile != "" {
			bad("balancer_tls_key_file", keyFile, "is set but balancer_tls is not")
		}
		return
	}
	if on, tcpPort, ok := r.balancerTCP(); ok && on {
		if tcpPort == 0 {
			tcpPort = r.Parsed.VIP.Port()
		}
		if int(tcpPort) == port {
			bad("balancer_tls", strconv.Itoa(port), "is the port balancer_tcp listens on")
		}
	}
	if certFile == "" {
		bad("balancer_tls_cert_file", "", "must be set when balancer_tls is: the certificate clients check for the balancer address's name")
	}
	if keyFile == "" {
		bad("balancer_tls_key_file", "", "must be set when balancer_tls is")
	}
	if certFile == "" || keyFile == "" {
		return
	}
	if fi, err := os.Stat(keyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		bad("balancer_tls_key_file", keyFile, fmt.Sprintf("is readable by group or others (mode %04o): chmod 600 it", fi.Mode().Perm()))
		return
	}
	if _, err := loadKeyPair(certFile, keyFile); err != nil {
		var ke *KeyError
		if errors.As(err, &ke) {
			bad(ke.Key, ke.Value, ke.Problem)
		}
	}
}

// loadKeyPair reads the certificate chain in certFile and its key in
// keyFile. Its error is a KeyError naming the file's key.
func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, &KeyError{Key: "balancer_tls_cert_file", Value: certFile, Problem: "cannot be read: " + err.Error()}
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, &KeyError{Key: "balancer_tls_key_file", Value: keyFile, Problem: "cannot be read: " + err.Error()}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, &KeyError{Key: "balancer_tls_cert_file", Value: certFile,
			Problem: "with balancer_tls_key_file is not a PEM certificate chain and its key: " + err.Error()}
	}
	return &cert, nil
}

// certReloader is the certificate balancer_tls presents: the files'
// contents, read again at a handshake after either file's modification
// time or size changed, so that a renewed certificate applies from the
// next connection without a restart. A pair that does not load (the
// certificate replaced before its key, say) is logged and the last good
// one kept; the files are tried again at the next handshake.
type certReloader struct {
	certFile, keyFile string
	log               hclog.Logger

	mu     sync.Mutex
	cert   *tls.Certificate
	stamp  [2]fileStamp // of the files cert was read from
	failed [2]fileStamp // of the files that last failed to load, not to log each handshake
}

// fileStamp is what tells a file changed: its modification time and size.
type fileStamp struct {
	mod  time.Time
	size int64
}

// newCertReloader loads the certificate in certFile and its key in
// keyFile.
func newCertReloader(certFile, keyFile string, log hclog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	st, err := c.stamps()
	if err != nil {
		return nil, err
	}
	if c.cert, err = loadKeyPair(certFile, keyFile); err != nil {
		return nil, err
	}
	c.stamp = st
	return c, nil
}

// stamps returns the files' current stamps.
func (c *certReloader) stamps() ([2]fileStamp, error) {
	var st [2]fileStamp
	for i, f := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return st, fmt.Errorf("balancer tls: %w", err)
		}
		st[i] = fileStamp{mod: fi.ModTime(), size: fi.Size()}
	}
	return st, nil
}

// GetCertificate returns the certificate to present (tls.Config's
// GetCertificate), first reading the files again if they changed.
func (c *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.stamps()
	if err != nil || st == c.stamp {
		// A file that cannot be stat'ed now (being replaced) leaves the
		// certificate as it was.
		return c.cert, nil //nolint:nilerr // see above
	}
	cert, err := loadKeyPair(c.certFile, c.keyFile)
	if err != nil {
		if st != c.failed {
			c.log.Warn("balancer tls: keeping the last certificate", "error", err)
			c.failed = st
		}
		return c.cert, nil
	}
	c.cert, c.stamp = cert, st
	c.log.Info("balancer tls: certificate reloaded", "cert_file", c.certFile)
	return c.cert, nil
}

// balancerCertificate returns the GetCertificate of balancer_tls's
// certificate, or nil when balancer_tls is off.
func balancerCertificate(cfg *Runtime, log hclog.Logger) (func(*tls.ClientHelloInfo) (*tls.Certificate, error), error) {
	if cfg.BalancerTLS == 0 {
		return nil, nil
	}
	c, err := newCertReloader(cfg.BalancerTLSCertFile, cfg.BalancerTLSKeyFile, log.Named("balancer-tls"))
	if err != nil {
		return nil, err
	}
	return c.GetCertificate, nil
}
