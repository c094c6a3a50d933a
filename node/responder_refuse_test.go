package node

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/assign"
	"github.com/usherlb/usher/internal/udpio"
	"github.com/usherlb/usher/wire"
)

// bareAllocate is a 20-byte TURN Allocate request: no attributes.
func bareAllocate() []byte {
	return stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest)).Raw
}

// withUnknown builds a request of type typ carrying USHER-SESSION when
// session, the comprehension-required attribute 0x7f01 and padding to
// about 128 bytes.
func withUnknown(typ stun.MessageType, session bool) []byte {
	setters := []stun.Setter{stun.TransactionID, typ}
	if session {
		setters = append(setters, stun.RawAttribute{Type: wire.AttrSession, Value: make([]byte, wire.SessionLen)})
	}
	setters = append(setters,
		stun.RawAttribute{Type: 0x7f01, Value: []byte{1, 2, 3, 4}},
		stun.RawAttribute{Type: stun.AttrPadding, Value: make([]byte, 80)},
		stun.Fingerprint)
	return stun.MustBuild(setters...).Raw
}

// TestResponderOverload checks the answer to a request no server can take:
// 508 with USHER-RETRY-AFTER to an Usher probe, 508 to a stock Allocate,
// 500 to a stock Binding redirect, within the size rule, with no pick.
func TestResponderOverload(t *testing.T) {
	clk := newFakeClock()
	v6 := netip.MustParseAddrPort("[2001:db8::1]:3479")
	clientV6 := netip.MustParseAddrPort("[2001:db8::7]:40000")
	bind := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint).Raw
	tests := []struct {
		name     string
		servers  []netip.AddrPort
		pkt      []byte
		from     netip.AddrPort
		redirect bool // stock_binding = "redirect"
		code     stun.ErrorCode
		retry    time.Duration
	}{
		{"every server full", []netip.AddrPort{server1, server2}, probe(t, wire.Probe{Session: wire.SessionID{1}, PadTo: 256}), clientA, false,
			stun.CodeInsufficientCapacity, 1500 * time.Millisecond},
		{"unpadded probe", []netip.AddrPort{server1}, probe(t, wire.Probe{Session: wire.SessionID{1}}), clientA, false,
			stun.CodeInsufficientCapacity, 1500 * time.Millisecond},
		{"only the other family, IPv4 client", []netip.AddrPort{v6}, probe(t, wire.Probe{PadTo: 256}), clientA, false,
			stun.CodeInsufficientCapacity, 1500 * time.Millisecond},
		{"only the other family, IPv6 client", []netip.AddrPort{server1}, probe(t, wire.Probe{PadTo: 256}), clientV6, false,
			stun.CodeInsufficientCapacity, 1500 * time.Millisecond},
		{"stock allocate", []netip.AddrPort{server1}, stockAllocate(), clientV6, false, stun.CodeInsufficientCapacity, 0},
		{"stock binding redirect", []netip.AddrPort{server1}, bind, clientA, true, stun.CodeServerError, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testResponder(clk, Solo, tt.servers...)
			fillView(r)
			r.cfg.RetryAfter = 1500 * time.Millisecond
			r.cfg.RedirectStockBinding = tt.redirect
			r.cfg.Handoff = true // a refusal is never sealed in a handoff
			out, to, why := r.respond(nil, tt.pkt, tt.from, clk.Now())
			if why != dropNone || to != tt.from {
				t.Fatalf("dropped (%v) or sent to %v", why, to)
			}
			a := decode(t, out)
			if a.Code != tt.code || a.RetryAfter != tt.retry || a.Method != r.req.Method {
				t.Errorf("answer %+v, want code %d retry-after %v", a, tt.code, tt.retry)
			}
			if limit := wire.Limit(&r.req, r.cfg.StockAmplification); len(out) > limit {
				t.Errorf("%d bytes, limit %d", len(out), limit)
			}
			for _, id := range []string{"a", "b"} {
				if n := r.asg.Pending(id); n != 0 {
					t.Errorf("the refusal took a pick of %s: %d pending", id, n)
				}
			}
		})
	}
}

