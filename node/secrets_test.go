package node

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/usherlb/usher/client"
	"github.com/usherlb/usher/internal/pki"
	"github.com/usherlb/usher/wire"
)

// secretSet is every secret a test gave an agent, each in every encoding
// a log line, an answer or an error message could carry it in.
type secretSet map[string]string // what (and encoding) -> text

// addBytes adds the secret key b in raw form, hex (both cases), base64
// (standard and URL, padded or not; JSON's encoding of a byte slice), Go's
// %v of a byte slice and hclog's ("[1, 2, 3]").
func (s secretSet) addBytes(what string, b []byte) {
	s[what+" (raw)"] = string(b)
	s[what+" (hex)"] = hex.EncodeToString(b)
	s[what+" (HEX)"] = strings.ToUpper(hex.EncodeToString(b))
	s[what+" (base64)"] = base64.RawStdEncoding.EncodeToString(b)
	s[what+" (base64url)"] = base64.RawURLEncoding.EncodeToString(b)
	s[what+" (%v)"] = strings.Trim(fmt.Sprint(b), "[]")
	s[what+" (hclog)"] = strings.ReplaceAll(strings.Trim(fmt.Sprint(b), "[]"), " ", ", ")
}

// addText adds the secret text t, as is and as addBytes encodes it.
func (s secretSet) addText(what, t string) {
	s.addBytes(what, []byte(t))
}

// addKeyFile adds a TLS private key file: each line of its PEM body, its
// DER encoding and its private scalar.
func (s secretSet) addKeyFile(t *testing.T, what, path string) {
	t.Helper()
	pemText, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(pemText), "\n") {
		if line != "" && !strings.HasPrefix(line, "-----") {
			s[fmt.Sprintf("%s (PEM line %d)", what, i)] = line
		}
	}
	key, err := pki.ParseKey(pemText)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := key.(*ecdsa.PrivateKey).ECDH()
	if err != nil {
		t.Fatal(err)
	}
	s.addBytes(what+" scalar", ec.Bytes())
}

// check fails t for every secret that where (a log, the API's answers, an
// error) shows.
func (s secretSet) check(t *testing.T, where, text string) {
	t.Helper()
	for what, secret := range s {
		if strings.Contains(text, secret) {
			t.Errorf("%s shows the %s", where, what)
		}
	}
}

