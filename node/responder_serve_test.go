package node

import (
	"bytes"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/usherlb/usher/assign"
	"github.com/usherlb/usher/internal/udpio"
	"github.com/usherlb/usher/wire"
)

// serveMode is one way a responder can serve its address.
type serveMode struct {
	name     string
	sockets  int
	batch    bool
	portable bool // serve through udpio.Portable even where the raw back-ends are written
}

// serveModes are the ways a responder can serve its address.
var serveModes = []serveMode{
	{"single", 1, false, false},
	{"portable", 1, false, true},
	{"batch", 1, true, false},
	{"reuseport", 2, false, false},
	{"reuseport_batch", 2, true, false},
}

// modeResponder returns a responder set up to serve in mode m, with the
// given clock, Serving function and servers, not serving yet; the test's
// cleanup closes it.
func modeResponder(tb testing.TB, m serveMode, clk *fakeClock, serving ServingFunc, servers ...netip.AddrPort) *Responder {
	r := testResponder(clk, serving, servers...)
	r.cfg.Sockets, r.cfg.Batch = m.sockets, m.batch
	if m.portable {
		r.serveThrough(udpio.Portable)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// listenMode is modeResponder serving a loopback port.
func listenMode(tb testing.TB, m serveMode, clk *fakeClock, serving ServingFunc, servers ...netip.AddrPort) *Responder {
	tb.Helper()
	r := modeResponder(tb, m, clk, serving, servers...)
	if err := r.Listen(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		tb.Fatal(err)
	}
	return r
}

// TestResponderServeModes answers probes from many client sockets in every
// mode, through Stop and a second Serve, and checks the counts add up.
func TestResponderServeModes(t *testing.T) {
	for _, m := range serveModes {
		t.Run(m.name, func(t *testing.T) {
			r := listenMode(t, m, newFakeClock(), Solo, server1, server2)
			addr := r.Addr()
			const clients, rounds = 8, 2
			for round := range rounds {
				for c := range clients {
					if got := askOnce(t, addr, wire.SessionID{byte(round), byte(c)}); got != server1 && got != server2 {
						t.Fatalf("round %d client %d: got %v", round, c, got)
					}
				}
				r.Stop()
				if r.Serving() {
					t.Fatal("serving after Stop")
				}
				if err := r.Listen(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
					t.Fatal(err)
				}
				addr = r.Addr()
			}
			st := r.Stats()
			if st.Answered != clients*rounds || st.Drops["not_stun"] != clients*rounds {
				t.Errorf("stats = %+v", st)
			}
			// A view change publishes the counts of the socket that sees it.
			r.cfg.View.Store(assign.NewView(r.cfg.View.Load().Nodes()))
			askOnce(t, addr, wire.SessionID{9})
			var assigned uint64
			for _, n := range r.Assigned() {
				assigned += n
			}
			if assigned == 0 {
				t.Error("nothing assigned")
			}
		})
	}
}

// TestResponderStopUnderLoad stops a responder while clients flood it:
// in every mode Stop must end the serving goroutines although their socket
// never runs dry (the raw back-ends leave their read callback every group
// or batch for that), and the responder must serve again after. A
// slow Serving function (a tenth of a millisecond a probe) keeps the
// senders ahead of the responder.
func TestResponderStopUnderLoad(t *testing.T) {
	slow := func() (uint64, bool) {
		time.Sleep(100 * time.Microsecond)
		return 1, true
	}
	for _, m := range serveModes {
		t.Run(m.name, func(t *testing.T) {
			r := listenMode(t, m, newFakeClock(), slow, server1, server2)
			pkt := probe(t, wire.Probe{Session: wire.SessionID{1}, PadTo: wire.ProbeSize})
			flood := make(chan struct{})
			var flooders sync.WaitGroup
			for range 2 {
				c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(r.Addr()))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				flooders.Go(func() {
					for {
						select {
						case <-flood:
							return
						default:
							c.Write(pkt) // answers pile up unread; the kernel drops them
						}
					}
				})
			}
			defer func() { close(flood); flooders.Wait() }()
			time.Sleep(100 * time.Millisecond)
			stopped := make(chan struct{})
			go func() { r.Stop(); close(stopped) }()
			select {
			case <-stopped:
			case <-time.After(10 * time.Second):
				t.Fatal("Stop did not return under load")
			}
			if r.Serving() {
				t.Fatal("serving after Stop")
			}
			if err := r.Listen(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
				t.Fatal(err)
			}
			if got := askOnce(t, r.Addr(), wire.SessionID{2}); got != server1 && got != server2 {
				t.Fatalf("after Stop and Listen: got %v", got)
			}
		})
	}
}

// BenchmarkResponderServe measures whole probe round trips on loopback in
// each serving mode: 8 client sockets each keep 8 probes in flight, and an
// op is one answered probe. allocs/op counts both ends and must be 0.
func BenchmarkResponderServe(b *testing.B) {
	for _, m := range serveModes {
		b.Run(m.name, func(b *testing.B) {
			clk := newFakeClock()
			r := listenMode(b, m, clk, Solo, server1, server2, server3)
			to := r.Addr()
			const clients, window = 8, 8
			conns := make([]*net.UDPConn, clients)
			for i := range conns {
				c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				conns[i] = c
			}
			pkt := probe(b, wire.Probe{Session: wire.SessionID{1}, PadTo: wire.ProbeSize})
			buf := make([]byte, maxDatagram)
			round := func() {
				// Time moves fast enough that pending ledger entries
				// expire (as reports would reconcile them in service) and
				// the ledger stays the same size.
				clk.Advance(100 * time.Millisecond)
				for _, c := range conns {
					for range window {
						c.WriteToUDPAddrPort(pkt, to)
					}
				}
				for _, c := range conns {
					c.SetReadDeadline(time.Now().Add(2 * time.Second))
					for range window {
						if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			// Every serving goroutine makes its buffers, and the ledger
			// reaches its steady size.
			for range 100 {
				round()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; done += clients * window {
				round()
			}
		})
	}
}

// TestResponderServeFamilies answers IPv4 and IPv6 clients on IPv6
// sockets in every mode: the raw back-ends parse and write the sockaddrs
// themselves, and each client is sent to the server of its own family.
func TestResponderServeFamilies(t *testing.T) {
	server6 := netip.MustParseAddrPort("[2001:db8::1]:3479")
	tests := []struct {
		name, listen, client string
	}{
		{"dual-stack socket, ipv4 client", "[::]:0", "127.0.0.1"},
		{"dual-stack socket, ipv6 client", "[::]:0", "::1"},
		{"ipv6 socket", "[::1]:0", "::1"},
	}
	for _, m := range serveModes {
		for _, tt := range tests {
			t.Run(m.name+"/"+tt.name, func(t *testing.T) {
				r := modeResponder(t, m, newFakeClock(), Solo, server1, server6)
				if err := r.Listen(netip.MustParseAddrPort(tt.listen)); err != nil {
					t.Skipf("no IPv6 here: %v", err)
				}
				to := netip.AddrPortFrom(netip.MustParseAddr(tt.client), r.Addr().Port())
				want := server1
				if to.Addr().Is6() {
					want = server6
				}
				if got := askOnce(t, to, wire.SessionID{7}); got != want {
					t.Fatalf("got %v, want %v", got, want)
				}
				// The count follows the send, so it may trail the answer.
				waitFor(t, func() bool { return r.Stats().Answered == 1 })
			})
		}
	}
}

// TestServeAllocs checks that a round of probes read, decided and
// answered by the serving loop allocates nothing, over every back-end.
func TestServeAllocs(t *testing.T) {
	for _, m := range []udpio.Mode{udpio.Portable, udpio.Raw, udpio.MMsg} {
		t.Run(m.String(), func(t *testing.T) {
			srv, cli := listenUDP(t, "127.0.0.1:0"), listenUDP(t, "127.0.0.1:0")
			to := srv.LocalAddr().(*net.UDPAddr).AddrPort()
			c, err := udpio.Open(srv, m)
			if err != nil {
				t.Fatal(err)
			}
			r := testResponder(newFakeClock(), Solo, server1, server2)
			p := &r.prober
			p.in, p.out = udpio.NewMessages(udpio.MaxBatch), udpio.NewMessages(udpio.MaxBatch)
			pkt := probe(t, wire.Probe{Session: wire.SessionID{1}, PadTo: wire.ProbeSize})
			buf := make([]byte, maxDatagram)
			round := func() {
				for range 4 {
					cli.WriteToUDPAddrPort(pkt, to)
				}
				for got := 0; got < 4; {
					n, err := c.ReadBatch(p.in)
					if err != nil {
						t.Fatal(err)
					}
					p.answerBatch(c, p.in[:n])
					got += n
				}
				for range 4 {
					cli.ReadFromUDPAddrPort(buf)
				}
			}
			round()
			if n := testing.AllocsPerRun(100, round); n != 0 {
				t.Errorf("%v allocs per round of 4 probes", n)
			}
			if st := r.Stats(); st.Answered != 4*102 || len(st.Drops) != 0 {
				t.Errorf("stats %+v, want %d answered and no drops", st, 4*102)
			}
		})
	}
}

// scriptedConn is a udpio.Conn that reads batches a test scripted and
// refuses the writes to one address.
type scriptedConn struct {
	reads   [][]udpio.Message // what each ReadBatch returns, in turn
	refuse  netip.AddrPort    // WriteBatch skips answers to it
	written []udpio.Message   // every answer sent, copied
	done    chan struct{}     // closed when the script has run out
}

// ReadBatch returns the next scripted batch, then net.ErrClosed.
func (c *scriptedConn) ReadBatch(msgs []udpio.Message) (int, error) {
	if len(c.reads) == 0 {
		close(c.done)
		return 0, net.ErrClosed
	}
	n := copy(msgs, c.reads[0])
	c.reads = c.reads[1:]
	return n, nil
}

// WriteBatch records the answers it does not refuse.
func (c *scriptedConn) WriteBatch(msgs []udpio.Message) (int, error) {
	sent := 0
	for _, m := range msgs {
		if m.Addr != c.refuse {
			c.written = append(c.written, udpio.Message{Buf: bytes.Clone(m.Buf), Addr: m.Addr})
			sent++
		}
	}
	return sent, nil
}

// TestServeCounts runs the serving loop over a scripted back-end: every
// probe's answer must go to its own source, every datagram without one be
// counted by its reason, and every answer the back-end did not send be
// counted as a write error, not as answered.
func TestServeCounts(t *testing.T) {
	good := probe(t, wire.Probe{Session: wire.SessionID{1}, PadTo: wire.ProbeSize})
	c1, c2, c3 := netip.MustParseAddrPort("192.0.2.1:1000"), netip.MustParseAddrPort("192.0.2.2:2000"), netip.MustParseAddrPort("192.0.2.3:3000")
	c := &scriptedConn{
		reads: [][]udpio.Message{
			{{Buf: good, Addr: c1}, {Buf: []byte("not stun"), Addr: c2}, {Buf: good, Addr: c2}},
			{{Buf: good}, {Buf: good, Addr: c3}, {Buf: good, Addr: c1}},
		},
		refuse: c3,
		done:   make(chan struct{}),
	}
	r := testResponder(newFakeClock(), Solo, server1, server2)
	r.serveConn(c)
	r.Serve(listenUDP(t, "127.0.0.1:0"))
	defer r.Stop()
	<-c.done
	r.Stop()
	st := r.Stats()
	want := map[string]uint64{"not_stun": 2, "write_error": 1}
	if st.Answered != 3 || !maps.Equal(st.Drops, want) {
		t.Errorf("stats %+v, want 3 answered and drops %v", st, want)
	}
	var to []netip.AddrPort
	for _, m := range c.written {
		if resp := decode(t, m.Buf); resp.Server != server1 && resp.Server != server2 {
			t.Errorf("answer to %v names %v", m.Addr, resp.Server)
		}
		to = append(to, m.Addr)
	}
	if want := []netip.AddrPort{c1, c2, c1}; !slices.Equal(to, want) {
		t.Errorf("answers went to %v, want %v", to, want)
	}
}
