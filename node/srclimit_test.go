package node

import (
	"maps"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/internal/srclimit"
	"github.com/usherlb/usher/internal/udpio"
	"github.com/usherlb/usher/wire"
)

var (
	// flooder and neighbour share a /24; light is in another.
	flooder   = netip.MustParseAddrPort("203.0.113.7:4000")
	neighbour = netip.MustParseAddrPort("203.0.113.200:4001")
	light     = netip.MustParseAddrPort("198.51.100.77:5000")
)

// testLimit is a limit small enough for tests to reach: 10 datagrams per
// second per prefix, 5 at once.
var testLimit = srclimit.Config{Rate: 10, Burst: 5}

// limitedResponder is testResponder with per-source limits cfg on its
// UDP prober and on its TCP and TLS accept loops.
func limitedResponder(clk *fakeClock, cfg srclimit.Config) *Responder {
	r := testResponder(clk, Solo, server1, server2)
	r.cfg.SourceLimit = cfg
	r.prober.limit = srclimit.New(cfg, 1, 2)
	r.tcp.limit = srclimit.New(cfg, 3, 4)
	return r
}

// TestResponderSourceLimit floods the responder from one source for a
// second, 1000 probes, while a source of another prefix probes ten times:
// the flood's prefix (its neighbour too) is answered within its limit and
// the rest dropped as rate_limited, the light source always.
func TestResponderSourceLimit(t *testing.T) {
	clk := newFakeClock()
	r := limitedResponder(clk, testLimit)
	pkt := probe(t, wire.Probe{Session: wire.SessionID{1}, PadTo: wire.ProbeSize})
	dst := make([]byte, 0, maxDatagram)
	flood := 0
	for i := range 1000 {
		clk.Advance(time.Millisecond)
		switch _, why := r.answer(dst[:0], pkt, flooder); why {
		case dropNone:
			flood++
		case dropRateLimited:
		default:
			t.Fatalf("the flood's probe %d was dropped as %v", i, why)
		}
		if i%100 == 0 {
			if _, why := r.answer(dst[:0], pkt, light); why != dropNone {
				t.Fatalf("the light source was dropped (%v) at probe %d of the flood", why, i)
			}
		}
	}
	if _, why := r.answer(dst[:0], pkt, neighbour); why != dropRateLimited {
		t.Errorf("the flooder's neighbour in its /24 got %v, want rate_limited", why)
	}
	if most := 10 + 5 + 1; flood > most || flood < 10 {
		t.Errorf("%d of 1000 flood probes answered, want 10 to %d", flood, most)
	}
}

// TestServeSourceLimit runs the serving loop over a scripted batch: a
// flood from one source is limited to the burst, interleaved probes of
// another source are all answered, and the drops are counted.
func TestServeSourceLimit(t *testing.T) {
	good := probe(t, wire.Probe{Session: wire.SessionID{1}, PadTo: wire.ProbeSize})
	var batch []udpio.Message
	for i := range 40 {
		batch = append(batch, udpio.Message{Buf: good, Addr: flooder})
		if i%10 == 0 {
			batch = append(batch, udpio.Message{Buf: good, Addr: light})
		}
	}
	c := &scriptedConn{reads: [][]udpio.Message{batch[:udpio.MaxBatch/2], batch[udpio.MaxBatch/2:]}, done: make(chan struct{})}
	r := limitedResponder(newFakeClock(), testLimit)
	r.serveConn(c)
	r.Serve(listenUDP(t, "127.0.0.1:0"))
	defer r.Stop()
	<-c.done
	r.Stop()
	to := map[netip.AddrPort]int{}
	for _, m := range c.written {
		to[m.Addr]++
	}
	if want := map[netip.AddrPort]int{flooder: 5, light: 4}; !maps.Equal(to, want) {
		t.Errorf("answers by source %v, want %v", to, want)
	}
	if st := r.Stats(); st.Drops["rate_limited"] != 35 {
		t.Errorf("drops %v, want 35 rate_limited", st.Drops)
	}
}

