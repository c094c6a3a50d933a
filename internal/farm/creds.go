package farm

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/usherlb/usher/internal/pki"
)

// Label is the farm name (label) of the farms New makes.
const Label = "usher-local"

// Credentials hands out the credentials of one farm's agents, as a real
// farm has them (bootstrap_expect above 1 requires them): the farm's
// label, its gossip key and its Raft TLS files, all in Dir. The first call
// of Args makes the farm's CA and gossip key; each node's certificate is
// made on its first call and reused on the next (a restarted agent).
type Credentials struct {
	Dir   string
	Label string
	// Issuer makes the files; nil means InProcess.
	Issuer Issuer
}

// Issuer makes a farm's credential files in a directory, at the paths
// package pki names (pki.CABase, pki.NodeBase).
type Issuer interface {
	// NewCA writes the CA of the farm label in dir.
	NewCA(dir, label string) error
	// NewCert writes node's certificate and key, issued by the CA of the
	// farm label in dir.
	NewCert(dir, label, node string) error
	// NewGossipKey returns a new gossip key, base64-encoded.
	NewGossipKey() (string, error)
}

// CAFile is the path of the farm CA's certificate.
func (c Credentials) CAFile() string { return pki.CABase(c.Dir, c.Label) + ".pem" }

// keyFile is the path of the farm's gossip key.
func (c Credentials) keyFile() string { return filepath.Join(c.Dir, "gossip.key") }

// Args returns the flags that give agent node its credentials, making
// what is missing first.
func (c Credentials) Args(node string) ([]string, error) {
	is := c.Issuer
	if is == nil {
		is = InProcess{}
	}
	err := ifAbsent(c.CAFile(), func() error {
		if err := is.NewCA(c.Dir, c.Label); err != nil {
			return err
		}
		key, err := is.NewGossipKey()
		if err != nil {
			return err
		}
		return pki.WriteNew([]pki.File{{Path: c.keyFile(), Data: []byte(key), Mode: 0o600}}, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("farm %s: %w", c.Label, err)
	}
	base := pki.NodeBase(c.Dir, c.Label, node)
	if err := ifAbsent(base+".pem", func() error { return is.NewCert(c.Dir, c.Label, node) }); err != nil {
		return nil, fmt.Errorf("node %s: %w", node, err)
	}
	key, err := os.ReadFile(c.keyFile())
	if err != nil {
		return nil, err
	}
	return []string{
		"-label", c.Label,
		"-encrypt-key", string(key),
		"-tls-ca-file", c.CAFile(),
		"-tls-cert-file", base + ".pem",
		"-tls-key-file", base + "-key.pem",
	}, nil
}

// ifAbsent runs create unless a file exists at path.
func ifAbsent(path string, create func() error) error {
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return create()
}

// validFor is how long the credentials InProcess makes are valid.
const validFor = 7 * 24 * time.Hour

// InProcess is the Issuer that makes the files with package pki.
type InProcess struct{}

// NewCA writes a new CA of the farm label in dir.
func (InProcess) NewCA(dir, label string) error {
	ca, err := pki.NewCA(label, time.Now(), validFor, rand.Reader)
	if err != nil {
		return err
	}
	key, err := ca.KeyPEM()
	if err != nil {
		return err
	}
	base := pki.CABase(dir, label)
	return pki.WriteNew([]pki.File{
		{Path: base + ".pem", Data: ca.CertPEM(), Mode: 0o644},
		{Path: base + "-key.pem", Data: key, Mode: 0o600},
	}, nil)
}

// NewCert writes node's certificate and key, issued by the CA in dir.
func (InProcess) NewCert(dir, label, node string) error {
	caBase := pki.CABase(dir, label)
	certPEM, err := os.ReadFile(caBase + ".pem")
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(caBase + "-key.pem")
	if err != nil {
		return err
	}
	ca, err := pki.ParseCA(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("%s.pem: %w", caBase, err)
	}
	cert, key, err := ca.Issue(node, time.Now(), validFor, rand.Reader)
	if err != nil {
		return err
	}
	base := pki.NodeBase(dir, label, node)
	return pki.WriteNew([]pki.File{
		{Path: base + ".pem", Data: cert, Mode: 0o644},
		{Path: base + "-key.pem", Data: key, Mode: 0o600},
	}, nil)
}

// NewGossipKey returns 32 random bytes, base64-encoded.
func (InProcess) NewGossipKey() (string, error) {
	key := make([]byte, 32)
	rand.Read(key)
	return base64.StdEncoding.EncodeToString(key), nil
}

// CLI is the Issuer that makes the files with the commands an operator
// uses, `usher tls ca create`, `usher tls cert create` and `usher keygen`,
// of the usher binary at Bin.
type CLI struct{ Bin string }

// NewCA runs `usher tls ca create`.
func (c CLI) NewCA(dir, label string) error {
	_, err := c.run("tls", "ca", "create", "-farm", label, "-dir", dir)
	return err
}

// NewCert runs `usher tls cert create`, which finds the CA in dir.
func (c CLI) NewCert(dir, _, node string) error {
	_, err := c.run("tls", "cert", "create", "-node", node, "-dir", dir)
	return err
}

// NewGossipKey runs `usher keygen`.
func (c CLI) NewGossipKey() (string, error) {
	out, err := c.run("keygen")
	return strings.TrimSpace(out), err
}

// run runs the binary with args and returns its output.
func (c CLI) run(args ...string) (string, error) {
	out, err := exec.Command(c.Bin, args...).CombinedOutput() //nolint:gosec // G204: the caller's usher binary, with fixed commands
	if err != nil {
		return "", fmt.Errorf("usher %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
