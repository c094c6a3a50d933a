package assign

import (
	"fmt"
	"net/netip"
	"testing"
)

// BenchmarkPick measures one Pick per policy over 10 and 100 nodes in
// steady state (warm, ledgers at their working size, entries expiring as
// fast as they are made). It should report 0 allocs/op.
func BenchmarkPick(b *testing.B) {
	for _, p := range allPolicies {
		for _, n := range []int{10, 100} {
			b.Run(fmt.Sprintf("%v/nodes=%d", p, n), func(b *testing.B) {
				a, _ := steadyAssigner(p, n)
				avoid := addr(0)
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					if _, err := a.Pick(sid(uint64(i)), avoid); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkBackups measures picking 3 backups over 10 and 100 nodes.
func BenchmarkBackups(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			a, _ := steadyAssigner(LeastLoaded, n)
			dst := make([]netip.AddrPort, 0, 3)
			avoid := addr(0)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				dst = a.Backups(dst[:0], 3, avoid)
			}
		})
	}
}

// BenchmarkPickAndBackups measures what the probe path needs per probe, a
// pick and 3 backups, over 10 and 100 nodes: as two calls (two passes over
// the view) and as one PickWithBackups.
func BenchmarkPickAndBackups(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("two-calls/nodes=%d", n), func(b *testing.B) {
			a, _ := steadyAssigner(LeastLoaded, n)
			dst := make([]netip.AddrPort, 0, 3)
			b.ReportAllocs()
			for i := range b.N {
				nd, err := a.Pick(sid(uint64(i)), none)
				if err != nil {
					b.Fatal(err)
				}
				dst = a.Backups(dst[:0], 3, nd.Addr)
			}
		})
		b.Run(fmt.Sprintf("one-call/nodes=%d", n), func(b *testing.B) {
			a, _ := steadyAssigner(LeastLoaded, n)
			dst := make([]netip.AddrPort, 0, 3)
			b.ReportAllocs()
			for i := range b.N {
				var err error
				if _, dst, err = a.PickWithBackups(sid(uint64(i)), none, dst[:0], 3); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSetView measures installing a new view of 10 and 100 nodes,
// reconciling every ledger.
func BenchmarkSetView(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			a, c := steadyAssigner(LeastLoaded, n)
			nodes := append([]Node(nil), a.View().Nodes()...)
			views := [2]*View{}
			for k := range views {
				for i := range nodes {
					nodes[i].Accepted += uint64(k)
					nodes[i].ReportedAt = c.Now()
				}
				views[k] = NewView(nodes)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				a.SetView(views[i&1])
			}
		})
	}
}
