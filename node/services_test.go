package node

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/assign"
	"github.com/usherlb/usher/node/health"
	"github.com/usherlb/usher/wire"
)

// fakeSTUN is a STUN server on loopback answering every Binding request
// with a success, as coturn does: what a service's stun check asks.
type fakeSTUN struct {
	conn *net.UDPConn
	addr netip.AddrPort
	done chan struct{}
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
// of its own, checked every 250 ms, with vip_service = "turn".
func serviceFarm(t *testing.T, n int) (*testFarm, []*fakeSTUN) {
	t.Helper()
	servers := make([]*fakeSTUN, n)
	for i := range servers {
		servers[i] = startFakeSTUN(t)
	}
	f := newTestFarm(t, n, n, func(i int, c *Config) {
		c.VIPService = "turn"
		c.Services = []ServiceConfig{{
			Name: "turn", Address: servers[i].addr.String(), Capacity: 100,
			Checks: []health.Spec{{Name: "turn", Type: "stun", Address: servers[i].addr.String(), Interval: "250ms", Timeout: "200ms"}},
		}}
	})
	return f, servers
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
		for _, m := range a.Members() {
			if m.Name != "n2" {
				continue
			}
			if len(m.Services) != 1 || m.Services[0].State != "unhealthy" {
				t.Errorf("%s lists n2's services as %+v, want turn unhealthy", a.cfg.NodeName, m.Services)
			}
			if own := a.cfg.NodeName == "n2"; own != (m.Services[0].Reason != "") {
				t.Errorf("%s gives n2's reason %q", a.cfg.NodeName, m.Services[0].Reason)
			}
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
	out, why := p.answer(nil, probe(t, wire.Probe{Service: "game", Session: wire.SessionID{1}}), clientA)
	if why != dropNone || decode(t, out).Server != server3 {
		t.Fatalf("probe for game: %v %v", why, out)
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
