package node

import (
	"bytes"
	"crypto/rand"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/usherlb/usher/internal/pki"
)

// tlsFiles are a node's TLS files in a test directory.
type tlsFiles struct {
	ca  *pki.CA
	dir string
	TLSConfig
}

// writeTLSFiles writes a new CA of farm and node's certificate and key
// (mode 0600), issued at issued and valid for validFor.
func writeTLSFiles(t *testing.T, farm, node string, issued time.Time, validFor time.Duration) tlsFiles {
	t.Helper()
	ca, err := pki.NewCA(farm, issued, time.Hour*24*365, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := tlsFiles{ca: ca, dir: t.TempDir()}
	f.CAFile = filepath.Join(f.dir, "ca.pem")
	if err := os.WriteFile(f.CAFile, ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	f.issue(t, node, issued, validFor)
	return f
}

// issue writes a new certificate and key for node into f's files.
func (f *tlsFiles) issue(t *testing.T, node string, issued time.Time, validFor time.Duration) {
	t.Helper()
	certPEM, keyPEM, err := f.ca.Issue(node, issued, validFor, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f.CertFile = filepath.Join(f.dir, "node.pem")
	f.KeyFile = filepath.Join(f.dir, "node-key.pem")
	if err := os.WriteFile(f.CertFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.KeyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsConfig is a valid single-node configuration of node n1 in farm prod
// with the TLS files f.
func tlsConfig(f tlsFiles) Config {
	c := testConfig()
	c.NodeName = "n1"
	c.Label = "prod"
	c.TLS = f.TLSConfig
	return c
}

func TestTLSConfigValidate(t *testing.T) {
	now := time.Now()
	good := writeTLSFiles(t, "prod", "n1", now, time.Hour)
	otherCA := writeTLSFiles(t, "prod", "n1", now, time.Hour)
	n2 := writeTLSFiles(t, "prod", "n2", now, time.Hour)
	expired := writeTLSFiles(t, "prod", "n1", now.Add(-48*time.Hour), time.Hour)
	wideKey := writeTLSFiles(t, "prod", "n1", now, time.Hour)
	if err := os.Chmod(wideKey.KeyFile, 0o640); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   string // substring of the error; empty: valid
	}{
		{"valid", func(*Config) {}, ""},
		{"no tls block", func(c *Config) { c.TLS = TLSConfig{} }, ""},
		{"cert_file missing", func(c *Config) { c.TLS.CertFile = "" }, `tls.cert_file: "" must be set`},
		{"ca_file unreadable", func(c *Config) { c.TLS.CAFile = filepath.Join(good.dir, "nope.pem") }, "tls.ca_file: "},
		{"ca_file is a node certificate", func(c *Config) { c.TLS.CAFile = good.CertFile }, "is not an Usher farm CA certificate"},
		{"key readable by group", func(c *Config) { c.TLS = wideKey.TLSConfig }, "tls.key_file: " + `"` + wideKey.KeyFile + `" is readable by group or others (mode 0640)`},
		{"key of another certificate", func(c *Config) { c.TLS.KeyFile = otherCA.KeyFile }, "is not the key of tls.cert_file"},
		{"certificate of another CA", func(c *Config) { c.TLS.CertFile, c.TLS.KeyFile = otherCA.CertFile, otherCA.KeyFile }, "tls.cert_file: "},
		{"certificate of another node", func(c *Config) { c.TLS = n2.TLSConfig }, `names node "n2", not node_name "n1"`},
		{"expired certificate", func(c *Config) { c.TLS = expired.TLSConfig }, "is not a valid node certificate"},
		{"label of another farm", func(c *Config) { c.Label = "staging" }, `label: "staging" must name the farm of the TLS certificates: set label = "prod"`},
		{"no label", func(c *Config) { c.Label = "" }, `label: "" must name the farm`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tlsConfig(good)
			tt.mutate(&c)
			rt, err := c.Build()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.want)
			case tt.want == "" && c.TLS.enabled() && rt.Parsed.TLS.Identity != (pki.Identity{Farm: "prod", Node: "n1"}):
				t.Fatalf("parsed identity %+v", rt.Parsed.TLS.Identity)
			}
		})
	}
}

func TestSecureByDefault(t *testing.T) {
	f := writeTLSFiles(t, "prod", "n1", time.Now(), time.Hour)
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string // substrings of the error; none: valid
	}{
		{"single node needs nothing", func(c *Config) { c.BootstrapExpect = 1 }, nil},
		{"three voters, nothing set", func(*Config) {}, []string{`encrypt_key: "" must be set`, `tls: "" must be set`}},
		{"three voters, key only", func(c *Config) { c.EncryptKey = testGossipKey }, []string{`tls: "" must be set`}},
		{"three voters, tls only", func(c *Config) { c.TLS = f.TLSConfig }, []string{`encrypt_key: "" must be set`}},
		{"three voters, key and tls", func(c *Config) { c.EncryptKey, c.TLS = testGossipKey, f.TLSConfig }, nil},
		{"three voters, insecure", func(c *Config) { c.Insecure = true }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			c.NodeName, c.Label = "n1", "prod"
			c.BootstrapExpect = 3
			c.DataDir = t.TempDir()
			tt.mutate(&c)
			_, err := c.Build()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %v, want an error containing %q", err, w)
				}
			}
		})
	}
}

// testGossipKey is a valid encrypt_key.
const testGossipKey = "AAAAAAAAAAAAAAAAAAAAAA=="

