package node

import (
	"testing"

	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/wire"
)

// seeds adds a few well-formed requests to a fuzz corpus.
func seeds(f *testing.F) {
	f.Add(probe(f, wire.Probe{Session: wire.SessionID{1}, PadTo: wire.ProbeSize}))
	f.Add(probe(f, wire.Probe{Session: wire.SessionID{2}, Service: "default", LostServer: server2, ClientAddress: clientA}))
	f.Add(keepalive(f, wire.SessionID{3}, []byte("0123456789abcdefghijk"), wire.KeepaliveSize))
	f.Add(stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint).Raw)
	f.Add([]byte{})
}

// FuzzResponderAnswer checks that no datagram crashes the responder, that
// every answer keeps the size rule, that a request with unknown
// comprehension-required attributes gets a 420 naming them and takes no
// pick, that a stock Binding request gets a Binding success naming its
// source and takes no pick, and that anything else answered gets a
// redirect.
func FuzzResponderAnswer(f *testing.F) {
	seeds(f)
	clk := newFakeClock()
	r := testResponder(clk, Solo, server1, server2, server3)
	pending := func() int { return r.asg.Pending("a") + r.asg.Pending("b") + r.asg.Pending("c") }
	f.Fuzz(func(t *testing.T, pkt []byte) {
		before := pending()
		out, why := r.answer(nil, pkt, clientA)
		if why != dropNone {
			return
		}
		if len(out) > 3*len(pkt) {
			t.Fatalf("%d-byte request, %d-byte answer", len(pkt), len(out))
		}
		if r.req.HasSession && len(out) > len(pkt) {
			t.Fatalf("%d-byte probe, %d-byte answer", len(pkt), len(out))
		}
		a := decode(t, out)
		if a.Code == stun.CodeUnknownAttribute {
			if a.NumUnknown == 0 || pending() != before {
				t.Fatalf("420 answer %+v naming no attribute, or pending %d then %d", a, before, pending())
			}
			return
		}
		stock := !r.req.HasSession && r.req.Method == stun.MethodBinding
		if stock && (!a.Success || a.Mapped != clientA || pending() != before) {
			t.Fatalf("stock Binding: answer %+v, pending %d then %d", a, before, pending())
		}
		if !stock && (a.Success || a.Code != stun.CodeTryAlternate) {
			t.Fatalf("%v request: answer %+v, want a redirect", r.req.Method, a)
		}
	})
}

// FuzzEndpointAnswer does the same for the session endpoint.
func FuzzEndpointAnswer(f *testing.F) {
	seeds(f)
	clk := newFakeClock()
	e := testEndpoint(clk, true)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		out, why := e.answer(nil, pkt, clientA)
		if why == dropNone && len(out) > 3*len(pkt) {
			t.Fatalf("%d-byte request, %d-byte answer", len(pkt), len(out))
		}
		if why == dropNone && e.req.HasSession && len(out) > len(pkt) {
			t.Fatalf("%d-byte keepalive, %d-byte answer", len(pkt), len(out))
		}
	})
}
