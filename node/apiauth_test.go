package node

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	testReadToken  = "read-token-0123456789"
	testWriteToken = "write-token-0123456789"
)

func TestAPIAccess(t *testing.T) {
	listen := netip.MustParseAddrPort("127.0.0.1:7480")
	both := newAPIAccess(Parsed{APIReadToken: testReadToken, APIWriteToken: testWriteToken}, listen, []string{"usher.example"}, nil)
	single := newAPIAccess(Parsed{APIReadToken: testReadToken, APIWriteToken: testReadToken}, listen, nil, nil)
	open := newAPIAccess(Parsed{}, listen, nil, []netip.Addr{netip.MustParseAddr("198.18.0.11")})
	for _, tt := range []struct {
		name   string
		acc    *apiAccess
		host   string
		header string // "Name: value"
		need   need
		want   int
	}{
		{"open read", both, "127.0.0.1:7480", "", needNone, 200},
		{"localhost", both, "localhost:7480", "", needNone, 200},
		{"configured name", both, "Usher.Example", "", needNone, 200},
		{"rebound name", both, "attacker.example:7480", "", needNone, 403},
		{"rebound name with token", both, "attacker.example", TokenHeader + ": " + testWriteToken, needWrite, 403},
		{"empty host", both, "", "", needNone, 403},
		{"sessions without token", both, "127.0.0.1", "", needRead, 401},
		{"sessions with read token", both, "127.0.0.1", TokenHeader + ": " + testReadToken, needRead, 200},
		{"sessions with write token", both, "127.0.0.1", "Authorization: Bearer " + testWriteToken, needRead, 200},
		{"write with read token", both, "127.0.0.1", TokenHeader + ": " + testReadToken, needWrite, 401},
		{"write with write token", both, "127.0.0.1", "Authorization: Bearer " + testWriteToken, needWrite, 200},
		{"write with a prefix of the token", both, "127.0.0.1", TokenHeader + ": " + testWriteToken[:10], needWrite, 401},
		{"single token writes", single, "127.0.0.1", TokenHeader + ": " + testReadToken, needWrite, 200},
		{"single token needed", single, "127.0.0.1", "", needWrite, 401},
		{"no token on loopback", open, "127.0.0.1", "", needWrite, 200},
		{"own address", open, "198.18.0.11:7480", "", needNone, 200},
		{"ipv6 loopback", open, "[::1]:7480", "", needNone, 200},
		{"other address", open, "198.18.0.12", "", needNone, 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/v1/x", nil)
			r.Host = tt.host
			if name, value, ok := strings.Cut(tt.header, ": "); ok {
				r.Header.Set(name, value)
			}
			w := httptest.NewRecorder()
			tt.acc.guard(tt.need, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })(w, r)
			if w.Code != tt.want {
				t.Errorf("status %d, want %d (%s)", w.Code, tt.want, w.Body.String())
			}
		})
	}
}

func TestAPIConfig(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	private := file("private", testWriteToken+"\n", 0o600)
	shared := file("shared", testWriteToken, 0o644)
	for _, tt := range []struct {
		name   string
		adjust func(*Config)
		err    string // empty: valid
		read   string
		write  string
	}{
		{"loopback without token", func(c *Config) {}, "", "", ""},
		{"any address without token", func(c *Config) { c.HTTP = "0.0.0.0:7480" }, "http: \"0.0.0.0:7480\" is not a loopback address", "", ""},
		{"any address with token", func(c *Config) { c.HTTP = "0.0.0.0:7480"; c.APIToken = testReadToken }, "", testReadToken, testReadToken},
		{"write token only", func(c *Config) { c.HTTP = "198.18.0.11:7480"; c.APIWriteToken = testWriteToken }, "", "", testWriteToken},
		{"both tokens", func(c *Config) { c.APIToken = testReadToken; c.APIWriteToken = testWriteToken }, "", testReadToken, testWriteToken},
		{"short token", func(c *Config) { c.APIToken = "short" }, "api_token: \"(hidden)\" is shorter than 16", "", ""},
		{"token file", func(c *Config) { c.APIWriteTokenFile = private }, "", "", testWriteToken},
		{"readable token file", func(c *Config) { c.APITokenFile = shared }, "is readable by others", "", ""},
		{"missing token file", func(c *Config) { c.APITokenFile = filepath.Join(dir, "none") }, "api_token_file", "", ""},
		{"token and file", func(c *Config) { c.APIToken = testReadToken; c.APITokenFile = private }, "cannot be set together with api_token", "", ""},
		{"bad host name", func(c *Config) { c.APIHosts = []string{"a/b"} }, "api_hosts", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			tt.adjust(&c)
			rt, err := c.Build()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				if strings.Contains(err.Error(), testReadToken) || strings.Contains(err.Error(), testWriteToken) {
					t.Errorf("the error shows a token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rt.Parsed.APIReadToken != tt.read || rt.Parsed.APIWriteToken != tt.write {
				t.Errorf("tokens %q/%q, want %q/%q", rt.Parsed.APIReadToken, rt.Parsed.APIWriteToken, tt.read, tt.write)
			}
		})
	}
}

// TestAPITokensOnAgent attacks a running agent's API as a local web page or
// another host would: without a token, with the wrong one and with a
// foreign Host header.
func TestAPITokensOnAgent(t *testing.T) {
	c := testConfig()
	c.APIToken = testReadToken
	c.APIWriteToken = testWriteToken
	a := startAgent(t, c)
	base := "http://" + a.HTTPAddr()
	do := func(method, path, host, token string) int {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		if token != "" {
			req.Header.Set(TokenHeader, token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	drain := "/v1/drain?node=" + c.NodeName
	for _, tt := range []struct {
		method, path, host, token string
		want                      int
	}{
		{"GET", "/v1/status", "", "", 200},
		{"GET", "/v1/status", "rebind.attacker.example", "", 403},
		{"GET", "/v1/sessions", "", "", 401},
		{"GET", "/v1/sessions", "", testReadToken, 200},
		{"PUT", drain, "", "", 401},
		{"PUT", drain, "", testReadToken, 401},
		{"PUT", drain, "rebind.attacker.example", testWriteToken, 403},
		{"PUT", "/v1/leave", "", "", 401},
		{"PUT", "/v1/services/game/load", "", "", 401},
		{"PUT", "/v1/services/game/load", "", testReadToken, 401},
		{"PUT", "/v1/services/game/load", "rebind.attacker.example", testWriteToken, 403},
		{"PUT", "/v1/services/game/load", "", testWriteToken, 404}, // past the guard: no such service here
		{"DELETE", drain, "", "", 401},
		{"PUT", drain, "", testWriteToken, 200},
		{"DELETE", drain, "localhost", testWriteToken, 200},
	} {
		if got := do(tt.method, tt.path, tt.host, tt.token); got != tt.want {
			t.Errorf("%s %s host %q token %t: %d, want %d", tt.method, tt.path, tt.host, tt.token != "", got, tt.want)
		}
	}
	if st := a.Status(); st.Sessions != 0 || a.cl.Load().State().Drained[c.NodeName] {
		t.Errorf("state changed by refused requests: %+v", st)
	}
}
