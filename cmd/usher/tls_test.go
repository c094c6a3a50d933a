package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/usherlb/usher/internal/pki"
	"github.com/usherlb/usher/internal/testutil"
	"github.com/usherlb/usher/node"
)

// mode returns the permission bits of path.
func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestTLSCommands(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if code, _, help := runArgs(ctx, "tls", "-h"); code != 0 || !strings.Contains(help, "usher tls cert create -node NAME") || !strings.Contains(help, "label") {
		t.Errorf("tls -h: exit %d\n%s", code, help)
	}
	if code, _, e := runArgs(ctx, "tls"); code != 2 || !strings.Contains(e, "Usage: usher tls") {
		t.Errorf("tls: exit %d, %q", code, e)
	}
	code, out, e := runArgs(ctx, "tls", "ca", "create", "-farm", "prod", "-dir", dir)
	if code != 0 || !strings.Contains(out, "usher-prod-ca.pem") {
		t.Fatalf("ca create: exit %d, %q, %q", code, out, e)
	}
	if code, _, e := runArgs(ctx, "tls", "ca", "create", "-farm", "prod", "-dir", dir); code != 1 || !strings.Contains(e, "already exists") {
		t.Errorf("second ca create: exit %d, %q", code, e)
	}
	if code, _, e := runArgs(ctx, "tls", "ca", "create", "-farm", "a b", "-dir", t.TempDir()); code != 2 || !strings.Contains(e, "-farm") {
		t.Errorf("bad farm: exit %d, %q", code, e)
	}
	if code, _, _ := runArgs(ctx, "tls", "cert", "create", "-dir", dir); code != 2 {
		t.Errorf("cert create without -node: exit %d", code)
	}
	if code, out, e := runArgs(ctx, "tls", "cert", "create", "-node", "n1", "-dir", dir, "-days", "2"); code != 0 || !strings.Contains(out, "usher-prod-n1-key.pem") {
		t.Fatalf("cert create: exit %d, %q, %q", code, out, e)
	}
	for file, want := range map[string]os.FileMode{
		"usher-prod-ca.pem": 0o644, "usher-prod-ca-key.pem": 0o600, "usher-prod-n1.pem": 0o644, "usher-prod-n1-key.pem": 0o600,
	} {
		if got := mode(t, filepath.Join(dir, file)); got != want {
			t.Errorf("%s: mode %04o, want %04o", file, got, want)
		}
	}
	// The files are what the agent's configuration takes.
	c := node.DevConfig()
	c.NodeName, c.Label = "n1", "prod"
	c.TLS = node.TLSConfig{
		CAFile:   filepath.Join(dir, "usher-prod-ca.pem"),
		CertFile: filepath.Join(dir, "usher-prod-n1.pem"),
		KeyFile:  filepath.Join(dir, "usher-prod-n1-key.pem"),
	}
	rt, err := c.Build()
	if err != nil {
		t.Fatalf("the created files do not validate: %v", err)
	}
	leaf := rt.Parsed.TLS.Cert.Leaf
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life < 47*time.Hour || life > 49*time.Hour {
		t.Errorf("-days 2 made a certificate valid for %v", life)
	}
	// With two CAs in the directory the CA must be named.
	if code, _, _ := runArgs(ctx, "tls", "ca", "create", "-farm", "staging", "-dir", dir); code != 0 {
		t.Fatal("second farm's ca create failed")
	}
	if code, _, e := runArgs(ctx, "tls", "cert", "create", "-node", "n2", "-dir", dir); code != 1 || !strings.Contains(e, "-ca-file: 2 files") {
		t.Errorf("ambiguous CA: exit %d, %q", code, e)
	}
	code, _, e = runArgs(ctx, "tls", "cert", "create", "-node", "n2", "-dir", dir, "-ca-file", filepath.Join(dir, "usher-staging-ca.pem"))
	if code != 0 {
		t.Fatalf("cert create with -ca-file: exit %d, %q", code, e)
	}
	certPEM, _ := os.ReadFile(filepath.Join(dir, "usher-staging-n2.pem"))
	chain, err := pki.ParseCertificates(certPEM)
	if err != nil || len(chain[0].URIs) != 1 || chain[0].URIs[0].String() != "usher://staging/node/n2" {
		t.Fatalf("staging n2 certificate: %v %v", chain, err)
	}
	// -ip puts session addresses in the certificate.
	staging := filepath.Join(dir, "usher-staging-ca.pem")
	if code, _, e := runArgs(ctx, "tls", "cert", "create", "-node", "n3", "-dir", dir, "-ca-file", staging, "-ip", "198.18.0.3,2001:db8::3"); code != 0 {
		t.Fatalf("cert create -ip: exit %d, %q", code, e)
	}
	certPEM, _ = os.ReadFile(filepath.Join(dir, "usher-staging-n3.pem"))
	if chain, err = pki.ParseCertificates(certPEM); err != nil || len(chain[0].IPAddresses) != 2 || chain[0].IPAddresses[0].String() != "198.18.0.3" {
		t.Fatalf("-ip 198.18.0.3,2001:db8::3 made IP SANs %v (%v)", chain[0].IPAddresses, err)
	}
	if code, _, e := runArgs(ctx, "tls", "cert", "create", "-node", "n4", "-dir", dir, "-ca-file", staging, "-ip", "nope"); code != 2 || !strings.Contains(e, "-ip") {
		t.Errorf("cert create -ip nope: exit %d, %q", code, e)
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent writes and reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor fails t unless cond holds within 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, what, cond)
}

