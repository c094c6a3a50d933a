package node

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/internal/udpio"
	"github.com/usherlb/usher/wire"
)

func testEndpoint(clk *fakeClock, requireTicket bool) *Endpoint {
	return newEndpoint(EndpointConfig{
		Addr:               server1,
		SessionTTL:         3 * time.Second,
		RequireTicket:      requireTicket,
		TicketKey:          testKey,
		StockAmplification: 3,
		Now:                clk.Now,
	})
}

func TestEndpointKeepalive(t *testing.T) {
	clk := newFakeClock()
	e := testEndpoint(clk, false)
	s := wire.SessionID{1, 2, 3, 4, 5, 6, 7, 8}
	pkt := keepalive(t, s, nil, wire.KeepaliveSize)
	out, why := e.answer(nil, pkt, clientA)
	if why != dropNone {
		t.Fatalf("dropped: %v", why)
	}
	r := decode(t, out)
	if !r.Success || r.Mapped != clientA || r.Drain {
		t.Errorf("answer = %+v", r)
	}
	if n, acc := e.Load(); n != 1 || acc != 1 {
		t.Errorf("load = %d, %d", n, acc)
	}

	// Draining: the answer carries USHER-DRAIN.
	e.SetDraining(true)
	out, _ = e.answer(nil, pkt, clientA)
	if r := decode(t, out); !r.Drain {
		t.Errorf("draining answer without USHER-DRAIN: %+v", r)
	}

	// A stock Binding request: a plain success.
	m := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	out, why = e.answer(nil, m.Raw, clientB)
	if why != dropNone {
		t.Fatalf("stock dropped: %v", why)
	}
	if r := decode(t, out); !r.Success || r.Mapped != clientB || len(out) > 3*len(m.Raw) {
		t.Errorf("stock answer = %+v (%d bytes)", r, len(out))
	}
	if n, _ := e.Load(); n != 1 {
		t.Errorf("stock request created a session: %d", n)
	}
}

func TestEndpointExpiry(t *testing.T) {
	clk := newFakeClock()
	e := testEndpoint(clk, false)
	for i := range 5 {
		e.answer(nil, keepalive(t, wire.SessionID{byte(i)}, nil, 64), clientA)
	}
	if n, acc := e.Load(); n != 5 || acc != 5 {
		t.Fatalf("load = %d, %d", n, acc)
	}
	clk.Advance(2 * time.Second)
	e.answer(nil, keepalive(t, wire.SessionID{0}, nil, 64), clientA) // keeps session 0 alive
	clk.Advance(2 * time.Second)
	if got := e.table.expire(clk.Now()); got != 4 {
		t.Errorf("expired %d, want 4", got)
	}
	if n, acc := e.Load(); n != 1 || acc != 5 {
		t.Errorf("load after expiry = %d, %d", n, acc)
	}
	ss := e.Sessions()
	if len(ss) != 1 || ss[0].ID != (wire.SessionID{0}) || ss[0].Client != clientA {
		t.Errorf("sessions = %+v", ss)
	}
}

func TestEndpointTickets(t *testing.T) {
	clk := newFakeClock()
	s := wire.SessionID{9, 9, 9}
	tk := wire.NewTicketer(testKey)
	valid := tk.Append(nil, s, clientA, server1, uint32(clk.Now().Add(time.Hour).Unix()))
	expired := tk.Append(nil, s, clientA, server1, uint32(clk.Now().Add(-time.Second).Unix()))
	otherServer := tk.Append(nil, s, clientA, server2, uint32(clk.Now().Add(time.Hour).Unix()))
	wrongKey := wire.NewTicketer([]byte("another key of thirty-two bytes!")).Append(nil, s, clientA, server1, uint32(clk.Now().Add(time.Hour).Unix()))

	tests := []struct {
		name    string
		ticket  []byte
		from    netip.AddrPort
		require bool
		want    bool // session accepted
	}{
		{"valid", valid, clientA, true, true},
		{"missing", nil, clientA, true, false},
		{"expired", expired, clientA, true, false},
		{"other server", otherServer, clientA, true, false},
		{"other client", valid, clientB, true, false},
		{"wrong key", wrongKey, clientA, true, false},
		{"garbage", []byte("not a ticket"), clientA, true, false},
		{"not required", nil, clientA, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := testEndpoint(clk, tt.require)
			out, why := e.answer(nil, keepalive(t, s, tt.ticket, 64), tt.from)
			if why != dropNone {
				t.Fatalf("dropped: %v", why)
			}
			r := decode(t, out)
			if tt.want {
				if !r.Success {
					t.Errorf("refused: %+v", r)
				}
			} else if r.Success || r.Code != stun.CodeUnauthorized {
				t.Errorf("got %+v, want 401", r)
			}
			if n, _ := e.Load(); (n == 1) != tt.want {
				t.Errorf("sessions = %d", n)
			}
			if st := e.Stats(); (st.Refused == 1) == tt.want {
				t.Errorf("refused = %d", st.Refused)
			}
		})
	}
}