// fillView replaces r's view with the same nodes, each full by its report.
func fillView(r *Responder) {
	nodes := slices.Clone(r.cfg.View.Load().Nodes())
	for i := range nodes {
		nodes[i].Sessions = nodes[i].Capacity
	}
	r.cfg.View.Store(assign.NewView(nodes))
}

// TestResponderNoReportSilent checks that a leader that knows nothing
// current of the farm (no node, or every report stale) leaves probes
// unanswered (no_server) rather than refuse them: the farm is not known
// to be full, and a retry-after would hold the client off.
func TestResponderNoReportSilent(t *testing.T) {
	clk := newFakeClock()
	pkt := probe(t, wire.Probe{Session: wire.SessionID{1}, PadTo: 256})
	for _, tt := range []struct {
		name    string
		servers []netip.AddrPort
		age     time.Duration
	}{
		{"no servers", nil, 0},
		{"every report stale", []netip.AddrPort{server1, server2}, 2 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := testResponder(clk, Solo, tt.servers...)
			r.cfg.Assign.StaleAfter = time.Second
			r.prober.init(r, rand.New(rand.NewPCG(3, 3)), 1)
			clk.Advance(tt.age)
			if out, _, why := r.respond(nil, pkt, clientA, clk.Now()); why != dropNoServer {
				t.Fatalf("answered %x (%v), want no_server", out, why)
			}
			if st := r.Stats(); st.Overloaded != 0 {
				t.Errorf("%d overload answers counted", st.Overloaded)
			}
		})
	}
}

// TestResponderUnknownAttribute checks the 420 answers at the balancer
// address and that they come after the leadership and credentials checks.
func TestResponderUnknownAttribute(t *testing.T) {
	clk := newFakeClock()
	allocate := stun.NewType(stun.MethodAllocate, stun.ClassRequest)
	tests := []struct {
		name    string
		serving ServingFunc
		strict  bool
		pkt     []byte
		why     dropReason
		code    stun.ErrorCode
	}{
		{"usher probe", Solo, false, withUnknown(stun.BindingRequest, true), dropNone, stun.CodeUnknownAttribute},
		{"stock binding", Solo, false, withUnknown(stun.BindingRequest, false), dropNone, stun.CodeUnknownAttribute},
		{"stock allocate", Solo, false, withUnknown(allocate, false), dropNone, stun.CodeUnknownAttribute},
		{"strict allocate without credentials", Solo, true, withUnknown(allocate, false), dropNone, stun.CodeUnauthorized},
		{"not leader", func() (uint64, bool) { return 0, false }, false, withUnknown(stun.BindingRequest, true), dropNotLeader, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testResponder(clk, tt.serving, server1)
			if tt.strict {
				r = strictResponder(clk)
			}
			out, why := r.answer(nil, tt.pkt, clientA)
			if why != tt.why {
				t.Fatalf("got %v, want %v", why, tt.why)
			}
			if why != dropNone {
				return
			}
			if len(out) > len(tt.pkt) {
				t.Errorf("%d-byte answer to %d bytes", len(out), len(tt.pkt))
			}
			a := decode(t, out)
			if a.Code != tt.code {
				t.Fatalf("code %d, want %d", a.Code, tt.code)
			}
			if a.Code == stun.CodeUnknownAttribute && (a.NumUnknown != 1 || a.Unknown[0] != 0x7f01) {
				t.Errorf("UNKNOWN-ATTRIBUTES %v", a.Unknown[:a.NumUnknown])
			}
			if n := r.asg.Pending("a"); n != 0 {
				t.Errorf("%d picks pending", n)
			}
		})
	}
}

