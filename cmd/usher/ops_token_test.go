package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usherlb/usher/internal/apiclient"
	"github.com/usherlb/usher/node"
)

// TestOpsToken drives the operator commands against an agent whose API
// needs a token: refused without it, accepted from $USHER_HTTP_TOKEN or the
// file $USHER_HTTP_TOKEN_FILE names.
func TestOpsToken(t *testing.T) {
	const token = "ops-test-token-0123456789"
	t.Setenv(apiclient.AddrEnv, "")
	t.Setenv(apiclient.TokenEnv, "")
	t.Setenv(apiclient.TokenFileEnv, "")
	a := startTestAgentWith(t, "127.0.0.1:0", func(c *node.Config) { c.APIToken = token })
	ctx := context.Background()
	api, name := a.HTTPAddr(), a.Status().Node

	code, _, errOut := runArgs(ctx, "drain", "-http", api, name)
	if code == 0 || !strings.Contains(errOut, "$"+apiclient.TokenEnv) {
		t.Errorf("drain without a token: exit %d, %q", code, errOut)
	}
	if a.Status().Draining {
		t.Fatal("drained without a token")
	}

	t.Setenv(apiclient.TokenEnv, token)
	if code, out, errOut := runArgs(ctx, "drain", "-http", api, name); code != 0 {
		t.Fatalf("drain with $%s: exit %d, %q, %q", apiclient.TokenEnv, code, out, errOut)
	}

	t.Setenv(apiclient.TokenEnv, "")
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(apiclient.TokenFileEnv, file)
	if code, out, errOut := runArgs(ctx, "undrain", "-http", api, name); code != 0 {
		t.Fatalf("undrain with $%s: exit %d, %q, %q", apiclient.TokenFileEnv, code, out, errOut)
	}
}