// TestEndpointSizeRule sends keepalives of random sizes, then stock
// Binding requests of several sizes under several stock_amplification
// factors, and checks that no answer is larger than the size rule allows
// (docs/protocol.md, "The size rule"): a keepalive's own size, factor times
// a stock request's; and that a request whose smallest answer is larger
// than that gets none (dropped as too_large).
func TestEndpointSizeRule(t *testing.T) {
	clk := newFakeClock()
	e := testEndpoint(clk, false)
	rng := rand.New(rand.NewPCG(1, 2))
	v6 := netip.MustParseAddrPort("[2001:db8::1]:4000")
	for i := range 500 {
		from := clientA
		if i%2 == 0 {
			from = v6
		}
		pad := rng.IntN(80)
		pkt := keepalive(t, wire.SessionID{byte(i)}, nil, pad)
		out, why := e.answer(nil, pkt, from)
		if why == dropNone && len(out) > len(pkt) {
			t.Fatalf("keepalive of %d bytes got %d", len(pkt), len(out))
		}
		if why != dropNone && why != dropTooLarge {
			t.Fatalf("unexpected drop %v", why)
		}
	}
	// A minimal keepalive from IPv6 cannot be answered: dropped, counted.
	pkt := keepalive(t, wire.SessionID{1}, nil, 0)
	if _, why := e.answer(nil, pkt, v6); why != dropTooLarge {
		t.Errorf("minimal IPv6 keepalive (%d bytes): %v", len(pkt), why)
	}
	t.Run("stock", func(t *testing.T) { testEndpointStockSizes(t, v6) })
}

// stockBindings returns stock Binding requests (no USHER-SESSION, no
// PADDING) of several sizes: the minimal 20-byte one, and ones carrying a
// SOFTWARE attribute of lengths that are and are not multiples of four,
// each with and without FINGERPRINT.
func stockBindings() [][]byte {
	var out [][]byte
	for _, n := range []int{-1, 0, 1, 3, 5, 13, 22, 40} {
		var setters []stun.Setter
		if n >= 0 {
			setters = append(setters, stun.RawAttribute{Type: stun.AttrSoftware, Value: make([]byte, n)})
		}
		for _, fp := range []bool{false, true} {
			s := append([]stun.Setter{stun.TransactionID, stun.BindingRequest}, setters...)
			if fp {
				s = append(s, stun.Fingerprint)
			}
			out = append(out, stun.MustBuild(s...).Raw)
		}
	}
	return out
}

// testEndpointStockSizes checks the endpoint's answers to stock Binding
// requests against factor x the request's size, for each factor and client
// family.
func testEndpointStockSizes(t *testing.T, v6 netip.AddrPort) {
	pkts := stockBindings()
	if len(pkts[0]) != wire.HeaderSize {
		t.Fatalf("the minimal Binding request is %d bytes", len(pkts[0]))
	}
	answered, dropped := 0, 0
	for _, factor := range []int{1, 2, 3, 5} {
		e := testEndpoint(newFakeClock(), false)
		e.cfg.StockAmplification = factor
		before := answered
		for _, from := range []netip.AddrPort{clientA, v6} {
			// The smallest answer: header and XOR-MAPPED-ADDRESS.
			least := wire.HeaderSize + 12
			if from.Addr().Is6() {
				least = wire.HeaderSize + 24
			}
			for _, pkt := range pkts {
				limit := factor * len(pkt)
				out, why := e.answer(nil, pkt, from)
				if least > limit {
					if why != dropTooLarge {
						t.Errorf("factor %d, %d-byte request from %v: %d-byte answer (drop %v), want none (too_large): the smallest is %d bytes",
							factor, len(pkt), from, len(out), why, least)
					}
					dropped++
					continue
				}
				if why != dropNone {
					t.Errorf("factor %d, %d-byte request from %v: dropped (%v), though a %d-byte answer fits in %d",
						factor, len(pkt), from, why, least, limit)
					continue
				}
				if len(out) > limit {
					t.Errorf("factor %d, %d-byte request from %v: answer of %d bytes, above %d", factor, len(pkt), from, len(out), limit)
				}
				if r := decode(t, out); !r.Success || r.Mapped != from || [12]byte(pkt[8:20]) != r.TxID {
					t.Errorf("factor %d, %d-byte request from %v: answer %+v", factor, len(pkt), from, r)
				}
				answered++
			}
		}
		if n, _ := e.Load(); n != 0 {
			t.Errorf("factor %d: stock requests made %d sessions", factor, n)
		}
		if got := e.Stats().Stock; got != uint64(answered-before) {
			t.Errorf("factor %d: %d stock answers counted, %d sent", factor, got, answered-before)
		}
	}
	// Both outcomes occur, and the minimal Binding request gets what the
	// size rule gives it: 32 bytes to IPv4 and 44 to IPv6 need factors 2
	// and 3.
	if answered == 0 || dropped == 0 {
		t.Errorf("%d answered, %d dropped: the cases do not cover both", answered, dropped)
	}
	for _, tt := range []struct {
		factor int
		from   netip.AddrPort
		want   dropReason
	}{{1, clientA, dropTooLarge}, {2, clientA, dropNone}, {2, v6, dropTooLarge}, {3, v6, dropNone}} {
		e := testEndpoint(newFakeClock(), false)
		e.cfg.StockAmplification = tt.factor
		if _, why := e.answer(nil, pkts[0], tt.from); why != tt.want {
			t.Errorf("20-byte Binding from %v, factor %d: %v, want %v", tt.from, tt.factor, why, tt.want)
		}
	}
}

