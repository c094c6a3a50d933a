package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usherlb/usher/node"
)

// TestOpsToken drives the operator commands against an agent whose API
// needs a token: refused without it, accepted from $USHER_HTTP_TOKEN or the
// file $USHER_HTTP_TOKEN_FILE names.
func TestOpsToken(t *testing.T) {
	const token = "ops-test-token-0123456789"
	t.Setenv(httpAddrEnv, "")
	t.Setenv(tokenEnv, "")
	t.Setenv(tokenFileEnv, "")
	c := node.DevConfig()
	c.VIP, c.SessionAddr, c.HTTP, c.Bind = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	c.APIToken = token
	a, err := node.New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	api, name := a.HTTPAddr(), a.Status().Node

	code, _, errOut := runArgs(ctx, "drain", "-http", api, name)
	if code == 0 || !strings.Contains(errOut, "$"+tokenEnv) {
		t.Errorf("drain without a token: exit %d, %q", code, errOut)
	}
	if a.Status().Draining {
		t.Fatal("drained without a token")
	}

	t.Setenv(tokenEnv, token)
	if code, out, errOut := runArgs(ctx, "drain", "-http", api, name); code != 0 {
		t.Fatalf("drain with $%s: exit %d, %q, %q", tokenEnv, code, out, errOut)
	}

	t.Setenv(tokenEnv, "")
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(tokenFileEnv, file)
	if code, out, errOut := runArgs(ctx, "undrain", "-http", api, name); code != 0 {
		t.Fatalf("undrain with $%s: exit %d, %q, %q", tokenFileEnv, code, out, errOut)
	}
}
