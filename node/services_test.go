package node

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/assign"
	"github.com/usherlb/usher/node/health"
	"github.com/usherlb/usher/node/loadsrc"
	"github.com/usherlb/usher/wire"
)

// fakeSTUN is a STUN server on loopback answering every Binding request
// with a success, as coturn does: what a service's stun check asks.
type fakeSTUN struct {
	conn     *net.UDPConn
	addr     netip.AddrPort
	done     chan struct{}
	loadFile string // its load figure, read by the agent (see serviceFarm)
}

// startFakeSTUN starts a fakeSTUN, stopped at the end of the test.
func startFakeSTUN(t *testing.T) *fakeSTUN {
	t.Helper()
	s := &fakeSTUN{conn: listenUDP(t, "127.0.0.1:0"), done: make(chan struct{})}
	s.addr = s.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	go s.serve()
	t.Cleanup(s.stop)
	return s
}

func (s *fakeSTUN) serve() {
	defer close(s.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		var req stun.Message
		if err := stun.Decode(buf[:n], &req); err != nil || req.Type.Method != stun.MethodBinding {
			continue
		}
		res := stun.MustBuild(&req, stun.BindingSuccess, &stun.XORMappedAddress{IP: from.Addr().AsSlice(), Port: int(from.Port())})
		s.conn.WriteToUDPAddrPort(res.Raw, from)
	}
}

// stop kills the server: its port then refuses (ICMP), as a dead
// coturn's does.
func (s *fakeSTUN) stop() {
	s.conn.Close()
	<-s.done
}

// serviceFarm starts n agents each offering service "turn" at a fakeSTUN
// of its own, checked every 250 ms, with vip_service = "turn". Each
// service's load is read every 250 ms from a file (a command source
// running cat), which setLoad writes.
func serviceFarm(t *testing.T, n int) (*testFarm, []*fakeSTUN) {
	t.Helper()
	servers := make([]*fakeSTUN, n)
	dir := t.TempDir()
	for i := range servers {
		servers[i] = startFakeSTUN(t)
		servers[i].loadFile = filepath.Join(dir, fmt.Sprintf("load%d", i))
		servers[i].setLoad(t, "0")
	}
	f := newTestFarm(t, n, n, func(i int, c *Config) {
		c.VIPService = "turn"
		c.Services = []ServiceConfig{{
			Name: "turn", Address: servers[i].addr.String(), Capacity: 100,
			Checks: []health.Spec{{Name: "turn", Type: "stun", Address: servers[i].addr.String(), Interval: "250ms", Timeout: "200ms"}},
			Load:   &loadsrc.Spec{Source: "command", Command: []string{"cat", servers[i].loadFile}, Interval: "250ms", Timeout: "200ms"},
		}}
	})
	return f, servers
}

// setLoad writes the figure the server's load source reads; an empty
// figure makes the source fail.
func (s *fakeSTUN) setLoad(t *testing.T, figure string) {
	t.Helper()
	if err := os.WriteFile(s.loadFile, []byte(figure), 0o600); err != nil {
		t.Fatal(err)
	}
}

// accepting returns the addresses of the leader's view of service svc
// that take new sessions.
func accepting(f *testFarm, svc string) []netip.AddrPort {
	pv := f.leader().serviceViews.Load()
	if pv == nil {
		return nil
	}
	var out []netip.AddrPort
	for _, n := range (*pv)[svc].Nodes() {
		if !n.Draining && !n.Suspect {
			out = append(out, n.Addr)
		}
	}
	return out
}