// randomKey returns n random bytes.
func randomKey(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestSecretsStayOut runs an agent with every secret set (gossip key,
// ticket key, both API tokens, a TLS key behind an HTTPS API), logging at
// trace level, does what an operator and a client do, and checks that no
// secret, nor the farm's own ticket key or the handoff keys derived from
// either ticket key, shows up in the log or in any answer of the API.
func TestSecretsStayOut(t *testing.T) {
	ticketKey, gossipKey := randomKey(32), randomKey(32)
	files := writeTLSFiles(t, "prod", "n1", time.Now(), time.Hour)
	c := tlsConfig(files)
	on := true
	c.TicketKey = hex.EncodeToString(ticketKey)
	c.EncryptKey = base64.StdEncoding.EncodeToString(gossipKey)
	c.APIToken, c.APIWriteToken = testReadToken, testWriteToken
	c.APITLS = &on
	c.LogLevel = "trace"
	var logs syncBuffer
	a := startAgentLogged(t, c, hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &logs}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := client.Dial(ctx, a.VIPAddr(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { n, _ := a.ep.Load(); return n == 1 })
	s.Close()
	waitFor(t, func() bool { return len(a.cl.Load().State().TicketKey) > 0 })
	farmKey := a.cl.Load().State().TicketKey

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: APIClientTLS(verifierOf(t, files.ca.CertPEM()), "n1")}}
	answers := apiAnswers(t, hc, a.APIURL(), c.NodeName)
	a.Close()

	secrets := secretSet{}
	secrets.addBytes("ticket key", ticketKey)
	secrets.addBytes("handoff key", wire.HandoffKey(ticketKey))
	secrets.addBytes("farm ticket key", farmKey)
	secrets.addBytes("farm handoff key", wire.HandoffKey(farmKey))
	secrets.addBytes("gossip key", gossipKey)
	secrets[`gossip key (config)`] = c.EncryptKey
	secrets.addText("read token", testReadToken)
	secrets.addText("write token", testWriteToken)
	secrets.addKeyFile(t, "TLS key", files.KeyFile)
	secrets.check(t, "the log", logs.String())
	secrets.check(t, "the API", answers)
	for _, want := range []string{"agent started", "[TRACE]", `"ticketed": true`} {
		if !strings.Contains(logs.String()+answers, want) {
			t.Errorf("no %q in the log or the answers: the check proves nothing", want)
		}
	}
}

// apiAnswers fetches every GET endpoint of the API at base with the read
// token, and a few refused requests, and returns all the answers.
func apiAnswers(t *testing.T, hc *http.Client, base, node string) string {
	t.Helper()
	var out strings.Builder
	for _, r := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/v1/health", testReadToken, 200},
		{"GET", "/v1/status", testReadToken, 200},
		{"GET", "/v1/view", testReadToken, 200},
		{"GET", "/v1/members", testReadToken, 200},
		{"GET", "/v1/sessions", testReadToken, 200},
		{"GET", "/metrics", testReadToken, 200},
		{"GET", "/v1/nothing", testReadToken, 404},
		{"PUT", "/v1/drain?node=" + node, testReadToken, 401},
		{"PUT", "/v1/drain?node=" + node, "wrong-token-0123456789", 401},
		{"PUT", "/v1/drain?node=nobody", testWriteToken, 404},
	} {
		req, _ := http.NewRequest(r.method, base+r.path, nil)
		req.Header.Set(TokenHeader, r.token)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != r.want {
			t.Errorf("%s %s: %d %s", r.method, r.path, resp.StatusCode, body)
		}
		fmt.Fprintf(&out, "%s %s\n%s\n", resp.Status, resp.Header, body)
	}
	return out.String()
}

// TestSecretsStayOutOfFarm runs three agents with every secret set, a
// drain forwarded from a follower to the leader over HTTPS, and checks the
// trace logs of all three and their answers.
func TestSecretsStayOutOfFarm(t *testing.T) {
	ticketKey, gossipKey := randomKey(32), randomKey(32)
	ca := newFarmCA(t)
	var logs syncBuffer
	f := newLoggedFarm(t, 3, 3, func(i int, c *Config) {
		ca.tweak(t, true)(i, c)
		c.TicketKey = hex.EncodeToString(ticketKey)
		c.EncryptKey = base64.StdEncoding.EncodeToString(gossipKey)
		c.Insecure = false
		c.LogLevel = "trace"
	}, hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &logs}))
	leader := f.leader()
	via, target := f.followers()[0], f.followers()[1]
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: APIClientTLS(verifierOf(t, ca.ca.CertPEM()), "")}}
	// The follower forwards once it holds the leader's signed report,
	// which names the leader's API.
	waitFor(t, func() bool { _, api := via.LeaderAPI(); return api != "" })
	if status := drainThrough(t, via, hc, target.cfg.NodeName); status != http.StatusOK {
		t.Fatalf("drain through a follower: %d", status)
	}
	var answers strings.Builder
	for _, a := range f.agents {
		answers.WriteString(apiAnswers(t, hc, a.APIURL(), target.cfg.NodeName))
	}
	waitFor(t, func() bool { return len(leader.cl.Load().State().TicketKey) > 0 })
	farmKey := leader.cl.Load().State().TicketKey
	for _, a := range f.agents {
		a.Close()
	}

	secrets := secretSet{}
	secrets.addBytes("ticket key", ticketKey)
	secrets.addBytes("handoff key", wire.HandoffKey(ticketKey))
	secrets.addBytes("farm ticket key", farmKey)
	secrets.addBytes("farm handoff key", wire.HandoffKey(farmKey))
	secrets.addBytes("gossip key", gossipKey)
	secrets.addText("read token", testReadToken)
	secrets.addText("write token", testWriteToken)
	for _, a := range f.agents {
		secrets.addKeyFile(t, a.cfg.NodeName+"'s TLS key", a.cfg.TLS.KeyFile)
	}
	secrets.check(t, "the farm's logs", logs.String())
	secrets.check(t, "the farm's API", answers.String())
	for _, want := range []string{"forwarded to the leader", "drain set through the api", "[DEBUG]"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %q in the logs: the check proves nothing", want)
		}
	}
}