// TestAnswerAllocsLimited checks that the limit check allocates nothing,
// for a known source and for one new to the table.
func TestAnswerAllocsLimited(t *testing.T) {
	clk := newFakeClock()
	r := limitedResponder(clk, srclimit.Config{Rate: 1 << 20, Burst: 1 << 20})
	pkt := probe(t, wire.Probe{Session: wire.SessionID{1}, PadTo: wire.ProbeSize})
	dst := make([]byte, 0, maxDatagram)
	r.answer(dst, pkt, clientA)
	port := uint16(0)
	if n := testing.AllocsPerRun(200, func() {
		clk.Advance(100 * time.Millisecond)
		port++
		r.answer(dst[:0], pkt, clientA)
		r.answer(dst[:0], pkt, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(port >> 8), byte(port), 1}), port))
	}); n != 0 {
		t.Errorf("%v allocs per two answers", n)
	}
}

// TestTCPSourceLimit opens connections from loopback faster than its
// limit allows: those over the burst are closed at accept, unanswered,
// and counted rate_limited.
func TestTCPSourceLimit(t *testing.T) {
	var r *Responder
	for range 10 {
		r = limitedResponder(newFakeClock(), srclimit.Config{Rate: 1, Burst: 2})
		r.cfg.TCP, r.cfg.TCPTimeout = true, time.Minute
		if err := r.Listen(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
			t.Fatal(err)
		}
		if r.tcp.addr().IsValid() {
			break
		}
		r.Close()
	}
	t.Cleanup(func() { r.Close() })
	answered := 0
	for range 5 {
		c := dialTCP(t, r)
		_, _ = c.Write(stockAllocate())
		if len(readToClose(t, c)) > 0 {
			answered++
		}
	}
	if answered != 2 {
		t.Errorf("%d of 5 connections answered, want the burst of 2", answered)
	}
	waitFor(t, func() bool { return r.Stats().Drops["rate_limited"] == 3 })
}

// limitedEndpoint is testEndpoint with per-source limits cfg, taking
// handoffs from vip.
func limitedEndpoint(clk *fakeClock, cfg srclimit.Config, vip netip.Addr) *Endpoint {
	e := testEndpoint(clk, false)
	e.cfg.Handoffs, e.cfg.HandoffFrom, e.cfg.SourceLimit = true, vip, cfg
	e.limit = srclimit.New(cfg, 5, 6)
	return e
}

// TestEndpointSourceLimit floods a session endpoint with stock Binding
// requests from one source for a second while a session of another prefix
// keeps alive and the leader relays handoffs: the flood is answered within
// its limit, the keepalives and the handoffs always.
func TestEndpointSourceLimit(t *testing.T) {
	vip := netip.MustParseAddrPort("198.51.100.100:3478")
	clk := newFakeClock()
	e := limitedEndpoint(clk, testLimit, vip.Addr())
	stock := stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw
	ka := keepalive(t, wire.SessionID{3}, nil, 0)
	dst := make([]byte, 0, maxDatagram)
	flood := 0
	for i := range 1000 {
		clk.Advance(time.Millisecond)
		switch _, _, why := e.handle(dst[:0], stock, flooder); why {
		case dropNone:
			flood++
		case dropRateLimited:
		default:
			t.Fatalf("the flood's request %d was dropped as %v", i, why)
		}
		if i%100 == 0 {
			if _, _, why := e.handle(dst[:0], ka, light); why != dropNone {
				t.Fatalf("the keepalive was dropped (%v) at datagram %d of the flood", why, i)
			}
		}
		if i%50 == 0 {
			pkt := sealedRedirect(t, wire.HandoffKey(testKey), clientA, clk.Now())
			if _, _, why := e.handle(dst[:0], pkt, vip); why != dropNone {
				t.Fatalf("a handoff from the balancer address was dropped (%v) at datagram %d", why, i)
			}
		}
	}
	if most := 10 + 5 + 1; flood > most || flood < 10 {
		t.Errorf("%d of 1000 flood requests answered, want 10 to %d", flood, most)
	}
	st := e.Stats()
	if st.Stock != uint64(flood) || st.Keepalives != 10 || st.Relayed != 20 {
		t.Errorf("stats %+v, want %d stock, 10 keepalives, 20 relayed", st, flood)
	}
}