// TestFarmServices checks that a farm balances a named service: an Usher
// probe naming it and a stock TURN Allocate (vip_service) are sent to the
// service's addresses, spread over every node; an Usher probe naming no
// service still goes to a session endpoint; one naming an unknown
// service gets no answer.
func TestFarmServices(t *testing.T) {
	f, servers := serviceFarm(t, 3)
	var turn []netip.AddrPort
	for _, s := range servers {
		turn = append(turn, s.addr)
	}
	waitFor(t, func() bool { return len(accepting(f, "turn")) == 3 })
	f.viewed(3)

	c := listenUDP(t, "127.0.0.1:0")
	seen := map[netip.AddrPort]int{}
	for i := range 30 {
		var pkt []byte
		if i%2 == 0 {
			pkt = probe(t, wire.Probe{Service: "turn", Session: wire.SessionID{byte(i), 1}})
		} else {
			pkt = stockAllocate()
		}
		res := roundTrip(t, c, f.vip, pkt)
		if !slices.Contains(turn, res.Server) {
			t.Fatalf("request %d for turn sent to %v, not one of %v", i, res.Server, turn)
		}
		seen[res.Server]++
	}
	if len(seen) != 3 {
		t.Errorf("30 turn clients went to %d servers: %v", len(seen), seen)
	}
	res := roundTrip(t, c, f.vip, probe(t, wire.Probe{Session: wire.SessionID{9}}))
	if slices.Contains(turn, res.Server) || !res.Server.IsValid() {
		t.Errorf("a probe for the default service sent to %v", res.Server)
	}
	// Each agent exports its services' figures.
	a := f.agents[0]
	waitFor(t, func() bool {
		resp, err := http.Get(a.APIURL() + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), `usher_service_accepting{service="turn"} 1`) &&
			strings.Contains(string(body), `usher_service_capacity{service="turn"} 100`)
	})

	before := f.leader().resp.Stats().Drops["unknown_service"]
	pkt := probe(t, wire.Probe{Service: "sip", Session: wire.SessionID{8}})
	c.WriteToUDPAddrPort(pkt, f.vip)
	waitFor(t, func() bool { return f.leader().resp.Stats().Drops["unknown_service"] > before })
}

// TestFarmServiceHealth kills one node's server while its agent lives on
// and sends a stock Allocate every 20 ms: no client is sent to the dead
// server later than 1.5 s after it died (a 250 ms check, 2 failures), and
// none once it is out; when it answers again it is back.
func TestFarmServiceHealth(t *testing.T) {
	f, servers := serviceFarm(t, 3)
	waitFor(t, func() bool { return len(accepting(f, "turn")) == 3 })
	dead := servers[1]
	c := listenUDP(t, "127.0.0.1:0")

	died := time.Now() // read before the kill: the bound holds by construction
	dead.stop()
	var last time.Time
	for time.Since(died) < 3*time.Second {
		sent := time.Now()
		res := roundTrip(t, c, f.vip, stockAllocate())
		if res.Server == dead.addr {
			last = sent
		}
		time.Sleep(20 * time.Millisecond)
	}
	if late := last.Sub(died); !last.IsZero() && late > 1500*time.Millisecond {
		t.Errorf("a client was sent to the dead server %v after it died", late)
	}
	t.Logf("last client sent to the dead server %v after it died", max(last.Sub(died), 0))
	if slices.Contains(accepting(f, "turn"), dead.addr) {
		t.Fatal("the dead server is still accepting in the leader's view")
	}
	// Its own agent says why; another says only that it is unhealthy.
	for _, a := range f.agents {
		waitFor(t, func() bool {
			si, ok := serviceOf(a, "n2")
			return ok && si.State == "unhealthy"
		})
		si, _ := serviceOf(a, "n2")
		if own := a.cfg.NodeName == "n2"; own != (si.Reason != "") {
			t.Errorf("%s gives n2's reason %q", a.cfg.NodeName, si.Reason)
		}
	}

	// The server comes back on the same port: the farm takes it again.
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(dead.addr))
	if err != nil {
		t.Skipf("could not listen on %v again: %v", dead.addr, err)
	}
	back := &fakeSTUN{conn: conn, addr: dead.addr, done: make(chan struct{})}
	go back.serve()
	t.Cleanup(back.stop)
	waitFor(t, func() bool { return slices.Contains(accepting(f, "turn"), dead.addr) })
}

// TestServiceViewsSwap checks the responder's per-service assigners: a
// probe for a service reaches the newest view of that service, and a
// service missing from the views is an unknown one.
func TestServiceViewsSwap(t *testing.T) {
	clk := newFakeClock()
	var views atomic.Pointer[ServiceViews]
	r := NewResponder(ResponderConfig{Now: clk.Now, ServiceViews: &views, StockService: "turn", StockAmplification: 10})
	defer r.Close()
	p := &r.prober
	node := func(id string, addr netip.AddrPort) assign.Node {
		return assign.Node{ID: id, Addr: addr, Capacity: 10, ReportedAt: clk.Now()}
	}
	pkt := stockAllocate()
	if _, why := p.answer(nil, pkt, clientA); why != dropUnknownService {
		t.Fatalf("no views: %v, want unknown_service", why)
	}
	for _, want := range []netip.AddrPort{server1, server2} {
		v := ServiceViews{"turn": assign.NewView([]assign.Node{node("a", want)})}
		views.Store(&v)
		out, why := p.answer(nil, pkt, clientA)
		if why != dropNone {
			t.Fatal(why)
		}
		if got := decode(t, out).Server; got != want {
			t.Fatalf("sent to %v, want %v from the newest view", got, want)
		}
	}
	v := ServiceViews{"game": assign.NewView([]assign.Node{node("a", server3)})}
	views.Store(&v)
	if _, why := p.answer(nil, pkt, clientA); why != dropUnknownService {
		t.Fatalf("service gone from the views: %v, want unknown_service", why)
	}
	game := probe(t, wire.Probe{Service: "game", Session: wire.SessionID{1}})
	out, why := p.answer(nil, game, clientA)
	if why != dropNone || decode(t, out).Server != server3 {
		t.Fatalf("probe for game: %v %v", why, out)
	}
	dst := make([]byte, 0, maxDatagram)
	if n := testing.AllocsPerRun(100, func() { p.answer(dst[:0], game, clientA) }); n != 0 {
		t.Errorf("a probe for a named service allocates %v times", n)
	}
}

