package node

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/usherlb/usher/internal/pki"
)

// TLSConfig is the tls block: the files of Raft's mutual TLS. All three are
// set, or none (Raft then runs on plain TCP).
type TLSConfig struct {
	// CAFile is the farm CA's certificate (PEM), `usher tls ca create`'s
	// farm-ca.pem.
	CAFile string `hcl:"ca_file,optional"`
	// CertFile is this node's certificate (PEM), naming node_name and the
	// farm (label); an intermediate may follow it.
	CertFile string `hcl:"cert_file,optional"`
	// KeyFile is this node's private key (PEM); it must not be readable by
	// group or others.
	KeyFile string `hcl:"key_file,optional"`
}

// enabled reports whether any file is set.
func (t TLSConfig) enabled() bool { return t != TLSConfig{} }

// loadTLS reads and checks the TLS files of c at now: each file readable,
// the key file private to its owner, the certificate matching the key,
// valid for the CA now, naming node_name and the farm whose label c
// carries. Every problem is a *KeyError naming the key at fault.
func (c *Config) loadTLS(now time.Time, bad func(key, value, problem string)) *pki.Bundle {
	t := c.TLS
	missing := false
	for _, f := range []struct{ key, v string }{{"tls.ca_file", t.CAFile}, {"tls.cert_file", t.CertFile}, {"tls.key_file", t.KeyFile}} {
		if f.v == "" {
			bad(f.key, f.v, "must be set: the tls block needs ca_file, cert_file and key_file")
			missing = true
		}
	}
	if missing {
		return nil
	}
	read := func(key, path string) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			bad(key, path, fmt.Sprintf("cannot be read: %v", err))
		}
		return b
	}
	caPEM := read("tls.ca_file", t.CAFile)
	certPEM := read("tls.cert_file", t.CertFile)
	keyPEM := read("tls.key_file", t.KeyFile)
	if caPEM == nil || certPEM == nil || keyPEM == nil {
		return nil
	}
	if fi, err := os.Stat(t.KeyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		bad("tls.key_file", t.KeyFile, fmt.Sprintf("is readable by group or others (mode %04o): chmod 600 it", fi.Mode().Perm()))
		return nil
	}
	if _, err := pki.NewVerifier(caPEM); err != nil {
		bad("tls.ca_file", t.CAFile, fmt.Sprintf("is not an Usher farm CA certificate: %v", err))
		return nil
	}
	chain, err := pki.ParseCertificates(certPEM)
	if err != nil {
		bad("tls.cert_file", t.CertFile, err.Error())
		return nil
	}
	key, err := pki.ParseKey(keyPEM)
	if err != nil {
		bad("tls.key_file", t.KeyFile, err.Error())
		return nil
	}
	b, err := pki.NewBundle(caPEM, chain, key, now)
	switch {
	case errors.Is(err, pki.ErrKeyMismatch):
		bad("tls.key_file", t.KeyFile, "is not the key of tls.cert_file")
		return nil
	case err != nil:
		bad("tls.cert_file", t.CertFile, fmt.Sprintf("is not a valid node certificate of tls.ca_file's farm now: %v", err))
		return nil
	}
	if b.Identity.Node != c.NodeName {
		bad("tls.cert_file", t.CertFile, fmt.Sprintf("names node %q, not node_name %q", b.Identity.Node, c.NodeName))
		return nil
	}
	if b.Identity.Farm != c.Label {
		bad("label", c.Label, fmt.Sprintf("must name the farm of the TLS certificates: set label = %q on every node", b.Identity.Farm))
		return nil
	}
	return b
}

// ReloadTLS reads the tls block's files again and, if they pass every check
// Build makes, puts them into use: the next Raft connection, in either
// direction, is made with the new certificate and checked against the new
// CA. Connections already open stay. It returns what was applied, for the
// log; on an error the current files stay in use.
func (a *Agent) ReloadTLS() (string, error) {
	if a.tls == nil {
		return "no tls block: nothing to reload", nil
	}
	var errs []error
	b := a.cfg.loadTLS(time.Now(), func(key, value, problem string) {
		errs = append(errs, &KeyError{Key: key, Value: value, Problem: problem})
	})
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	a.tls.Set(b)
	return describeTLS(b), nil
}

// describeTLS says which certificate b holds.
func describeTLS(b *pki.Bundle) string {
	leaf := b.Cert.Leaf
	return fmt.Sprintf("certificate %s serial %x, valid until %s, CA %q", b.Identity, leaf.SerialNumber,
		leaf.NotAfter.UTC().Format(time.RFC3339), b.Verifier.CA().Subject.CommonName)
}

// logSecurity logs, at every start, what protects the farm's control
// plane: a warning when insecure = true leaves gossip or Raft open, and
// the certificate in use.
func (a *Agent) logSecurity() {
	cfg := a.cfg
	var open []string
	if cfg.Parsed.EncryptKey == nil {
		open = append(open, "gossip (no encrypt_key)")
	}
	if !cfg.TLS.enabled() {
		open = append(open, "raft (no tls block)")
	}
	if cfg.Insecure && len(open) > 0 {
		a.log.Warn("insecure = true: any host that reaches this node's ports can steer the farm through "+strings.Join(open, " and "),
			"bootstrap_expect", cfg.BootstrapExpect)
	}
	if b := cfg.Parsed.TLS; b != nil {
		a.log.Info("raft uses mutual TLS", "tls", describeTLS(b))
	}
}
