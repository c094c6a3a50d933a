package node

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/client"
	"github.com/usherlb/usher/cluster"
	"github.com/usherlb/usher/internal/testutil"
	"github.com/usherlb/usher/wire"
)

// testConfig is a dev-like configuration on free loopback ports.
func testConfig() Config {
	c := DevConfig()
	c.NodeName = "test"
	c.SessionAddr = "127.0.0.1:0"
	c.Bind = "127.0.0.1:0"
	c.VIP = "127.0.0.1:0"
	c.HTTP = "127.0.0.1:0"
	c.KeepaliveInterval = "50ms"
	c.DeadAfter = "2s"
	c.SessionTTL = "10s"
	c.RequireTicket = true
	return c
}

func getJSON(t *testing.T, hc *http.Client, url string, v any) int {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); v != nil && ct != "application/json" {
		t.Errorf("%s: content type %q", url, ct)
	}
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
	}
	return resp.StatusCode
}

// startAgent starts an agent and waits until it answers probes.
func startAgent(t *testing.T, c Config) *Agent {
	t.Helper()
	return startAgentLogged(t, c, nil)
}

// startAgentLogged is startAgent with the agent logging to logger.
func startAgentLogged(t *testing.T, c Config, logger hclog.Logger) *Agent {
	t.Helper()
	a, err := New(c, logger)
	if err != nil {
		t.Fatal(err)
	}
	testutil.AwaitServing(t, a)
	return a
}