// TestServiceNoHandoff checks that with respond_from = "server" an Usher
// probe for a named service is still answered by the leader itself: the
// service's server is no session endpoint of ours and cannot relay a
// handoff, while a probe for the default service is handed off.
func TestServiceNoHandoff(t *testing.T) {
	clk := newFakeClock()
	var views atomic.Pointer[ServiceViews]
	var def atomic.Pointer[assign.View]
	r := NewResponder(ResponderConfig{Now: clk.Now, View: &def, ServiceViews: &views, Handoff: true, StockAmplification: 10})
	defer r.Close()
	node := func(addr netip.AddrPort) []assign.Node {
		return []assign.Node{{ID: "a", Addr: addr, Capacity: 10, ReportedAt: clk.Now()}}
	}
	v := ServiceViews{"game": assign.NewView(node(server3))}
	views.Store(&v)
	def.Store(assign.NewView(node(server1)))
	p := &r.prober
	_, to, why := p.respond(nil, probe(t, wire.Probe{Service: "game", Session: wire.SessionID{1}}), clientA, clk.Now())
	if why != dropNone || to != clientA {
		t.Errorf("probe for a named service sent to %v (%v), want the client %v", to, why, clientA)
	}
	_, to, why = p.respond(nil, probe(t, wire.Probe{Session: wire.SessionID{2}}), clientA, clk.Now())
	if why != dropNone || to != server1 {
		t.Errorf("probe for the default service sent to %v (%v), want a handoff to %v", to, why, server1)
	}
}

// TestFarmServiceLoad checks that the farm balances a service on the load
// its source reports: a node whose server already carries 90 of 100 gets
// none of 60 new clients while the others are well below it; a node whose
// load source fails gets none either, and says why in usher members.
func TestFarmServiceLoad(t *testing.T) {
	f, servers := serviceFarm(t, 3)
	busy, failing := servers[0], servers[2]
	busy.setLoad(t, "90")
	failing.setLoad(t, "")
	waitFor(t, func() bool {
		turn := accepting(f, "turn")
		return len(turn) == 2 && !slices.Contains(turn, failing.addr) && loadOf(f, "turn", busy.addr) == 90
	})
	c := listenUDP(t, "127.0.0.1:0")
	got := map[netip.AddrPort]int{}
	for range 60 {
		got[roundTrip(t, c, f.vip, stockAllocate()).Server]++
	}
	if got[busy.addr] != 0 || got[failing.addr] != 0 || got[servers[1].addr] != 60 {
		t.Errorf("60 clients went %v: want all on %v", got, servers[1].addr)
	}
	// Every agent lists n3's service as load-failed once n3's report
	// reaches it; only n3 itself gives the reason.
	for _, a := range f.agents {
		waitFor(t, func() bool {
			si, ok := serviceOf(a, "n3")
			return ok && si.State == "load-failed"
		})
		si, _ := serviceOf(a, "n3")
		if own := a.cfg.NodeName == "n3"; own != strings.Contains(si.Reason, "failures in a row") {
			t.Errorf("%s gives n3's reason as %q", a.cfg.NodeName, si.Reason)
		}
	}
}

// serviceOf returns the first service a lists for member name.
func serviceOf(a *Agent, name string) (ServiceInfo, bool) {
	for _, m := range a.Members() {
		if m.Name == name && len(m.Services) > 0 {
			return m.Services[0], true
		}
	}
	return ServiceInfo{}, false
}

// loadOf returns the load of the node at addr in the leader's view of
// service svc.
func loadOf(f *testFarm, svc string, addr netip.AddrPort) int {
	pv := f.leader().serviceViews.Load()
	if pv == nil {
		return -1
	}
	for _, n := range (*pv)[svc].Nodes() {
		if n.Addr == addr {
			return n.Sessions
		}
	}
	return -1
}

