package assign

import (
	"fmt"
	"net/netip"
	"testing"
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
	a := newTestAssigner(Config{NoLedger: true}, c, 1, nodes)
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
