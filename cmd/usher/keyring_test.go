package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/usherlb/usher/cluster"
	"github.com/usherlb/usher/internal/apiclient"
	"github.com/usherlb/usher/node"
)

// TestKeyringCommand rotates an agent's gossip key with `usher keyring` as
// the README tells an operator to, and checks each step's outcome, the
// usage errors, and that -list names keys only by fingerprint.
func TestKeyringCommand(t *testing.T) {
	const token = "keyring-test-token-0123456789"
	t.Setenv(apiclient.AddrEnv, "")
	t.Setenv(apiclient.TokenEnv, token)
	t.Setenv(apiclient.TokenFileEnv, "")
	old, next := bytes.Repeat([]byte{0x31}, 32), bytes.Repeat([]byte{0x32}, 32)
	oldB64, nextB64 := base64.StdEncoding.EncodeToString(old), base64.StdEncoding.EncodeToString(next)
	a := startTestAgentWith(t, "127.0.0.1:0", func(c *node.Config) {
		c.APIToken, c.EncryptKey = token, oldB64
	})
	ctx := context.Background()
	api := a.HTTPAddr()
	for _, tt := range []struct {
		args []string
		code int
		out  string // in stdout or stderr
	}{
		{[]string{"keyring", "-http", api}, 2, "exactly one of"},
		{[]string{"keyring", "-http", api, "-list", "-use", nextB64}, 2, "exactly one of"},
		{[]string{"keyring", "-http", api, "-use", nextB64}, 1, "is not installed"},
		{[]string{"keyring", "-http", api, "-install", "not-base64!"}, 1, "not base64"},
		{[]string{"keyring", "-http", api, "-install", nextB64}, 0, "install done"},
		{[]string{"keyring", "-http", api, "-use", nextB64}, 0, "use done"},
		{[]string{"keyring", "-http", api, "-remove", nextB64}, 1, "primary key"},
		{[]string{"keyring", "-http", api, "-remove", oldB64}, 0, "remove done"},
		{[]string{"keyring", "-http", api, "-list"}, 0, "* " + cluster.KeyFingerprint(next)},
	} {
		code, out, errOut := runArgs(ctx, tt.args...)
		if code != tt.code || !strings.Contains(out+errOut, tt.out) {
			t.Errorf("%v: exit %d, %q %q; want %d and %q", tt.args[3:], code, out, errOut, tt.code, tt.out)
		}
		if strings.Contains(out, oldB64) || strings.Contains(out, nextB64) {
			t.Errorf("%v: the output shows a key: %q", tt.args[3:], out)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, out, _ := runArgs(ctx, "keyring", "-http", api, "-list")
		if strings.Count(out, cluster.KeyFingerprint(next)) == 2 && !strings.Contains(out, cluster.KeyFingerprint(old)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent's own keys did not follow the farm's:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