// TestSecretsStayOutOfConfigErrors sets every secret key to a value that
// is refused and checks that the error names the key but never shows the
// value, whether it came from the structure, a flag or a file.
func TestSecretsStayOutOfConfigErrors(t *testing.T) {
	secret := randomKey(20)
	files := writeTLSFiles(t, "prod", "n1", time.Now(), time.Hour)
	other := writeTLSFiles(t, "prod", "n1", time.Now(), time.Hour)
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	shortText := hex.EncodeToString(secret)[:12]
	longText := "tok-" + hex.EncodeToString(secret)
	sharedToken := write("shared-token", longText, 0o644)
	garbageKey := write("garbage-key.pem", "-----BEGIN PRIVATE KEY-----\n"+base64.StdEncoding.EncodeToString(secret)+"\n-----END PRIVATE KEY-----\n", 0o600)
	wideKey := write("wide-key.pem", string(mustRead(t, files.KeyFile)), 0o644)
	for _, tt := range []struct {
		name   string
		key    string
		adjust func(c *Config)
	}{
		{"encrypt_key not base64", "encrypt_key", func(c *Config) { c.EncryptKey = hex.EncodeToString(secret) + "!" }},
		{"encrypt_key of 20 bytes", "encrypt_key", func(c *Config) { c.EncryptKey = base64.StdEncoding.EncodeToString(secret) }},
		{"ticket_key not hex", "ticket_key", func(c *Config) { c.TicketKey = "zz" + hex.EncodeToString(secret) }},
		{"ticket_key too short", "ticket_key", func(c *Config) { c.TicketKey = hex.EncodeToString(secret[:8]) }},
		{"api_token too short", "api_token", func(c *Config) { c.APIToken = shortText }},
		{"api_write_token too short", "api_write_token", func(c *Config) { c.APIWriteToken = shortText }},
		{"api_token and its file", "api_token_file", func(c *Config) { c.APIToken, c.APITokenFile = longText, sharedToken }},
		{"api_token_file readable by others", "api_token_file", func(c *Config) { c.APITokenFile = sharedToken }},
		{"api_write_token_file readable by others", "api_write_token_file", func(c *Config) { c.APIWriteTokenFile = sharedToken }},
		{"tls key readable by others", "tls.key_file", func(c *Config) { c.TLS.KeyFile = wideKey }},
		{"tls key of another certificate", "tls.key_file", func(c *Config) { c.TLS.KeyFile = other.KeyFile }},
		{"tls key file not a key", "tls.key_file", func(c *Config) { c.TLS.KeyFile = garbageKey }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := tlsConfig(files)
			tt.adjust(&c)
			_, err := c.Build()
			if err == nil || !strings.Contains(err.Error(), tt.key+":") {
				t.Fatalf("Validate = %v, want an error naming %s", err, tt.key)
			}
			secrets := secretSet{}
			secrets.addBytes("secret", secret)
			secrets.addText("token", longText)
			secrets.addText("short token", shortText)
			secrets.addKeyFile(t, "TLS key", files.KeyFile)
			secrets.addKeyFile(t, "other TLS key", other.KeyFile)
			secrets.check(t, "the error", err.Error())
		})
	}
	for _, src := range []string{
		"encrypt_key = \"" + longText + "\" junk\n",
		"api_token = [\"" + longText + "\"]\n",
		"api_write_token = \"" + longText + "\nnode_name = \"x\"\n",
		"tls {\n  key_file = \"" + longText + "\" x\n}\n",
	} {
		_, err := ParseConfig([]byte(src), "usher.hcl")
		if err == nil {
			t.Fatalf("%q parsed", src)
		}
		if strings.Contains(err.Error(), longText) {
			t.Errorf("the file's error shows the token: %v", err)
		}
	}
}

// mustRead returns the content of path.
func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(b)
}
