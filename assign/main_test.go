package assign

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The package starts no goroutines; goleak proves that stays true.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a manual clock for tests.
type fakeClock struct{ t time.Time }

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

// addr returns a distinct documentation address for node number i.
func addr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 3479)
}

// nodeN builds an eligible node number i with the given load, reported now.
func nodeN(c *fakeClock, i, sessions, capacity int) Node {
	return Node{
		ID:         fmt.Sprintf("n%02d", i),
		Addr:       addr(i),
		Capacity:   capacity,
		Sessions:   sessions,
		ReportedAt: c.Now(),
	}
}

// equalNodes builds n idle nodes of the given capacity.
func equalNodes(c *fakeClock, n, capacity int) []Node {
	ns := make([]Node, n)
	for i := range ns {
		ns[i] = nodeN(c, i, 0, capacity)
	}
	return ns
}

// newTestAssigner returns a warm Assigner with a seeded rng and the view
// installed.
func newTestAssigner(cfg Config, c *fakeClock, seed uint64, nodes []Node) *Assigner {
	cfg.startWarm = true
	a := New(cfg, c.Now, newRand(seed))
	a.SetView(NewView(nodes))
	return a
}

// sid returns a session ID derived from i.
func sid(i uint64) SessionID {
	var s SessionID
	for k := range s {
		s[k] = byte(i >> (8 * k))
	}
	return s
}

var allPolicies = []Policy{LeastLoaded, P2C, RoundRobin, Random, Sticky}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
