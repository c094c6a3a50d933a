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

// FuzzResponderAnswer checks that no datagram crashes the responder and that
// every answer keeps the size rule.
func FuzzResponderAnswer(f *testing.F) {
	seeds(f)
	clk := newFakeClock()
	r := testResponder(clk, Solo, server1, server2, server3)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		out, why := r.answer(nil, pkt, clientA)
		if why == dropNone && len(out) > 3*len(pkt) {
			t.Fatalf("%d-byte request, %d-byte answer", len(pkt), len(out))
		}
		if why == dropNone && r.req.HasSession && len(out) > len(pkt) {
			t.Fatalf("%d-byte probe, %d-byte answer", len(pkt), len(out))
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
