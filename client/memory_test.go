package client

import (
	"net/netip"
	"testing"
	"time"
)

func TestMemoryRefuse(t *testing.T) {
	var (
		t0     = time.Unix(1_000_000, 0)
		window = time.Minute
		a      = netip.MustParseAddrPort("10.0.0.1:3479")
		b      = netip.MustParseAddrPort("10.0.0.2:3479")
		c      = netip.MustParseAddrPort("10.0.0.3:3479")
	)
	type step struct {
		lost, seen netip.AddrPort
		at         time.Duration
	}
	tests := []struct {
		name  string
		steps []step
		ask   netip.AddrPort
		at    time.Duration
		want  bool
	}{
		{"never lost", []step{{seen: a}, {seen: b}}, a, time.Second, false},
		{"lost, no other known", []step{{seen: a}, {lost: a, at: time.Second}}, a, 2 * time.Second, false},
		{"lost, other known", []step{{seen: a}, {seen: b}, {lost: a, at: time.Second}}, a, 2 * time.Second, true},
		{"lost, other lost too", []step{{seen: a}, {seen: b}, {lost: a}, {lost: b}}, a, time.Second, false},
		{"lost, one of two others lost", []step{{seen: a}, {seen: b}, {seen: c}, {lost: a}, {lost: b}}, a, time.Second, true},
		{"loss forgotten after window", []step{{seen: a}, {seen: b}, {lost: a}}, a, window, false},
		{"other forgotten after window", []step{{seen: b}, {seen: a, at: 30 * time.Second}, {lost: a, at: 30 * time.Second}}, a, window + time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newMemory(window)
			for _, s := range tt.steps {
				if s.seen.IsValid() {
					g.markSeen(s.seen, t0.Add(s.at))
				}
				if s.lost.IsValid() {
					g.markLost(s.lost, t0.Add(s.at), true)
				}
			}
			if got := g.refuse(tt.ask, t0.Add(tt.at)); got != tt.want {
				t.Errorf("refuse(%v) = %v, want %v", tt.ask, got, tt.want)
			}
		})
	}
}

func TestMemoryForgiveAndKind(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	a := netip.MustParseAddrPort("10.0.0.1:3479")
	g := newMemory(time.Minute)
	g.markLost(a, t0, false)
	if m, ok := g.lostAt(a, t0); !ok || m.dead {
		t.Fatalf("lostAt = %+v, %v; want a draining mark", m, ok)
	}
	g.markLost(a, t0, true)
	if m, _ := g.lostAt(a, t0); !m.dead {
		t.Fatal("a later death did not replace the draining mark")
	}
	g.forgive(a)
	if _, ok := g.lostAt(a, t0); ok {
		t.Fatal("forgiven server still lost")
	}
}

func TestMemoryBounded(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	g := newMemory(time.Hour)
	for i := range 3 * maxRemembered {
		ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 1)
		now := t0.Add(time.Duration(i) * time.Millisecond)
		g.markSeen(ap, now)
		g.markLost(ap, now, true)
	}
	if len(g.seen) > maxRemembered || len(g.lost) > maxRemembered {
		t.Fatalf("memory holds %d seen and %d lost, cap %d", len(g.seen), len(g.lost), maxRemembered)
	}
	newest := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte((3*maxRemembered - 1) >> 8), byte(3*maxRemembered - 1)}), 1)
	if _, ok := g.seen[newest]; !ok {
		t.Fatal("the newest entry was evicted instead of the oldest")
	}
}