// TestEndpointSocketSourceLimit floods a real endpoint's socket from one
// loopback source with the clock stopped: it answers the burst only.
func TestEndpointSocketSourceLimit(t *testing.T) {
	clk := newFakeClock()
	e := NewEndpoint(listenUDP(t, "127.0.0.1:0"), EndpointConfig{
		TicketKey: testKey, StockAmplification: 3, Now: clk.Now,
		SourceLimit: testLimit, LimitKey: [2]uint64{7, 8},
	})
	defer e.Close()
	cli := listenUDP(t, "127.0.0.1:0")
	stock := stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw
	for range 20 {
		if _, err := cli.WriteToUDPAddrPort(stock, e.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { st := e.Stats(); return st.Stock+st.Drops["rate_limited"] == 20 })
	if st := e.Stats(); st.Stock != 5 {
		t.Errorf("%d answered, want the burst of 5", st.Stock)
	}
	buf := make([]byte, maxDatagram)
	cli.SetReadDeadline(time.Now().Add(time.Second))
	for range 5 {
		if _, _, err := cli.ReadFromUDPAddrPort(buf); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkResponderAnswerLimited is BenchmarkResponderAnswer with the
// per-source limit on, as the agent runs it (a rate the benchmark never
// reaches, so every probe pays the check and is answered).
func BenchmarkResponderAnswerLimited(b *testing.B) {
	clk := newFakeClock()
	r := limitedResponder(clk, srclimit.Config{Rate: 1 << 20, Burst: 1 << 20})
	benchLoop(b, clk, r, probe(b, wire.Probe{Session: wire.SessionID{1}, PadTo: wire.ProbeSize}))
}

// TestLimitShare checks how a source limit is divided between the
// tables of several probe sockets.
func TestLimitShare(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lim    srclimit.Config
		shares int
		want   srclimit.Config
	}{
		{"one socket", srclimit.Config{Rate: 400, Burst: 2000}, 1, srclimit.Config{Rate: 400, Burst: 2000}},
		{"four sockets", srclimit.Config{Rate: 400, Burst: 2000, IPv4Bits: 20}, 4, srclimit.Config{Rate: 100, Burst: 500, IPv4Bits: 20}},
		{"never below one", srclimit.Config{Rate: 3, Burst: 2}, 8, srclimit.Config{Rate: 1, Burst: 1}},
		{"off stays off", srclimit.Config{}, 4, srclimit.Config{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := limitShare(tc.lim, tc.shares); got != tc.want {
				t.Errorf("limitShare(%+v, %d) = %+v, want %+v", tc.lim, tc.shares, got, tc.want)
			}
		})
	}
}

// TestSocketsShareSourceLimit floods a responder of four probe sockets
// from one prefix, each source port on another socket as SO_REUSEPORT
// spreads them: what the prefix gets answered in all stays within one
// limit, not four.
func TestSocketsShareSourceLimit(t *testing.T) {
	clk := newFakeClock()
	r := testResponder(clk, Solo, server1, server2)
	r.cfg.SourceLimit, r.cfg.Sockets = testLimit, 4
	r.prober.init(r, rand.New(rand.NewPCG(5, 5)), 4)
	probers := r.probers(4)
	pkt := probe(t, wire.Probe{Session: wire.SessionID{1}, PadTo: wire.ProbeSize})
	dst := make([]byte, 0, maxDatagram)
	answered := 0
	for i := range 1000 {
		clk.Advance(time.Millisecond)
		from := netip.AddrPortFrom(flooder.Addr(), uint16(4000+i))
		if _, why := probers[i%4].answer(dst[:0], pkt, from); why == dropNone {
			answered++
		}
	}
	if most := testLimit.Rate + testLimit.Burst + 4; answered > most || answered < testLimit.Rate/2 {
		t.Errorf("four sockets answered %d of 1000 probes from one prefix in a second, want %d to %d", answered, testLimit.Rate/2, most)
	}
}
