//go:build linux

package e2e

import (
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestFloodVerdict checks the flood scenario's acceptance: the share of
// probes answered and the setup p99 against the baseline's.
func TestFloodVerdict(t *testing.T) {
	base := &floodWindow{SessionsSetUp: 100, ProbePct: 100, SetupP99Ms: 10}
	for _, tc := range []struct {
		name string
		w    floodWindow
		want string
	}{
		{"met", floodWindow{SessionsSetUp: 100, ProbePct: 99.5, SetupP99Ms: 20}, "pass"},
		{"few answered", floodWindow{SessionsSetUp: 100, ProbePct: 98.9, SetupP99Ms: 10}, "fail: 98.90% of probes answered < 99%"},
		{"slow", floodWindow{SessionsSetUp: 100, ProbePct: 100, SetupP99Ms: 20.1}, "fail: setup p99 20.1 ms > 2× the baseline's 10.0 ms"},
		{"none set up", floodWindow{ProbePct: 100}, "fail: setup p99 0.0 ms"},
		{"both", floodWindow{SessionsSetUp: 1, ProbePct: 50, SetupP99Ms: 99}, "fail: 50.00% of probes answered < 99%; setup p99 99.0 ms"},
	} {
		if got := floodVerdict(&tc.w, base); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: verdict %q, want %q...", tc.name, got, tc.want)
		}
	}
}

// TestAppendUDP4 checks the raw generator's datagram against a golden
// encoding, its UDP checksum included.
func TestAppendUDP4(t *testing.T) {
	src := netip.MustParseAddrPort("198.19.0.1:20000")
	dst := netip.MustParseAddrPort("198.18.0.100:3478")
	got := hex.EncodeToString(appendUDP4(nil, src, dst, []byte("usher")))
	// IPv4: length 33, DF, TTL 64, UDP, checksum left to the kernel;
	// UDP: 20000 -> 3478, length 13, checksum 0xc7b9 (worked out apart, in Python).
	const want = "450000210000400040110000c6130001c61200644e200d96000dc7b9" + "7573686572"
	if got != want {
		t.Errorf("appendUDP4 =\n%s, want\n%s", got, want)
	}
}

// TestSpoofedSources checks that the spoofed sources stay in spoofBlock,
// that 1000 of them are distinct and spread over 250 /24s, and that one
// source is one address.
func TestSpoofedSources(t *testing.T) {
	addrs, prefixes := map[netip.Addr]bool{}, map[netip.Prefix]bool{}
	for i := range floodSources {
		a := spoofedSource(i, floodSources).Addr()
		if !spoofBlock.Contains(a) {
			t.Fatalf("source %d: %v outside %v", i, a, spoofBlock)
		}
		addrs[a] = true
		p, _ := a.Prefix(24)
		prefixes[p] = true
	}
	if len(addrs) != floodSources || len(prefixes) != 250 {
		t.Errorf("%d distinct sources in %d /24s, want %d in 250", len(addrs), len(prefixes), floodSources)
	}
	if a, b := spoofedSource(0, 1).Addr(), spoofedSource(7, 1).Addr(); a != b || !spoofBlock.Contains(a) {
		t.Errorf("one source: %v and %v", a, b)
	}
	r := rawSender{fd: -1} // no socket: only the source check can refuse
	err := r.send(netip.MustParseAddrPort("198.18.0.200:1"), netip.MustParseAddrPort("198.18.0.100:3478"), nil)
	if err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("rawSender sending from outside the spoofed block: %v, want a refusal", err)
	}
}

// TestFloodSpec checks that a flood plan reaches its process intact: the
// spec's JSON decodes to the same plan, kinds by name, and a spec naming
// an unknown kind or no target is refused.
func TestFloodSpec(t *testing.T) {
	to := []netip.AddrPort{netip.MustParseAddrPort("198.18.0.11:3478"), netip.MustParseAddrPort("198.18.0.12:3479")}
	p := &floodPlan{sources: 1000, targets: to, kinds: []*probeKind{stockBinding, ticketlessKeepalive, lostServerHint}, rate: 40000}
	raw, err := json.Marshal(p.spec(3 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var s floodSpec
	got, err := decodeSpec(string(raw), &s)
	if err != nil {
		t.Fatal(err)
	}
	if s.For != 3*time.Second || got.sources != p.sources || got.rate != p.rate || !slices.Equal(got.targets, p.targets) || !slices.Equal(got.kinds, p.kinds) {
		t.Errorf("decoded %+v (for %v), want %+v", got, s.For, p)
	}
	for _, bad := range []string{
		`{"sources":1,"targets":["198.18.0.11:3478"],"kinds":["no-such-kind"],"rate":1,"for":1}`,
		`{"sources":1,"targets":[],"kinds":["stock-binding"],"rate":1,"for":1}`,
	} {
		if _, err := decodeSpec(bad, &floodSpec{}); err == nil {
			t.Errorf("%s: decoded, want an error", bad)
		}
	}
}
