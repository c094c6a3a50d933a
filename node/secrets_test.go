package node

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/usherlb/usher/client"
)

// TestSecretsStayOut runs an agent with every secret set, logging at trace
// level, does what an operator and a client do, and checks that no secret
// shows up in the log or in any answer of the API.
func TestSecretsStayOut(t *testing.T) {
	ticketKey := bytes.Repeat([]byte{0xa7}, 32)
	gossipKey := bytes.Repeat([]byte{0x5c}, 32)
	c := testConfig()
	c.TicketKey = hex.EncodeToString(ticketKey)
	c.EncryptKey = base64.StdEncoding.EncodeToString(gossipKey)
	c.APIToken = testReadToken
	c.APIWriteToken = testWriteToken
	c.LogLevel = "trace"
	var logs syncBuffer
	a, err := New(c, hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &logs}))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := client.Dial(ctx, a.VIPAddr(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { n, _ := a.ep.Load(); return n == 1 })
	s.Close()

	var answers strings.Builder
	for _, path := range []string{"/v1/status", "/v1/view", "/v1/members", "/v1/sessions", "/metrics", "/v1/health"} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+a.HTTPAddr()+path, nil)
		req.Header.Set(TokenHeader, testWriteToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		answers.Write(body)
	}
	a.Close()

	secrets := map[string]string{
		"ticket key (hex)":    hex.EncodeToString(ticketKey),
		"ticket key (base64)": base64.StdEncoding.EncodeToString(ticketKey),
		"ticket key (raw)":    string(ticketKey[:8]),
		"gossip key (base64)": c.EncryptKey,
		"gossip key (hex)":    hex.EncodeToString(gossipKey),
		"read token":          testReadToken,
		"write token":         testWriteToken,
	}
	for what, secret := range secrets {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log shows the %s", what)
		}
		if strings.Contains(answers.String(), secret) {
			t.Errorf("the API shows the %s", what)
		}
	}
	if !strings.Contains(logs.String(), "agent started") {
		t.Error("nothing was logged: the check proves nothing")
	}
}
