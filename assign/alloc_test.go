package assign

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// steadyAssigner returns a warm Assigner over n roomy nodes whose ledgers
// have reached their working size: the fake clock moves 10µs per reading
// and entries live 10ms, so each ledger holds at most ~1000/n entries.
func steadyAssigner(p Policy, n int) (*Assigner, *fakeClock) {
	c := newFakeClock()
	a := New(Config{Policy: p, PendingTTL: 10 * time.Millisecond, StaleAfter: time.Hour, startWarm: true}, func() time.Time {
		c.Advance(10 * time.Microsecond)
		return c.Now()
	}, newRand(1))
	nodes := make([]Node, n)
	for i := range nodes {
		nodes[i] = nodeN(c, i, i*10, 1<<30)
	}
	a.SetView(NewView(nodes))
	for i := range 5000 {
		a.Pick(sid(uint64(i)), none)
	}
	return a, c
}

func TestPickAndBackupsDoNotAllocate(t *testing.T) {
	for _, p := range allPolicies {
		for _, n := range []int{1, 10, 100} {
			t.Run(fmt.Sprintf("%v/%d", p, n), func(t *testing.T) {
				a, _ := steadyAssigner(p, n)
				i := uint64(0)
				avoid := addr(0)
				if got := testing.AllocsPerRun(1000, func() {
					i++
					if _, err := a.Pick(sid(i), avoid); err != nil && n > 1 {
						t.Fatal(err)
					}
				}); got != 0 {
					t.Errorf("Pick: %v allocations per run", got)
				}
				dst := make([]netip.AddrPort, 0, 4)
				if got := testing.AllocsPerRun(1000, func() {
					dst = a.Backups(dst[:0], 4, avoid)
				}); got != 0 {
					t.Errorf("Backups: %v allocations per run", got)
				}
				if got := testing.AllocsPerRun(1000, func() {
					i++
					_, dst, _ = a.PickWithBackups(sid(i), avoid, dst[:0], 3)
				}); got != 0 {
					t.Errorf("PickWithBackups: %v allocations per run", got)
				}
				if got := testing.AllocsPerRun(1000, func() {
					i++
					_, dst, _ = a.PickFor(IPv4, sid(i), avoid, dst[:0], 3, BookSession)
				}); got != 0 {
					t.Errorf("PickFor: %v allocations per run", got)
				}
				// Reinstalling a same-sized view reuses the state arrays.
				v := a.View()
				if got := testing.AllocsPerRun(100, func() { a.SetView(v) }); got != 0 {
					t.Errorf("SetView: %v allocations per run", got)
				}
			})
		}
	}
}