func TestTLSBlockParse(t *testing.T) {
	hclSrc := `
node_name = "n1"
tls {
  ca_file   = "/etc/usher/ca.pem"
  cert_file = "/etc/usher/n1.pem"
  key_file  = "/etc/usher/n1-key.pem"
}
insecure = true
`
	jsonSrc := `{"node_name": "n1", "tls": {"ca_file": "/etc/usher/ca.pem", "cert_file": "/etc/usher/n1.pem", "key_file": "/etc/usher/n1-key.pem"}, "insecure": true}`
	want := TLSConfig{CAFile: "/etc/usher/ca.pem", CertFile: "/etc/usher/n1.pem", KeyFile: "/etc/usher/n1-key.pem"}
	for name, src := range map[string]string{"usher.hcl": hclSrc, "usher.json": jsonSrc} {
		c, err := ParseConfig([]byte(src), name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.TLS != want || !c.Insecure {
			t.Errorf("%s: tls %+v, insecure %v", name, c.TLS, c.Insecure)
		}
		if r, ok := c.ranges["tls.key_file"]; !ok || r.Filename != name {
			t.Errorf("%s: tls.key_file not located: %+v", name, r)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c, _ := ParseConfig([]byte(hclSrc), "usher.hcl")
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"-tls-cert-file", "/other.pem"}); err != nil {
		t.Fatal(err)
	}
	if c.TLS.CertFile != "/other.pem" || c.TLS.CAFile != want.CAFile {
		t.Errorf("after -tls-cert-file: %+v", c.TLS)
	}
	if _, ok := c.ranges["tls.cert_file"]; ok {
		t.Error("a flag's value is still located in the file")
	}
	for src, wantErr := range map[string]string{
		"tls {\n  cafile = \"x\"\n}\n":    "usher.hcl:2:3: ",
		"tls {}\ntls {}\n":                "usher.hcl:2:1: tls: only one tls block is allowed",
		"tls {\n  ca_file = [\"x\"]\n}\n": "tls.ca_file: a string is required",
	} {
		if _, err := ParseConfig([]byte(src), "usher.hcl"); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: %v, want %q", src, err, wantErr)
		}
	}
}

func TestRaftBindDefault(t *testing.T) {
	tests := []struct {
		bind, advertise, session, raftBind string
		want                               string // the parsed raft address, or an error substring
	}{
		{bind: "127.0.0.2:7000", want: "127.0.0.2:7001"},
		{bind: "0.0.0.0:7946", session: "10.1.2.3:3479", want: "10.1.2.3:7947"},
		{bind: "0.0.0.0:7946", advertise: "10.9.9.9:7946", session: "10.1.2.3:3479", want: "10.9.9.9:7947"},
		{bind: "0.0.0.0:7946", raftBind: "10.1.2.3:8300", want: "10.1.2.3:8300"},
		{bind: "127.0.0.1:7946", raftBind: "0.0.0.0:7947", want: `raft_bind: "0.0.0.0:7947" must be this node's own address`},
		{bind: "127.0.0.1:7946", raftBind: ":7947", want: `raft_bind: ":7947" must be this node's own address`},
		{bind: "127.0.0.1:7946", raftBind: "[::]:7947", want: `raft_bind: "[::]:7947" must be`},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		c.NodeName = "n1"
		c.Bind, c.Advertise, c.RaftBind = tt.bind, tt.advertise, tt.raftBind
		if tt.session != "" {
			c.SessionAddr = tt.session
		}
		rt, err := c.Build()
		if strings.Contains(tt.want, ":") && !strings.Contains(tt.want, " ") {
			if err != nil || rt.Parsed.RaftBind.String() != tt.want {
				t.Errorf("%+v: raft bind %v, %v; want %s", tt, rt.Parsed.RaftBind, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt, err, tt.want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestReloadTLS(t *testing.T) {
	f := writeTLSFiles(t, "prod", "n1", time.Now(), time.Hour)
	var logs syncBuffer
	a, err := New(tlsConfig(f), hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info}))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if !strings.Contains(logs.String(), "raft uses mutual TLS") {
		t.Errorf("the start does not log the certificate:\n%s", logs.String())
	}
	before := a.tls.Bundle()
	f.issue(t, "n1", time.Now(), 2*time.Hour)
	applied, err := a.ReloadTLS()
	if err != nil {
		t.Fatal(err)
	}
	now := a.tls.Bundle()
	if now == before || !strings.Contains(applied, now.Cert.Leaf.SerialNumber.Text(16)) || !strings.Contains(applied, "usher://prod/node/n1") {
		t.Fatalf("reload applied %q; serial now %x, before %x", applied, now.Cert.Leaf.SerialNumber, before.Cert.Leaf.SerialNumber)
	}
	// A certificate for another node is refused and the current one kept.
	f.issue(t, "n2", time.Now(), time.Hour)
	if _, err := a.ReloadTLS(); err == nil || !strings.Contains(err.Error(), `names node "n2"`) {
		t.Fatalf("reload of another node's certificate: %v", err)
	}
	if a.tls.Bundle() != now {
		t.Fatal("a refused reload replaced the certificate")
	}
}

func TestInsecureWarnsAtStart(t *testing.T) {
	for _, insecure := range []bool{true, false} {
		var logs syncBuffer
		c := testConfig()
		c.Insecure = insecure
		a, err := New(c, hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info}))
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
		warned := strings.Contains(logs.String(), "[WARN]  agent: insecure = true: any host that reaches this node's ports can steer the farm through gossip (no encrypt_key) and raft (no tls block)")
		if warned != insecure {
			t.Errorf("insecure = %v: warned %v:\n%s", insecure, warned, logs.String())
		}
	}
}