// TestPushLoad checks PUT /v1/services/NAME/load: a push service takes no
// sessions until its application reports, then reports that figure; an
// unknown service, a service whose source is not push and a bad body are
// refused with what went wrong.
func TestPushLoad(t *testing.T) {
	srv := startFakeSTUN(t)
	f := newTestFarm(t, 1, 1, func(_ int, c *Config) {
		c.Services = []ServiceConfig{
			{Name: "game", Address: srv.addr.String(), Capacity: 50, Load: &loadsrc.Spec{Source: "push", Interval: "1s"}},
			{Name: "turn", Address: "127.0.0.1:9", Capacity: 50, Load: &loadsrc.Spec{Source: "sessions"}},
		}
	})
	a := f.agents[0]
	if got := accepting(f, "game"); len(got) != 0 {
		t.Fatalf("game accepting before any push: %v", got)
	}
	put := func(path, body string) int {
		req, _ := http.NewRequest("PUT", a.APIURL()+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tt := range []struct {
		path, body string
		want       int
	}{
		{"/v1/services/game/load", `{"load":7,"capacity":40}`, 200},
		{"/v1/services/nope/load", `{"load":7}`, 404},
		{"/v1/services/turn/load", `{"load":7}`, 409},
		{"/v1/services/game/load", `{"capacity":7}`, 400},
		{"/v1/services/game/load", `{"load":-1}`, 400},
		{"/v1/services/game/load", `{"load":1,"extra":2}`, 400},
	} {
		if got := put(tt.path, tt.body); got != tt.want {
			t.Errorf("PUT %s %s: %d, want %d", tt.path, tt.body, got, tt.want)
		}
	}
	waitFor(t, func() bool {
		pv := f.leader().serviceViews.Load()
		if pv == nil {
			return false
		}
		n, ok := (*pv)["game"].Lookup("n1")
		return ok && !n.Draining && n.Sessions == 7 && n.Capacity == 40
	})
}

// BenchmarkResponderAnswerService is BenchmarkResponderAnswer for a probe
// naming a service (USHER-SERVICE "turn") among four: the service lookup
// and the service's own assigner, beside the default path's cost.
func BenchmarkResponderAnswerService(b *testing.B) {
	clk := newFakeClock()
	r := testResponder(clk, Solo, server1)
	nodes := func(addrs ...netip.AddrPort) *assign.View {
		var ns []assign.Node
		for i, a := range addrs {
			ns = append(ns, assign.Node{ID: string(rune('a' + i)), Addr: a, Capacity: 1 << 30, ReportedAt: clk.Now()})
		}
		return assign.NewView(ns)
	}
	views := ServiceViews{
		"turn": nodes(server1, server2, server3), "game": nodes(server1), "sip": nodes(server2), "media": nodes(server3),
	}
	var pv atomic.Pointer[ServiceViews]
	pv.Store(&views)
	r.cfg.ServiceViews = &pv
	benchLoop(b, clk, r, probe(b, wire.Probe{Service: "turn", Session: wire.SessionID{1}, PadTo: wire.ProbeSize}))
}

// TestFarmServiceDrain drains one service of one node through a follower's
// API: the farm stops sending that service's clients there, while the
// node's session endpoint keeps getting its own; a service the node does
// not offer is refused; undraining brings it back.
func TestFarmServiceDrain(t *testing.T) {
	f, servers := serviceFarm(t, 3)
	waitFor(t, func() bool { return len(accepting(f, "turn")) == 3 })
	f.viewed(3)
	api := f.followers()[0].APIURL()
	drain := func(method, query string) int {
		req, _ := http.NewRequest(method, api+"/v1/drain?"+query, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := drain("PUT", "node=n1&service=sip"); code != http.StatusNotFound {
		t.Errorf("drain of a service n1 lacks: %d, want 404", code)
	}
	if code := drain("PUT", "node=n1&service=turn"); code != http.StatusOK {
		t.Fatalf("drain: %d", code)
	}
	waitFor(t, func() bool { return !slices.Contains(accepting(f, "turn"), servers[0].addr) })
	for _, n := range f.leader().view.Load().Nodes() {
		if n.ID == "n1" && n.Draining {
			t.Error("draining n1's turn service drained its session endpoint too")
		}
	}
	waitFor(t, func() bool {
		si, ok := serviceOf(f.agents[1], "n1")
		return ok && si.State == "draining"
	})
	if code := drain("DELETE", "node=n1&service=turn"); code != http.StatusOK {
		t.Fatalf("undrain: %d", code)
	}
	waitFor(t, func() bool { return slices.Contains(accepting(f, "turn"), servers[0].addr) })
}