func TestAgentEndToEnd(t *testing.T) {
	a := startAgent(t, testConfig())
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	base := "http://" + a.HTTPAddr()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := client.Dial(ctx, a.VIPAddr(), client.Options{Events: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Server() != a.SessionAddr() {
		t.Fatalf("assigned %v, want %v", s.Server(), a.SessionAddr())
	}
	if s.Term() != a.Term() || s.Term() == 0 {
		t.Errorf("term %d, agent serves in %d", s.Term(), a.Term())
	}
	checkStockAtVIP(t, a)

	// Keepalives with the ticket are accepted: the session appears.
	waitFor(t, func() bool { n, _ := a.ep.Load(); return n == 1 && s.Stats().KeepalivesAnswered > 0 })

	var st Status
	if code := getJSON(t, hc, base+"/v1/status", &st); code != 200 || st.Node != "test" || st.Role != "leader" || st.Term != a.Term() || st.Leader != "test" || st.VIPHolder != "test" || st.Members != 1 ||
		!st.Serving || st.Sessions != 1 || st.Accepted != 1 || st.SessionAddr != a.SessionAddr().String() || st.Version != Version {
		t.Errorf("status %d %+v", code, st)
	}
	var view struct {
		Policy string
		Nodes  []viewNode
	}
	waitFor(t, func() bool {
		getJSON(t, hc, base+"/v1/view", &view)
		return len(view.Nodes) == 1 && view.Nodes[0].Sessions == 1
	})
	if view.Policy != "least-loaded" || view.Nodes[0].ID != "test" || view.Nodes[0].Addr != a.SessionAddr().String() {
		t.Errorf("view %+v", view)
	}
	var sessions struct {
		Count    int
		Sessions []sessionJSON
	}
	getJSON(t, hc, base+"/v1/sessions", &sessions)
	if sessions.Count != 1 || len(sessions.Sessions) != 1 || !sessions.Sessions[0].Ticketed ||
		sessions.Sessions[0].Client != s.LocalAddr().String() && !strings.HasSuffix(sessions.Sessions[0].Client, ":"+itoa(s.LocalAddr().Port())) {
		t.Errorf("sessions %+v (client %v)", sessions, s.LocalAddr())
	}
	var health map[string]bool
	if code := getJSON(t, hc, base+"/v1/health", &health); code != 200 || !health["ok"] {
		t.Errorf("health %d %v", code, health)
	}
	var e map[string]string
	if code := getJSON(t, hc, base+"/v1/nope", &e); code != 404 || e["error"] == "" {
		t.Errorf("unknown path %d %v", code, e)
	}
	if resp, err := hc.Post(base+"/v1/status", "text/plain", nil); err != nil || resp.StatusCode != 405 {
		t.Errorf("POST /v1/status: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	resp, err := hc.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"usher_probes_answered_total", "usher_balancer_stun_binding_answered_total", "usher_keepalives_answered_total", "usher_sessions",
		"go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Drain through the API: the client hears USHER-DRAIN.
	for _, tc := range []struct {
		url  string
		code int
	}{{"/v1/drain", 400}, {"/v1/drain?node=other", 404}, {"/v1/drain?node=test&enable=maybe", 400}, {"/v1/drain?node=test", 200}} {
		req, _ := http.NewRequest(http.MethodPut, base+tc.url, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("PUT %s: %d, want %d", tc.url, resp.StatusCode, tc.code)
		}
	}
	waitFor(t, func() bool { return a.Status().Draining })
	deadline := time.After(10 * time.Second)
	for drained := false; !drained; {
		select {
		case ev := <-s.Events():
			drained = ev.Kind == client.Draining
		case <-deadline:
			t.Fatal("no Draining event")
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, base+"/v1/drain?node=test", nil)
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("undrain: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// The undrain goes through Raft; the endpoint follows the agreed state.
	waitFor(t, func() bool { return !a.Status().Draining })

	s.Close()
	if err := a.Close(); err != nil {
		t.Error(err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestAgentRefusesBadConfig(t *testing.T) {
	c := testConfig()
	c.Capacity = -1
	if _, err := New(c, nil); err == nil || !strings.Contains(err.Error(), "capacity") {
		t.Errorf("got %v", err)
	}
	// A port in use fails cleanly and leaks nothing.
	a := startAgent(t, testConfig())
	c = testConfig()
	c.SessionAddr = a.SessionAddr().String()
	if _, err := New(c, nil); err == nil {
		t.Error("second agent bound the same session address")
	}
	c = testConfig()
	c.HTTP = a.HTTPAddr()
	if _, err := New(c, nil); err == nil {
		t.Error("second agent bound the same HTTP address")
	}
}

// checkStockAtVIP checks what stock clients get at the agent's balancer
// address: a STUN Binding request learns its source address, as from any
// STUN server, and is counted as such; a TURN Allocate gets a 300 naming
// the agent's session address.
func checkStockAtVIP(t *testing.T, a *Agent) {
	t.Helper()
	stock, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(a.VIPAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer stock.Close()
	for _, m := range []*stun.Message{
		stun.MustBuild(stun.TransactionID, stun.BindingRequest),
		stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
			stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}),
	} {
		stock.Write(m.Raw)
		stock.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 1500)
		n, err := stock.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		ans := &stun.Message{Raw: buf[:n]}
		if err := ans.Decode(); err != nil || ans.Type.Method != m.Type.Method {
			t.Errorf("%v: answer %v, %v", m.Type, ans, err)
			continue
		}
		if m.Type.Method == stun.MethodBinding {
			var xor stun.XORMappedAddress
			if ans.Type.Class != stun.ClassSuccessResponse || xor.GetFrom(ans) != nil || xor.String() != stock.LocalAddr().String() {
				t.Errorf("%v: answer %v naming %v, want a success naming %v", m.Type, ans, xor, stock.LocalAddr())
			}
			continue
		}
		var code stun.ErrorCodeAttribute
		var alt stun.AlternateServer
		if code.GetFrom(ans) != nil || code.Code != stun.CodeTryAlternate ||
			alt.GetFrom(ans) != nil || net.JoinHostPort(alt.IP.String(), strconv.Itoa(alt.Port)) != a.SessionAddr().String() {
			t.Errorf("%v: answer %v %v %v", m.Type, ans, code, alt)
		}
	}
	waitFor(t, func() bool { return a.resp.Stats().StockBindings == 1 })
}

// waitFor fails t unless cond holds within 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, "the condition", cond)
}

func itoa(n uint16) string { return strconv.Itoa(int(n)) }

func TestAgentScriptVIP(t *testing.T) {
	dir := t.TempDir()
	log := dir + "/vip.log"
	c := testConfig()
	c.HTTP = ""
	c.VIPMode = "script"
	c.VIPAcquireScript = `echo "acquire $USHER_VIP $USHER_NODE $USHER_TERM" >> ` + log
	c.VIPReleaseScript = `echo "release $USHER_VIP" >> ` + log
	a := startAgent(t, c)
	term := a.Term()
	if !a.VIPAddr().IsValid() || a.HTTPAddr() != "" {
		t.Errorf("vip %v http %q", a.VIPAddr(), a.HTTPAddr())
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "acquire 127.0.0.1 test "+strconv.FormatUint(term, 10)+"\nrelease 127.0.0.1\n"; got != want {
		t.Errorf("script log %q, want %q", got, want)
	}

	// An acquire script that fails: the node never answers probes.
	c.VIPAcquireScript = "exit 3"
	b2, err := New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := b2.WaitServing(ctx); err == nil {
		t.Error("serving although the acquire script fails")
	}
}

// TestAgentTickets checks require_ticket through a running agent: a
// keepalive that begins a session, or moves a known one to a new client
// address, without a valid ticket gets a 401 error answer and changes no
// session, whatever is wrong with the ticket (missing, forged, sealed with
// another key, expired, issued for another session or another client
// address); one with the ticket the leader issued is accepted.
func TestAgentTickets(t *testing.T) {
	a := startAgent(t, testConfig()) // require_ticket = true
	ca, cb := listenUDP(t, "127.0.0.1:0"), listenUDP(t, "127.0.0.1:0")
	addrA := ca.LocalAddr().(*net.UDPAddr).AddrPort()
	addrB := cb.LocalAddr().(*net.UDPAddr).AddrPort()
	s, other := wire.SessionID{0x71, 1}, wire.SessionID{0x71, 2}
	tk := agentTickets(t, a, ca, s, addrB)

	steps := []struct {
		name    string
		from    *net.UDPConn
		session wire.SessionID
		ticket  []byte
		refused bool
		client  netip.AddrPort // s's client address after the step; zero: no session
	}{
		{"missing", ca, s, nil, true, netip.AddrPort{}},
		{"forged", ca, s, tk.forged, true, netip.AddrPort{}},
		{"another key", ca, s, tk.otherKey, true, netip.AddrPort{}},
		{"expired", ca, s, tk.expired, true, netip.AddrPort{}},
		{"another session", ca, other, tk.genuine, true, netip.AddrPort{}},
		{"valid", ca, s, tk.genuine, false, addrA},
		{"known, from its address", ca, s, nil, false, addrA},
		{"moved, no ticket", cb, s, nil, true, addrA},
		{"moved, the old address's ticket", cb, s, tk.genuine, true, addrA},
		{"moved, forged", cb, s, tk.forged, true, addrA},
		{"moved with its own ticket", cb, s, tk.forB, false, addrB},
	}
	refused := uint64(0)
	for _, st := range steps {
		r := roundTrip(t, st.from, a.SessionAddr(), keepalive(t, st.session, st.ticket, wire.KeepaliveSize))
		from := st.from.LocalAddr().(*net.UDPAddr).AddrPort()
		switch {
		case st.refused && (r.Success || r.Code != stun.CodeUnauthorized):
			t.Errorf("%s: answer %+v, want 401", st.name, r)
		case !st.refused && (!r.Success || r.Mapped != from):
			t.Errorf("%s: answer %+v, want success mapping %v", st.name, r, from)
		}
		if st.refused {
			refused++
		}
		var got, want []netip.AddrPort
		for _, si := range a.ep.Sessions() {
			if si.ID != s || !si.Ticketed {
				t.Errorf("%s: session %+v", st.name, si)
			}
			got = append(got, si.Client)
		}
		if st.client.IsValid() {
			want = append(want, st.client)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: sessions at %v, want %v", st.name, got, want)
		}
	}
	if got := a.Stats().Endpoint.Refused; got != refused {
		t.Errorf("%d refusals counted, %d sent", got, refused)
	}
}

// testTickets are the tickets TestAgentTickets shows.
type testTickets struct {
	genuine  []byte // the leader's, for session s from A
	forged   []byte // genuine with a MAC bit flipped
	otherKey []byte // for s from A, sealed with a key other than the farm's
	expired  []byte // for s from A, with the farm's key, expired a minute ago
	forB     []byte // for s from B, with the farm's key
}

// agentTickets waits until a's session endpoint checks tickets with the
// farm's key, probes a from ca (client address A) for session s to get the
// genuine ticket, and makes the others with or without the farm's key,
// checking that each is good or bad for the reason its name gives.
func agentTickets(t *testing.T, a *Agent, ca *net.UDPConn, s wire.SessionID, addrB netip.AddrPort) testTickets {
	t.Helper()
	var key []byte
	waitFor(t, func() bool {
		key = a.cl.Load().State().TicketKey
		return len(key) > 0 && bytes.Equal(*a.ep.keys.next.Load(), key)
	})
	srv, addrA := a.SessionAddr(), ca.LocalAddr().(*net.UDPAddr).AddrPort()
	rd := roundTrip(t, ca, a.VIPAddr(), probe(t, wire.Probe{Session: s, PadTo: wire.ProbeSize}))
	if rd.Server != srv || len(rd.Ticket) != wire.TicketLen {
		t.Fatalf("redirect %+v", rd)
	}
	tk := wire.NewTicketer(key)
	now := time.Now()
	later := uint32(now.Add(time.Hour).Unix())
	tt := testTickets{
		genuine:  bytes.Clone(rd.Ticket),
		otherKey: wire.NewTicketer(bytes.Repeat([]byte{7}, len(key))).Append(nil, s, addrA, srv, later),
		expired:  tk.Append(nil, s, addrA, srv, uint32(now.Add(-time.Minute).Unix())),
		forB:     tk.Append(nil, s, addrB, srv, later),
	}
	tt.forged = bytes.Clone(tt.genuine)
	tt.forged[len(tt.forged)-1] ^= 1 // the MAC's last byte
	for _, c := range []struct {
		ticket []byte
		want   error
	}{{tt.genuine, nil}, {tt.forged, wire.ErrTicketInvalid}, {tt.otherKey, wire.ErrTicketInvalid}, {tt.expired, wire.ErrTicketExpired}} {
		if err := tk.Verify(c.ticket, s, addrA, srv, uint32(now.Unix())); !errors.Is(err, c.want) {
			t.Fatalf("ticket % x: %v, want %v", c.ticket, err, c.want)
		}
	}
	if err := tk.Verify(tt.forB, s, addrB, srv, uint32(now.Unix())); err != nil {
		t.Fatalf("the ticket for B: %v", err)
	}
	return tt
}

// TestAgentEndpointStock checks that the session endpoint of an agent keeps
// to the configured stock_amplification: with a factor of 2 a 20-byte stock
// Binding request from IPv4 gets its 32-byte answer (a factor of 1 would
// allow none).
func TestAgentEndpointStock(t *testing.T) {
	c := testConfig()
	c.StockAmplification = 2
	a := startAgent(t, c)
	cl := listenUDP(t, "127.0.0.1:0")
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw
	r := roundTrip(t, cl, a.SessionAddr(), req)
	if !r.Success || r.Mapped != cl.LocalAddr().(*net.UDPAddr).AddrPort() || r.Size > 2*len(req) {
		t.Errorf("answer %+v to a %d-byte request", r, len(req))
	}
	if st := a.Stats().Endpoint; st.Stock != 1 || st.Keepalives != 0 {
		t.Errorf("endpoint stats %+v", st)
	}
}

// TestAgentStockBindingRedirect checks that stock_binding = "redirect"
// reaches the responder: a stock Binding at the balancer address gets the
// 300 naming the agent's session address, as it did before the default
// became a Binding success.
func TestAgentStockBindingRedirect(t *testing.T) {
	c := testConfig()
	c.StockBinding = "redirect"
	a := startAgent(t, c)
	cl := listenUDP(t, "127.0.0.1:0")
	r := roundTrip(t, cl, a.VIPAddr(), stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw)
	if r.Success || r.Code != stun.CodeTryAlternate || r.Server != a.SessionAddr() {
		t.Errorf("answer %+v, want a redirect to %v", r, a.SessionAddr())
	}
}

// TestAgentPendingNeverRefuses checks that the leader's own redirects,
// counted against a node until its reports show them, never make it refuse
// a probe while the node's reports show room: a node of capacity 4 and a
// burst of 6 probes whose clients never arrive, so its reports show no
// session throughout. All 6 are redirected to it; before, the last 2 were
// refused as no_server, which let anyone who can send probes close the
// farm to everyone else.
func TestAgentPendingNeverRefuses(t *testing.T) {
	c := testConfig()
	c.Capacity = 4
	a := startAgent(t, c)
	waitFor(t, func() bool {
		nodes := a.view.Load().Nodes()
		return len(nodes) == 1 && !nodes[0].Suspect && nodes[0].Capacity == 4
	})
	cl := listenUDP(t, "127.0.0.1:0")
	const burst = 6
	for i := range burst {
		p := probe(t, wire.Probe{Session: wire.SessionID{0x1d, byte(i)}, PadTo: wire.ProbeSize})
		if _, err := cl.WriteToUDPAddrPort(p, a.VIPAddr()); err != nil {
			t.Fatal(err)
		}
		// The count of answers follows the send, so it may trail it.
		waitFor(t, func() bool {
			st := a.resp.Stats()
			return st.Answered+st.Overloaded == uint64(i+1)
		})
	}
	if st := a.resp.Stats(); st.Answered != burst || st.Overloaded != 0 || st.Drops["no_server"] != 0 {
		t.Errorf("%d probes to a node of capacity %d: %d redirected, %d refused (508), %d dropped as no_server",
			burst, c.Capacity, st.Answered, st.Overloaded, st.Drops["no_server"])
	}
	var d wire.Decoder
	buf := make([]byte, maxDatagram)
	for i := range burst {
		cl.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := cl.Read(buf)
		if err != nil {
			t.Fatalf("redirect %d: %v", i+1, err)
		}
		var r wire.Response
		if err := d.DecodeResponse(buf[:n], &r); err != nil || r.Server != a.SessionAddr() {
			t.Errorf("redirect %d: %+v, %v", i+1, r, err)
		}
	}
}

// TestAgentWithoutFarmKeyDrains starts an agent that cannot form its farm
// (it waits for two more voters), so it never learns the farm's ticket
// key: it must declare itself draining, and the view must give it no
// session.
func TestAgentWithoutFarmKeyDrains(t *testing.T) {
	c := testConfig()
	c.BootstrapExpect = 3
	c.Insecure = true
	c.DataDir = t.TempDir()
	a, err := New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	var self cluster.Member
	waitFor(t, func() bool {
		for _, m := range a.cl.Load().Members() {
			if m.Name == c.NodeName && m.Report.Service.IsValid() {
				self = m
				return true
			}
		}
		return false
	})
	if !self.Report.Draining {
		t.Fatalf("an agent without the farm's ticket key reports %+v, want draining", self.Report)
	}
	for _, n := range a.view.Load().Nodes() {
		if n.ID == c.NodeName && !n.Starting {
			t.Errorf("the view offers %s for sessions: %+v", n.ID, n)
		}
	}
}

// TestNewFromRuntimeReadsSecretsOnce builds a configuration whose ticket
// key comes from a file, removes the file and starts the agent on the
// build: the agent runs on what Build read (the command line builds once)
// and holds that key.
func TestNewFromRuntimeReadsSecretsOnce(t *testing.T) {
	key := bytes.Repeat([]byte{7}, cluster.TicketKeySize)
	rt := buildThenRemove(t, hex.EncodeToString(key), func(c *Config, path string) { c.TicketKeyFile = path })
	a, err := NewFromRuntime(rt, nil)
	if err != nil {
		t.Fatalf("the agent read its configuration again: %v", err)
	}
	testutil.AwaitServing(t, a)
	if got := a.cl.Load().State().TicketKey; !bytes.Equal(got, key) {
		t.Fatalf("ticket key %x, want the file's %x", got, key)
	}
}

// buildThenRemove builds testConfig with a secret file holding content,
// named by set, and removes the file once built: what runs on the
// returned Runtime must not read it again.
func buildThenRemove(t *testing.T, content string, set func(c *Config, path string)) Runtime {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	c := testConfig()
	set(&c, path)
	rt, err := c.Build()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	return rt
}

// TestAgentOverloadRetryAfter checks that overload_retry_after reaches the
// balancer's overload answer: with its only node drained, an agent
// answers an Usher probe with a 508 whose USHER-RETRY-AFTER is the
// configured wait.
func TestAgentOverloadRetryAfter(t *testing.T) {
	c := testConfig()
	c.OverloadRetryAfter = "3750ms"
	a := startAgent(t, c)
	waitFor(t, func() bool { return len(a.view.Load().Nodes()) == 1 })
	if err := a.DrainNode(c.NodeName, true); err != nil {
		t.Fatal(err)
	}
	cl := listenUDP(t, "127.0.0.1:0")
	var r wire.Response
	waitFor(t, func() bool {
		p := probe(t, wire.Probe{Session: wire.SessionID{0x0a}, PadTo: wire.ProbeSize})
		r = roundTrip(t, cl, a.VIPAddr(), p)
		return r.Code == stun.CodeInsufficientCapacity
	})
	if r.RetryAfter != 3750*time.Millisecond {
		t.Errorf("508 with USHER-RETRY-AFTER %v, want 3.75s", r.RetryAfter)
	}
}
