package node

import (
	"net/netip"
	"testing"
	"time"

	"github.com/usherlb/usher/wire"
)

// sealedRedirect builds a redirect to server1 for client, sealed in a
// handoff with key at sent.
func sealedRedirect(t *testing.T, key []byte, client netip.AddrPort, sent time.Time) []byte {
	t.Helper()
	var dec wire.Decoder
	var req wire.Request
	if err := dec.DecodeRequest(probe(t, wire.Probe{Session: wire.SessionID{9}, PadTo: wire.ProbeSize}), &req); err != nil {
		t.Fatal(err)
	}
	var enc wire.Encoder
	ans, err := enc.AppendRedirect(nil, &req, &wire.Redirect{Server: server1, Term: 2}, req.Size)
	if err != nil {
		t.Fatal(err)
	}
	pkt, err := wire.NewSealer(key).AppendHandoff(nil, &wire.Handoff{Client: client, Sent: uint32(sent.Unix()), Answer: ans})
	if err != nil {
		t.Fatal(err)
	}
	return pkt
}

// TestEndpointHandoffs attacks the relay of handoffs: a server must relay
// only a handoff the leader sealed with the handoff key, sent from the
// balancer address, when respond_from = "server", and each only once.
func TestEndpointHandoffs(t *testing.T) {
	vip := netip.MustParseAddrPort("198.51.100.100:3478")
	handoffKey := wire.HandoffKey(testKey)
	clk := newFakeClock()
	fresh := func() []byte { return sealedRedirect(t, handoffKey, clientA, clk.Now()) }
	replayed := fresh()
	for _, tt := range []struct {
		name     string
		handoffs bool
		pkt      []byte
		from     netip.AddrPort
		want     dropReason
	}{
		{"sealed by the leader", true, replayed, vip, dropNone},
		{"the same again", true, replayed, vip, dropHandoffReplay},
		{"another one", true, fresh(), vip, dropNone},
		{"respond_from leader", false, fresh(), vip, dropHandoffInvalid},
		{"not from the balancer address", true, fresh(), clientB, dropHandoffInvalid},
		{"sealed with the ticket key itself", true, sealedRedirect(t, testKey, clientA, clk.Now()), vip, dropHandoffInvalid},
		{"stale", true, sealedRedirect(t, handoffKey, clientA, clk.Now().Add(-time.Minute)), vip, dropHandoffStale},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := testEndpoint(clk, false)
			e.cfg.Handoffs, e.cfg.HandoffFrom = tt.handoffs, vip.Addr()
			if tt.want == dropHandoffReplay {
				// The same endpoint saw it before.
				if _, _, why := e.handle(nil, tt.pkt, tt.from); why != dropNone {
					t.Fatalf("first relay: %v", why)
				}
			}
			out, to, why := e.handle(nil, tt.pkt, tt.from)
			if why != tt.want {
				t.Fatalf("drop %v, want %v", why, tt.want)
			}
			if why == dropNone && (to != clientA || len(out) == 0) {
				t.Errorf("relayed %d bytes to %v", len(out), to)
			}
		})
	}
}

func TestHandoffReplaysWindow(t *testing.T) {
	start := time.Unix(1000, 0)
	h := newHandoffReplays(6*time.Second, 3)
	mac := func(b byte) []byte { m := make([]byte, 16); m[0] = b; return m }
	steps := []struct {
		at   time.Duration
		mac  byte
		want bool
	}{
		{0, 1, true},
		{time.Second, 1, false},       // replay in the same generation
		{7 * time.Second, 1, false},   // still remembered in the previous one
		{7 * time.Second, 2, true},    // a new one
		{14 * time.Second, 1, true},   // two spans later it is gone (and stale anyway)
		{14 * time.Second, 3, true},   //
		{14 * time.Second, 4, true},   // the cap: three in this generation
		{14 * time.Second, 5, false},  // full: refused rather than forgotten
		{14 * time.Second, 2, false},  // from the previous generation
		{21*time.Second + 1, 5, true}, // a new generation has room
	}
	for i, s := range steps {
		if got := h.admit(mac(s.mac), start.Add(s.at)); got != s.want {
			t.Errorf("step %d (%v, mac %d): admit %v, want %v", i, s.at, s.mac, got, s.want)
		}
	}
}
