package node

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// keyringReq sends method path with body (none when empty) to the API at
// addr, with token and host when set, and returns the status and the body.
func keyringReq(t *testing.T, addr, method, path, body, token, host string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+addr+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set(TokenHeader, token)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// keyBody is a keyring request's body for key.
func keyBody(key []byte) string {
	return fmt.Sprintf(`{"key": %q}`, base64.StdEncoding.EncodeToString(key))
}

// keyEncodings lists the ways a key could leak into text.
func keyEncodings(key []byte) []string {
	return []string{base64.StdEncoding.EncodeToString(key), hex.EncodeToString(key[:8]), fmt.Sprint(key[:8])[1:]}
}

// TestKeyringAPI drives the gossip keyring through one agent's API: the
// token and Host rules, the validation of each change, a whole rotation,
// and that no answer and no log line holds a key.
func TestKeyringAPI(t *testing.T) {
	k0, k1 := bytes.Repeat([]byte{0x61}, 32), bytes.Repeat([]byte{0x62}, 16)
	c := testConfig()
	c.EncryptKey = base64.StdEncoding.EncodeToString(k0)
	c.APIToken, c.APIWriteToken = testReadToken, testWriteToken
	var logs syncBuffer
	a := startAgentLogged(t, c, hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &logs}))
	addr := a.HTTPAddr()
	var answers strings.Builder
	for _, tt := range []struct {
		name, method, path, body, token, host string
		want                                  int
	}{
		{"list without token", "GET", "/v1/keyring", "", "", "", 401},
		{"list", "GET", "/v1/keyring", "", testReadToken, "", 200},
		{"install without token", "POST", "/v1/keyring/install", keyBody(k1), "", "", 401},
		{"install with the read token", "POST", "/v1/keyring/install", keyBody(k1), testReadToken, "", 401},
		{"install from a rebound name", "POST", "/v1/keyring/install", keyBody(k1), testWriteToken, "rebind.attacker.example", 403},
		{"install, not base64", "POST", "/v1/keyring/install", `{"key": "%%%"}`, testWriteToken, "", 400},
		{"install, not JSON", "POST", "/v1/keyring/install", "key=abc", testWriteToken, "", 400},
		{"install, 15 bytes", "POST", "/v1/keyring/install", keyBody(k1[:15]), testWriteToken, "", 400},
		{"use a key not installed", "PUT", "/v1/keyring/use", keyBody(k1), testWriteToken, "", 400},
		{"unknown op", "POST", "/v1/keyring/rotate", keyBody(k1), testWriteToken, "", 404},
		{"GET an op", "GET", "/v1/keyring/install", "", testWriteToken, "", 405},
		{"install", "POST", "/v1/keyring/install", keyBody(k1), testWriteToken, "", 200},
		{"use", "PUT", "/v1/keyring/use", keyBody(k1), testWriteToken, "", 200},
		{"remove the primary", "POST", "/v1/keyring/remove", keyBody(k1), testWriteToken, "", 400},
		{"remove the old key", "POST", "/v1/keyring/remove", keyBody(k0), testWriteToken, "", 200},
	} {
		got, body := keyringReq(t, addr, tt.method, tt.path, tt.body, tt.token, tt.host)
		if got != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, got, body, tt.want)
		}
		answers.WriteString(body)
	}
	waitFor(t, func() bool {
		local := a.cl.Load().LocalKeyring()
		return len(local.Keys) == 1 && bytes.Equal(local.Keys[0], k1)
	})
	_, list := keyringReq(t, addr, "GET", "/v1/keyring", "", testReadToken, "")
	answers.WriteString(list)
	if !strings.Contains(list, `"primary": "`) || strings.Count(list, `"keys"`) != 2 {
		t.Errorf("GET /v1/keyring: %s", list)
	}
	for _, path := range []string{"/v1/status", "/v1/members", "/metrics"} {
		_, body := keyringReq(t, addr, "GET", path, "", testWriteToken, "")
		answers.WriteString(body)
	}
	a.Close()
	for _, key := range [][]byte{k0, k1} {
		for _, enc := range keyEncodings(key) {
			if strings.Contains(answers.String(), enc) {
				t.Errorf("an answer shows a gossip key (%s)", enc)
			}
			if strings.Contains(logs.String(), enc) {
				t.Errorf("the log shows a gossip key (%s)", enc)
			}
		}
	}
	if !strings.Contains(logs.String(), "gossip keyring changed through the api") {
		t.Error("no keyring change logged: the check proves nothing")
	}
}

// TestKeyringAPIForwarded sends keyring changes to a follower of a
// three-agent farm: with the write token they reach the leader and the
// farm's keyring; without, the follower refuses them itself.
func TestKeyringAPIForwarded(t *testing.T) {
	k0, k1 := bytes.Repeat([]byte{0x71}, 32), bytes.Repeat([]byte{0x72}, 32)
	f := newTestFarm(t, 3, 3, func(i int, c *Config) {
		c.EncryptKey = base64.StdEncoding.EncodeToString(k0)
		c.APIWriteToken = testWriteToken
	})
	follower := f.followers()[0]
	addr := follower.HTTPAddr()
	if got, body := keyringReq(t, addr, "POST", "/v1/keyring/install", keyBody(k1), "", ""); got != 401 {
		t.Errorf("install without token through a follower: %d %s", got, body)
	}
	if got, body := keyringReq(t, addr, "POST", "/v1/keyring/install", keyBody(k1), testWriteToken, ""); got != 200 {
		t.Fatalf("install through a follower: %d %s", got, body)
	}
	if got, body := keyringReq(t, addr, "PUT", "/v1/keyring/use", keyBody(k1), testWriteToken, ""); got != 200 {
		t.Fatalf("use through a follower: %d %s", got, body)
	}
	waitFor(t, func() bool {
		for _, a := range f.agents {
			local := a.cl.Load().LocalKeyring()
			if len(local.Keys) != 2 || !bytes.Equal(local.Keys[0], k1) {
				return false
			}
		}
		return true
	})
}
