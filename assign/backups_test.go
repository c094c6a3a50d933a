package assign

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func TestBackups(t *testing.T) {
	c := newFakeClock()
	nodes := []Node{
		nodeN(c, 0, 50, 100), // 0.5
		nodeN(c, 1, 10, 100), // 0.1
		nodeN(c, 2, 30, 100), // 0.3
		nodeN(c, 3, 10, 100), // 0.1, ties with n01: ID order
		nodeN(c, 4, 0, 100),  // draining: never
		nodeN(c, 5, 20, 200), // 0.1 too
	}
	nodes[4].Draining = true
	a := newTestAssigner(Config{noLedger: true}, c, 1, nodes)
	prefix := []netip.AddrPort{addr(77)}
	tests := []struct {
		n    int
		not  netip.AddrPort
		want []int // node numbers after the prefix
	}{
		{n: 0, want: nil},
		{n: -1, want: nil},
		{n: 1, want: []int{1}},
		{n: 3, want: []int{1, 3, 5}},
		{n: 3, not: addr(3), want: []int{1, 5, 2}},
		{n: 10, want: []int{1, 3, 5, 2, 0}},
		{n: 10, not: addr(1), want: []int{3, 5, 2, 0}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("n=%d/not=%v", tt.n, tt.not), func(t *testing.T) {
			dst := append(make([]netip.AddrPort, 0, 16), prefix...)
			for range 3 { // the order must not depend on the previous call
				got := a.Backups(dst, tt.n, tt.not)
				want := append([]netip.AddrPort(nil), prefix...)
				for _, i := range tt.want {
					want = append(want, addr(i))
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("Backups = %v, want %v", got, want)
				}
			}
		})
	}
}

func TestBackupsCountPending(t *testing.T) {
	c := newFakeClock()
	// Sticky with one session piles entries on one node deterministically.
	var s SessionID
	for i := uint64(0); ; i++ {
		if s = sid(i); StickyScore(s, "n00") > StickyScore(s, "n01") {
			break
		}
	}
	a := newTestAssigner(Config{Policy: Sticky}, c, 1, []Node{nodeN(c, 0, 0, 100), nodeN(c, 1, 5, 100)})
	if got := a.Backups(nil, 2, none); fmt.Sprint(got) != fmt.Sprint([]netip.AddrPort{addr(0), addr(1)}) {
		t.Fatalf("before picks: Backups = %v", got)
	}
	for range 10 {
		if n, err := a.Pick(s, none); err != nil || n.ID != "n00" {
			t.Fatalf("Pick = %s, %v", n.ID, err)
		}
	}
	// n00 is now 0 sessions + 10 pending, n01 5 + 0.
	if got := a.Backups(nil, 2, none); fmt.Sprint(got) != fmt.Sprint([]netip.AddrPort{addr(1), addr(0)}) {
		t.Fatalf("after 10 picks on n00: Backups = %v: pending not counted", got)
	}
}

// TestPickWithBackups checks that the one-pass call picks what Pick picks
// and names the backups Backups names for that pick, minus the server the
// client reported lost.
func TestPickWithBackups(t *testing.T) {
	tests := []struct {
		name  string
		avoid netip.AddrPort
		n     int
	}{
		{"none", none, 3},
		{"no backups", none, 0},
		{"all", none, 10},
		{"avoid", addr(2), 3},
		{"avoid all", addr(4), 10},
	}
	for _, p := range allPolicies {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%v/%s", p, tt.name), func(t *testing.T) {
				// Two identical assigners on a clock that stands still, so
				// the two calls of the second see what the one call sees.
				c := newFakeClock()
				var nodes []Node
				for i := range 6 {
					nodes = append(nodes, nodeN(c, i, (i*37)%50, 100))
				}
				cfg := Config{Policy: p, startWarm: true, StaleAfter: time.Hour}
				one := newTestAssigner(cfg, c, 1, nodes)
				two := newTestAssigner(cfg, c, 1, nodes)
				for i := range uint64(50) {
					got, backups, err := one.PickWithBackups(sid(i), tt.avoid, nil, tt.n)
					want, err2 := two.Pick(sid(i), tt.avoid)
					if err != nil || err2 != nil || got.ID != want.ID {
						t.Fatalf("probe %d: PickWithBackups = %s, %v; Pick = %s, %v", i, got.ID, err, want.ID, err2)
					}
					var wantBackups []netip.AddrPort
					for _, b := range two.Backups(nil, tt.n+1, want.Addr) {
						if b != tt.avoid && len(wantBackups) < tt.n {
							wantBackups = append(wantBackups, b)
						}
					}
					if fmt.Sprint(backups) != fmt.Sprint(wantBackups) {
						t.Fatalf("probe %d: backups = %v, want %v", i, backups, wantBackups)
					}
				}
			})
		}
	}
}

func TestPickWithBackupsNoServer(t *testing.T) {
	c := newFakeClock()
	a := newTestAssigner(Config{}, c, 1, []Node{nodeN(c, 0, 0, 100)})
	dst := []netip.AddrPort{addr(9)}
	if _, got, err := a.PickWithBackups(sid(1), addr(0), dst, 2); err != ErrNoServer || len(got) != 1 {
		t.Fatalf("PickWithBackups avoiding the only node = %v, %v; want dst unchanged, ErrNoServer", got, err)
	}
}
