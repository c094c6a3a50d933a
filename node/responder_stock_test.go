package node

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/wire"
)

// stockAllocate is a stock TURN Allocate request as a TURN client starts
// one: REQUESTED-TRANSPORT UDP and FINGERPRINT.
func stockAllocate() []byte {
	return stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
		stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}, stun.Fingerprint).Raw
}

// TestResponderStockBinding checks that a stock Binding request to the
// balancer address gets what any STUN server sends, a Binding success
// naming the request's source, from IPv4 and IPv6 clients, and that it
// takes no pick: the pending ledger stays empty, as it does not after an
// Usher probe. With stock_binding = "redirect" it gets the 300 and takes a
// pick, as before.
func TestResponderStockBinding(t *testing.T) {
	clientV6 := netip.MustParseAddrPort("[2001:db8::7]:40000")
	for _, from := range []netip.AddrPort{clientA, clientV6} {
		server := server1
		if from.Addr().Is6() {
			server = netip.MustParseAddrPort("[2001:db8::1]:3479")
		}
		r := testResponder(newFakeClock(), Solo, server)
		// A probe first, so that the Assigner has its view and a pick
		// would count.
		if _, why := r.answer(nil, probe(t, wire.Probe{Session: wire.SessionID{1}, PadTo: wire.ProbeSize}), from); why != dropNone {
			t.Fatalf("%v: probe dropped: %v", from, why)
		}
		if n := r.prober.asg.Pending("a"); n != 1 {
			t.Fatalf("%v: a probe left %d pending assignments, want 1", from, n)
		}
		bind := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
		for range 5 {
			out, why := r.answer(nil, bind.Raw, from)
			if why != dropNone {
				t.Fatalf("%v: binding dropped: %v", from, why)
			}
			if a := decode(t, out); !a.Success || a.Method != stun.MethodBinding || a.Mapped != from || a.TxID != bind.TransactionID {
				t.Fatalf("%v: answer = %+v", from, a)
			}
			// pion reads it as any STUN client does, fingerprint included.
			m := &stun.Message{Raw: out}
			var xor stun.XORMappedAddress
			if err := m.Decode(); err != nil || xor.GetFrom(m) != nil || stun.Fingerprint.Check(m) != nil ||
				!xor.IP.Equal(net.IP(from.Addr().AsSlice())) || xor.Port != int(from.Port()) {
				t.Fatalf("%v: pion reads %v, %v", from, m, xor)
			}
		}
		if n := r.prober.asg.Pending("a"); n != 1 {
			t.Errorf("%v: after 5 stock Bindings, %d pending assignments, want the probe's 1", from, n)
		}
	}

	r := testResponder(newFakeClock(), Solo, server1)
	r.cfg.RedirectStockBinding = true
	out, why := r.answer(nil, stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw, clientA)
	if why != dropNone {
		t.Fatalf("redirect mode: binding dropped: %v", why)
	}
	if a := decode(t, out); a.Success || a.Code != stun.CodeTryAlternate || a.Server != server1 {
		t.Errorf("redirect mode: answer = %+v", a)
	}
	if n := r.prober.asg.Pending("a"); n != 1 {
		t.Errorf("redirect mode: %d pending assignments, want 1", n)
	}
}

// TestResponderStockBindingSize checks the size rule on the smallest legal
// Binding request, a bare 20-byte header, under every stock_amplification
// from 1 to 4 and from both families: the answer is never larger than
// Limit allows, and it is dropped as too large exactly when the success
// (20 bytes and an XOR-MAPPED-ADDRESS of 12 or 24) does not fit.
func TestResponderStockBindingSize(t *testing.T) {
	bare := stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw
	if len(bare) != wire.HeaderSize {
		t.Fatalf("bare Binding is %d bytes", len(bare))
	}
	for _, from := range []netip.AddrPort{clientA, netip.MustParseAddrPort("[2001:db8::7]:40000")} {
		need := wire.HeaderSize + 4 + 8
		if from.Addr().Is6() {
			need += 12
		}
		for factor := 1; factor <= 4; factor++ {
			r := testResponder(newFakeClock(), Solo, server1)
			r.cfg.StockAmplification = factor
			limit := factor * len(bare)
			out, why := r.answer(nil, bare, from)
			switch {
			case why == dropNone && len(out) > limit:
				t.Errorf("%v, factor %d: %d-byte answer, limit %d", from, factor, len(out), limit)
			case why == dropNone && len(out) != need:
				t.Errorf("%v, factor %d: %d-byte answer, want %d", from, factor, len(out), need)
			case why == dropNone != (need <= limit):
				t.Errorf("%v, factor %d: %v, but the %d-byte success %s the limit %d", from, factor, why, need,
					map[bool]string{true: "fits", false: "exceeds"}[need <= limit], limit)
			case why != dropNone && why != dropTooLarge:
				t.Errorf("%v, factor %d: dropped as %v", from, factor, why)
			}
		}
	}
}

