package main

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usherlb/usher/internal/apiclient"
	"github.com/usherlb/usher/internal/pki"
	"github.com/usherlb/usher/node"
)

// writeFarmFiles writes a new CA of farm into dir, as farm-ca.pem, and the
// certificate and key of node n1.
func writeFarmFiles(t *testing.T, dir, farm string) node.TLSConfig {
	t.Helper()
	ca, err := pki.NewCA(farm, time.Now(), time.Hour, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue("n1", time.Now(), time.Hour, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tc := node.TLSConfig{
		CAFile:   filepath.Join(dir, "farm-ca.pem"),
		CertFile: filepath.Join(dir, "n1.pem"),
		KeyFile:  filepath.Join(dir, "n1-key.pem"),
	}
	for _, f := range []struct {
		path string
		b    []byte
	}{{tc.CAFile, ca.CertPEM()}, {tc.CertFile, cert}, {tc.KeyFile, key}} {
		if err := os.WriteFile(f.path, f.b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return tc
}

// TestOpsOverTLS drives the operator commands against an agent whose API
// serves HTTPS: they work with the farm's CA (-ca-file or
// $USHER_HTTP_CA_FILE) and refuse, before sending the token, an agent
// whose certificate is of another CA, or an https:// address without a CA
// file.
func TestOpsOverTLS(t *testing.T) {
	const token = "ops-tls-token-0123456789"
	t.Setenv(apiclient.AddrEnv, "")
	t.Setenv(apiclient.TokenEnv, token)
	t.Setenv(apiclient.TokenFileEnv, "")
	t.Setenv(apiclient.CAFileEnv, "")
	farm := writeFarmFiles(t, t.TempDir(), "prod")
	other := writeFarmFiles(t, t.TempDir(), "prod")
	on := true
	a := startTestAgentWith(t, "127.0.0.1:0", func(c *node.Config) {
		c.NodeName, c.Label, c.TLS, c.APITLS, c.APIToken = "n1", "prod", farm, &on, token
	})
	ctx := context.Background()
	url := "https://" + a.HTTPAddr()

	for _, tt := range []struct {
		name string
		args []string
		env  string // $USHER_HTTP_CA_FILE
		want string // in stderr; empty: success
	}{
		{"status, -ca-file", []string{"status", "-http", url, "-ca-file", farm.CAFile}, "", ""},
		{"members, $" + apiclient.CAFileEnv, []string{"members", "-http", url}, farm.CAFile, ""},
		{"drain, -ca-file", []string{"drain", "-http", url, "-ca-file", farm.CAFile, "n1"}, "", ""},
		{"undrain, -ca-file over $" + apiclient.CAFileEnv, []string{"undrain", "-http", url, "-ca-file", farm.CAFile, "n1"}, other.CAFile, ""},
		{"another CA", []string{"drain", "-http", url, "-ca-file", other.CAFile, "n1"}, "", "is not a node of the farm of " + other.CAFile},
		{"no CA file", []string{"status", "-http", url}, "", "-ca-file or $" + apiclient.CAFileEnv},
		{"a node certificate as CA", []string{"status", "-http", url, "-ca-file", farm.CertFile}, "", "is not an Usher farm CA certificate"},
		{"plain http", []string{"status", "-http", a.HTTPAddr()}, "", "the agent answered 400"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(apiclient.CAFileEnv, tt.env)
			code, out, errOut := runArgs(ctx, tt.args...)
			if tt.want == "" && code != 0 {
				t.Fatalf("exit %d: %s%s", code, out, errOut)
			}
			if tt.want != "" && (code == 0 || !strings.Contains(errOut, tt.want)) {
				t.Fatalf("exit %d, stderr %q, want %q", code, errOut, tt.want)
			}
		})
	}
	if a.Status().Draining {
		t.Error("the agent drains: the refused drain went through")
	}
}