// TestEndpointUnknownAttribute checks the session endpoint's 420: to a
// keepalive and to a stock Binding, creating no session.
func TestEndpointUnknownAttribute(t *testing.T) {
	clk := newFakeClock()
	e := testEndpoint(clk, false)
	for _, session := range []bool{true, false} {
		pkt := withUnknown(stun.BindingRequest, session)
		out, why := e.answer(nil, pkt, clientA)
		if why != dropNone {
			t.Fatalf("session %t: dropped: %v", session, why)
		}
		if a := decode(t, out); a.Code != stun.CodeUnknownAttribute || a.NumUnknown != 1 || len(out) > len(pkt) {
			t.Errorf("session %t: answer %+v", session, a)
		}
	}
	if n, _ := e.Load(); n != 0 {
		t.Errorf("a 420 created %d sessions", n)
	}
	if st := e.Stats(); st.Unknown != 2 || st.Keepalives != 0 || st.Stock != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestKindOf checks how answers are told apart for the counters.
func TestKindOf(t *testing.T) {
	clk := newFakeClock()
	r := testResponder(clk, Solo, server1)
	full := testResponder(clk, Solo, server1)
	fillView(full)
	answer := func(r *Responder, pkt []byte) []byte {
		out, why := r.answer(nil, pkt, clientA)
		if why != dropNone {
			t.Fatalf("dropped: %v", why)
		}
		return out
	}
	tests := []struct {
		name string
		b    []byte
		want answerKind
	}{
		{"redirect", answer(r, probe(t, wire.Probe{PadTo: 256})), kindRedirect},
		{"stock binding", answer(r, stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw), kindStockBinding},
		{"overload", answer(full, probe(t, wire.Probe{PadTo: 256})), kindOverload},
		{"stock allocate overload", answer(full, stockAllocate()), kindOverload},
		{"unknown attribute", answer(r, withUnknown(stun.BindingRequest, true)), kindUnknownAttribute},
		{"handoff", []byte("USH1 and the rest of a sealed handoff"), kindRedirect},
		{"short", []byte{1, 1}, kindRedirect},
	}
	for _, tt := range tests {
		if got := kindOf(tt.b); got != tt.want {
			t.Errorf("%s: kind %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestCountSent checks that answers are counted by kind and that the ones
// the socket did not send come off the redirects first.
func TestCountSent(t *testing.T) {
	clk := newFakeClock()
	r := testResponder(clk, Solo, server1)
	full := testResponder(clk, Solo, server1)
	fillView(full)
	redirect, _ := r.answer(nil, probe(t, wire.Probe{PadTo: 256}), clientA)
	overload, _ := full.answer(nil, probe(t, wire.Probe{PadTo: 256}), clientA)
	out := []udpio.Message{{Buf: redirect}, {Buf: overload}, {Buf: overload}, {Buf: redirect}}
	p := &r.prober
	p.countSent(out, 4)
	p.countSent(out, 1) // 3 lost: both redirects, then one overload
	if st := r.Stats(); st.Answered != 2 || st.Overloaded != 3 {
		t.Errorf("answered %d, overloaded %d; want 2, 3", st.Answered, st.Overloaded)
	}
}

// TestResponderOverloadAllocs: under overload every probe is refused, so
// the refusal must cost no allocation, as a redirect costs none.
func TestResponderOverloadAllocs(t *testing.T) {
	clk := newFakeClock()
	r := testResponder(clk, Solo, server1)
	fillView(r)
	pkt := probe(t, wire.Probe{Session: wire.SessionID{1}, PadTo: 256})
	unknown := withUnknown(stun.BindingRequest, true)
	dst := make([]byte, 0, maxDatagram)
	if n := testing.AllocsPerRun(200, func() {
		r.answer(dst[:0], pkt, clientA)
		r.answer(dst[:0], unknown, clientA)
	}); n != 0 {
		t.Errorf("%v allocations per refusal", n)
	}
}

// BenchmarkResponderOverload is the probe path when the farm is full: 64
// servers, every one at capacity, so every probe gets the overload answer.
// Compare with BenchmarkResponderAnswer: a flood during overload must cost
// no more than the redirects it replaces.
func BenchmarkResponderOverload(b *testing.B) {
	clk := newFakeClock()
	r := testResponder(clk, Solo)
	var nodes []assign.Node
	for i := range 64 {
		addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}), 3479)
		nodes = append(nodes, assign.Node{ID: fmt.Sprint(i), Addr: addr, Capacity: 100, Sessions: 100, ReportedAt: clk.Now()})
	}
	r.cfg.View.Store(assign.NewView(nodes))
	pkt := probe(b, wire.Probe{Session: wire.SessionID{1}, PadTo: wire.ProbeSize})
	if out, _ := r.answer(nil, pkt, clientA); decode(b, out).Code != stun.CodeInsufficientCapacity {
		b.Fatal("the full farm did not answer 508")
	}
	benchLoop(b, clk, r, pkt)
}