// TestResponderHandoffStock checks that respond_from = "server" hands
// only Usher probes to the assigned server: a stock client drops an
// answer from an address it never sent to, so a stock Binding (answered,
// or redirected) and a TURN Allocate are answered by the leader straight
// to their source.
func TestResponderHandoffStock(t *testing.T) {
	bind := stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw
	tests := []struct {
		name     string
		redirect bool // stock_binding = "redirect"
		pkt      []byte
		handoff  bool // the answer goes to the server, sealed
		success  bool // the answer is a Binding success, else a 300
	}{
		{"usher probe", false, probe(t, wire.Probe{Session: wire.SessionID{1}, PadTo: wire.ProbeSize}), true, false},
		{"stock binding", false, bind, false, true},
		{"stock binding, redirect", true, bind, false, false},
		{"stock allocate", false, stockAllocate(), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			r := testResponder(clk, Solo, server1)
			r.cfg.Handoff, r.cfg.RedirectStockBinding = true, tt.redirect
			out, to, why := r.respond(make([]byte, 0, maxDatagram), tt.pkt, clientA, clk.Now())
			if why != dropNone {
				t.Fatalf("dropped: %v", why)
			}
			if tt.handoff {
				if to != server1 || !wire.IsHandoff(out) {
					t.Fatalf("sent %d bytes to %v, want a handoff to %v", len(out), to, server1)
				}
				return
			}
			if to != clientA || wire.IsHandoff(out) {
				t.Fatalf("sent %d bytes (handoff %t) to %v, want the answer to %v", len(out), wire.IsHandoff(out), to, clientA)
			}
			a := decode(t, out)
			if tt.success != a.Success || tt.success && a.Mapped != clientA || !tt.success && (a.Code != stun.CodeTryAlternate || a.Server != server1) {
				t.Errorf("answer = %+v", a)
			}
		})
	}
}

// TestResponderStockBindingServed sends stock Bindings and Usher probes to
// a serving responder in every mode and checks that each kind is counted
// in its own counter, and that the Binding's answer names the socket it
// came from.
func TestResponderStockBindingServed(t *testing.T) {
	for _, m := range serveModes {
		t.Run(m.name, func(t *testing.T) {
			r := listenMode(t, m, newFakeClock(), Solo, server1)
			c := listenUDP(t, "127.0.0.1:0")
			self := c.LocalAddr().(*net.UDPAddr).AddrPort()
			const rounds = 3
			for i := range rounds {
				bind := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
				if a := roundTrip(t, c, r.Addr(), bind.Raw); !a.Success || a.Mapped != self {
					t.Fatalf("binding %d: answer %+v, want a success naming %v", i, a, self)
				}
				if a := roundTrip(t, c, r.Addr(), probe(t, wire.Probe{Session: wire.SessionID{byte(i)}, PadTo: wire.ProbeSize})); a.Success || a.Server != server1 {
					t.Fatalf("probe %d: answer %+v", i, a)
				}
			}
			// Counted once sent, so once all are in the split must be right.
			waitFor(t, func() bool { st := r.Stats(); return st.Answered+st.StockBindings == 2*rounds })
			if st := r.Stats(); st.Answered != rounds || st.StockBindings != rounds {
				t.Errorf("%d redirects and %d stock Bindings counted, want %d each", st.Answered, st.StockBindings, rounds)
			}
		})
	}
}

// TestRespondAllocs checks that the handoff path allocates nothing either,
// for the probe it seals and the stock request it answers itself.
func TestRespondAllocs(t *testing.T) {
	clk := newFakeClock()
	r := testResponder(clk, Solo, server1, server2)
	r.cfg.Handoff = true
	dst := make([]byte, 0, maxDatagram)
	for _, pkt := range [][]byte{
		probe(t, wire.Probe{Session: wire.SessionID{1}, PadTo: wire.ProbeSize}),
		stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw,
		stockAllocate(),
	} {
		r.respond(dst, pkt, clientA, clk.Now()) // warm up
		if n := testing.AllocsPerRun(200, func() {
			clk.Advance(100 * time.Millisecond)
			r.respond(dst[:0], pkt, clientA, clk.Now())
		}); n != 0 {
			t.Errorf("%d allocs per handoff-mode answer to a %d-byte request", int(n), len(pkt))
		}
	}
}

// TestResponderRedirectFamily checks that a redirect names a server of the
// request's address family (RFC 8489's ALTERNATE-SERVER), its backups too,
// for Usher probes and stock requests, from a farm of both families.
func TestResponderRedirectFamily(t *testing.T) {
	v6a := netip.MustParseAddrPort("[2001:db8::1]:3479")
	v6b := netip.MustParseAddrPort("[2001:db8::2]:3479")
	r := testResponder(newFakeClock(), Solo, server1, v6a, server2, v6b, server3)
	r.cfg.Backups = 4
	clientV6 := netip.MustParseAddrPort("[2001:db8::7]:40000")
	for i := range 40 {
		from := clientA
		if i%2 == 1 {
			from = clientV6
		}
		pkt := stockAllocate()
		if i%4 < 2 {
			pkt = probe(t, wire.Probe{Session: wire.SessionID{byte(i)}, PadTo: wire.ProbeSize})
		}
		out, why := r.answer(nil, pkt, from)
		if why != dropNone {
			t.Fatalf("request %d from %v dropped: %v", i, from, why)
		}
		a := decode(t, out)
		if a.Server.Addr().Is4() != from.Addr().Is4() {
			t.Fatalf("request %d from %v redirected to %v", i, from, a.Server)
		}
		for _, b := range a.Backups[:a.NumBackups] {
			if b.Addr().Is4() != from.Addr().Is4() {
				t.Fatalf("request %d from %v names backup %v", i, from, b)
			}
		}
		if i%4 < 2 && a.NumBackups == 0 {
			t.Fatalf("probe %d from %v: no backups", i, from)
		}
	}
}

// BenchmarkResponderStockBinding is the balancer's answer to a stock STUN
// Binding request (a browser's stun: URL): a Binding success naming the
// source, no pick.
func BenchmarkResponderStockBinding(b *testing.B) {
	clk := newFakeClock()
	r := testResponder(clk, Solo, server1, server2, server3)
	benchLoop(b, clk, r, stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint).Raw)
}