func TestEndpointMalformed(t *testing.T) {
	clk := newFakeClock()
	e := testEndpoint(clk, false)
	good := keepalive(t, wire.SessionID{1}, nil, 64)
	badFP := append([]byte(nil), good...)
	badFP[len(badFP)-1] ^= 0xff
	resp := stun.MustBuild(stun.TransactionID, stun.BindingSuccess)
	alloc := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest))
	tests := []struct {
		name string
		pkt  []byte
		want dropReason
	}{
		{"empty", nil, dropNotSTUN},
		{"garbage", []byte("hello, world, this is not stun"), dropNotSTUN},
		{"truncated", good[:30], dropNotSTUN},
		{"trailing", append(append([]byte(nil), good...), 0, 0, 0, 0), dropNotSTUN},
		{"response", resp.Raw, dropNotRequest},
		{"allocate", alloc.Raw, dropMethod},
		{"fingerprint", badFP, dropFingerprint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, why := e.answer(nil, tt.pkt, clientA); why != tt.want {
				t.Errorf("got %v, want %v", why, tt.want)
			}
		})
	}
	// Random bytes never crash.
	rng := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 200)
	for range 5000 {
		n := rng.IntN(len(buf))
		for i := range n {
			buf[i] = byte(rng.Uint32())
		}
		if n > 20 && rng.IntN(2) == 0 {
			copy(buf, good[:20]) // a valid header over random attributes
		}
		e.answer(nil, buf[:n], clientA)
	}
}

// listenEndpoint serves an endpoint on a loopback socket, reading in
// batches or not, until the test ends.
func listenEndpoint(tb testing.TB, batch bool) *Endpoint {
	tb.Helper()
	e, err := ListenEndpoint(netip.MustParseAddrPort("127.0.0.1:0"),
		EndpointConfig{SessionTTL: time.Minute, TicketKey: testKey, StockAmplification: 3, Batch: batch})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.Close() })
	return e
}

// TestEndpointSocket runs a real endpoint on loopback, reading one
// datagram per call and in batches: junk is dropped, a burst of
// keepalives larger than a batch is answered in full, and Close is
// idempotent.
func TestEndpointSocket(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) {
			e := listenEndpoint(t, batch)
			c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(e.LocalAddr()))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write([]byte("junk"))
			const burst = 100 // more than udpio.MaxBatch
			for i := range burst {
				if _, err := c.Write(keepalive(t, wire.SessionID{7, byte(i)}, nil, 64)); err != nil {
					t.Fatal(err)
				}
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 1500)
			for i := range burst {
				n, err := c.Read(buf)
				if err != nil {
					t.Fatalf("answer %d: %v", i, err)
				}
				if r := decode(t, buf[:n]); !r.Success || r.Mapped != c.LocalAddr().(*net.UDPAddr).AddrPort() {
					t.Fatalf("answer %d: %+v", i, r)
				}
			}
			if st := e.Stats(); st.Keepalives != burst || st.Drops["not_stun"] != 1 {
				t.Errorf("stats %+v", st)
			}
			if err := e.Close(); err != nil {
				t.Error(err)
			}
			e.Close() // idempotent
		})
	}
}

// BenchmarkEndpointServe measures keepalive round trips on loopback,
// the endpoint reading one datagram per call and in batches: one client
// socket sends and reads 64 keepalives a round with recvmmsg and sendmmsg
// (udpio), so that the client costs little beside the endpoint, and an op
// is one answered keepalive.
func BenchmarkEndpointServe(b *testing.B) {
	for _, batch := range []bool{false, true} {
		b.Run(fmt.Sprintf("batch=%v", batch), func(b *testing.B) {
			e := listenEndpoint(b, batch)
			conn := listenUDP(b, "127.0.0.1:0")
			c, err := udpio.Open(conn, udpio.MMsg)
			if err != nil {
				b.Fatal(err)
			}
			out, in := udpio.NewMessages(udpio.MaxBatch), udpio.NewMessages(udpio.MaxBatch)
			for i := range out {
				out[i].Buf = append(out[i].Buf[:0], keepalive(b, wire.SessionID{9, byte(i)}, nil, wire.KeepaliveSize)...)
				out[i].Addr = e.LocalAddr()
			}
			round := func() {
				if sent, err := c.WriteBatch(out); sent != len(out) {
					b.Fatalf("sent %d of %d: %v", sent, len(out), err)
				}
				conn.SetReadDeadline(time.Now().Add(2 * time.Second))
				for got := 0; got < len(out); {
					n, err := c.ReadBatch(in)
					if err != nil {
						b.Fatal(err)
					}
					got += n
				}
			}
			round()
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; done += len(out) {
				round()
			}
		})
	}
}
