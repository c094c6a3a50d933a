package node

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// The HTTP API's access rules. Reads of the agent's own state (health,
// status, view, members, metrics) are open to whoever reaches the API;
// reading the session table (every client's address) needs the read token,
// and every write (drain, undrain, leave) needs the write token. A
// configuration with only api_token uses it for both. An API on a
// non-loopback address must have a token (Validate refuses it otherwise);
// on loopback without tokens every request is allowed, as a local operator
// is trusted there. Every request, with or without a token, must name the
// agent in its Host header, so a web page that rebinds a DNS name to the
// agent's address cannot reach it from a browser on the same host.

// TokenHeader is the header that carries an API token. "Authorization:
// Bearer TOKEN" is accepted too.
const TokenHeader = "X-Usher-Token" //nolint:gosec // G101: a header name, not a credential

// apiAccess decides who may do what on the API.
type apiAccess struct {
	read, write string          // empty: no token needed
	hosts       map[string]bool // allowed Host names and addresses, lower case
}

// newAPIAccess builds the access rules for an API listening on listen.
// extra names further hosts (api_hosts); own lists the agent's own
// addresses, which are always allowed.
func newAPIAccess(p Parsed, listen netip.AddrPort, extra []string, own []netip.Addr) *apiAccess {
	a := &apiAccess{read: p.APIReadToken, write: p.APIWriteToken, hosts: map[string]bool{}}
	add := func(h string) { a.hosts[strings.ToLower(strings.Trim(h, "[]"))] = true }
	for _, h := range extra {
		add(h)
	}
	for _, ip := range own {
		add(ip.Unmap().String())
	}
	if listen.IsValid() {
		add(listen.Addr().Unmap().String())
		if listen.Addr().IsLoopback() || listen.Addr().IsUnspecified() {
			add("localhost")
			add("127.0.0.1")
			add("::1")
		}
		if listen.Addr().IsUnspecified() {
			for _, ip := range interfaceAddrs() {
				add(ip.String())
			}
		}
	}
	return a
}

// interfaceAddrs lists the host's interface addresses (for an API bound to
// an unspecified address, which any of them reaches).
func interfaceAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out
}

// hostAllowed reports whether the request's Host header names this agent.
func (a *apiAccess) hostAllowed(r *http.Request) bool {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.Unmap().String()
	}
	return host != "" && a.hosts[host]
}

// need says which token a route needs.
type need int

const (
	needNone  need = iota // open read
	needRead              // the session table
	needWrite             // drains, leave
)

// allowed reports whether r carries the token that n needs. The write token
// also grants reads.
func (a *apiAccess) allowed(r *http.Request, n need) bool {
	switch n {
	case needNone:
		return true
	case needRead:
		if a.read == "" && a.write == "" {
			return true
		}
		return tokenIs(r, a.read) || tokenIs(r, a.write)
	default:
		if a.write == "" {
			return true
		}
		return tokenIs(r, a.write)
	}
}

// tokenIs reports whether r presents want (non-empty), compared in constant
// time.
func tokenIs(r *http.Request, want string) bool {
	if want == "" {
		return false
	}
	got := r.Header.Get(TokenHeader)
	if got == "" {
		if b, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			got = strings.TrimSpace(b)
		}
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// guard wraps h with the Host check and the token check for n.
func (a *apiAccess) guard(n need, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !a.hostAllowed(r) {
			writeError(w, http.StatusForbidden, "host "+quoteHost(r.Host)+" does not name this agent (see api_hosts)")
			return
		}
		if !a.allowed(r, n) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="usher"`)
			writeError(w, http.StatusUnauthorized, "this request needs an api token ("+TokenHeader+" or Authorization: Bearer)")
			return
		}
		h(w, r)
	}
}

// quoteHost quotes a Host header for an error message, bounded in length.
func quoteHost(h string) string {
	if len(h) > 64 {
		h = h[:64] + "..."
	}
	return "\"" + strings.ToValidUTF8(h, "?") + "\""
}