// TestAgentSIGHUP runs the agent with TLS files and sends this process
// SIGHUP: the agent reloads the certificate renewed on disk, keeps the
// current one when the new files are wrong, and never exits.
func TestAgentSIGHUP(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if code, _, e := runArgs(ctx, "tls", "ca", "create", "-farm", "prod", "-dir", dir); code != 0 {
		t.Fatal(e)
	}
	if code, _, e := runArgs(ctx, "tls", "cert", "create", "-node", "n1", "-dir", dir); code != 0 {
		t.Fatal(e)
	}
	certFile, keyFile := filepath.Join(dir, "usher-prod-n1.pem"), filepath.Join(dir, "usher-prod-n1-key.pem")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var logs lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"agent", "-dev", "-node", "n1", "-label", "prod",
			"-vip", "127.0.0.1:0", "-session-addr", "127.0.0.1:0", "-http", "", "-bind", "127.0.0.1:0",
			"-tls-ca-file", filepath.Join(dir, "usher-prod-ca.pem"), "-tls-cert-file", certFile, "-tls-key-file", keyFile},
			&bytes.Buffer{}, &logs)
	}()
	waitFor(t, "the agent to start", func() bool { return strings.Contains(logs.String(), "agent started") })

	// Renew n1's certificate on disk, then SIGHUP.
	renewed := t.TempDir()
	if code, _, e := runArgs(ctx, "tls", "cert", "create", "-node", "n1", "-dir", renewed, "-ca-file", filepath.Join(dir, "usher-prod-ca.pem")); code != 0 {
		t.Fatal(e)
	}
	for _, f := range []string{"usher-prod-n1.pem", "usher-prod-n1-key.pem"} {
		b, _ := os.ReadFile(filepath.Join(renewed, f))
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	certPEM, _ := os.ReadFile(certFile)
	chain, _ := pki.ParseCertificates(certPEM)
	serial := chain[0].SerialNumber.Text(16)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitFor(t, "the reload", func() bool { return strings.Contains(logs.String(), "SIGHUP: reloaded") })
	if !strings.Contains(logs.String(), serial) {
		t.Errorf("the reload does not name the new certificate %s:\n%s", serial, logs.String())
	}

	// A certificate of another node is refused; the agent goes on.
	if code, _, e := runArgs(ctx, "tls", "cert", "create", "-node", "n2", "-dir", renewed, "-ca-file", filepath.Join(dir, "usher-prod-ca.pem")); code != 0 {
		t.Fatal(e)
	}
	b, _ := os.ReadFile(filepath.Join(renewed, "usher-prod-n2.pem"))
	os.WriteFile(certFile, b, 0o644)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitFor(t, "the refused reload", func() bool { return strings.Contains(logs.String(), "the running configuration stays") })
	select {
	case code := <-done:
		t.Fatalf("the agent exited (%d) after SIGHUP:\n%s", code, logs.String())
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d:\n%s", code, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not stop")
	}
}

func TestSecureByDefaultAgent(t *testing.T) {
	code, _, e := runArgs(context.Background(), "agent", "-node", "n1", "-bootstrap-expect", "3", "-data-dir", t.TempDir(), "-bind", "127.0.0.1:0")
	if code != 1 || !strings.Contains(e, "encrypt_key") || !strings.Contains(e, "tls:") || !strings.Contains(e, "insecure = true") {
		t.Errorf("three voters without credentials: exit %d, %q", code, e)
	}
}
