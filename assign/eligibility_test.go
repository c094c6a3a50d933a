package assign

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

// TestIneligibleNeverPicked puts one bad node (idle, so every load-based
// policy would love it) next to two healthy, half-loaded ones, and checks
// that no policy ever picks it, and that it alone yields ErrNoServer.
func TestIneligibleNeverPicked(t *testing.T) {
	const staleAfter = time.Second
	tests := []struct {
		name  string
		bad   func(c *fakeClock, n *Node)
		avoid bool // pass the bad node's address as avoid
	}{
		{name: "draining", bad: func(_ *fakeClock, n *Node) { n.Draining = true }},
		{name: "suspect", bad: func(_ *fakeClock, n *Node) { n.Suspect = true }},
		{name: "full", bad: func(_ *fakeClock, n *Node) { n.Sessions = n.Capacity }},
		{name: "over full", bad: func(_ *fakeClock, n *Node) { n.Sessions = n.Capacity + 5 }},
		{name: "capacity 0", bad: func(_ *fakeClock, n *Node) { n.Capacity = 0 }},
		{name: "negative capacity", bad: func(_ *fakeClock, n *Node) { n.Capacity = -1 }},
		{name: "stale", bad: func(c *fakeClock, n *Node) { n.ReportedAt = c.Now().Add(-staleAfter - time.Nanosecond) }},
		{name: "never reported", bad: func(_ *fakeClock, n *Node) { n.ReportedAt = time.Time{} }},
		{name: "no address", bad: func(_ *fakeClock, n *Node) { n.Addr = netip.AddrPort{} }},
		{name: "avoid", bad: func(*fakeClock, *Node) {}, avoid: true},
	}
	for _, tt := range tests {
		for _, p := range allPolicies {
			t.Run(tt.name+"/"+p.String(), func(t *testing.T) {
				c := newFakeClock()
				bad := nodeN(c, 0, 0, 100)
				tt.bad(c, &bad)
				var avoid netip.AddrPort
				if tt.avoid {
					avoid = bad.Addr
				}
				nodes := []Node{bad, nodeN(c, 1, 50, 100), nodeN(c, 2, 50, 100)}
				cfg := Config{Policy: p, StaleAfter: staleAfter, noLedger: true}
				a := newTestAssigner(cfg, c, 1, nodes)
				for i := range 300 {
					n, err := a.Pick(sid(uint64(i)), avoid)
					if err != nil {
						t.Fatalf("pick %d: %v", i, err)
					}
					if n.ID == bad.ID {
						t.Fatalf("pick %d returned the ineligible node %s", i, n.ID)
					}
				}
				if got := a.Backups(nil, 3, netip.AddrPort{}); containsAddr(got, bad.Addr) && !tt.avoid {
					t.Errorf("Backups %v include the ineligible node", got)
				}
				if got := a.Backups(nil, 3, avoid); containsAddr(got, bad.Addr) {
					t.Errorf("Backups %v include the ineligible node", got)
				}

				// Alone, the bad node means no server at all.
				a.SetView(NewView([]Node{bad}))
				if n, err := a.Pick(sid(1), avoid); !errors.Is(err, ErrNoServer) {
					t.Errorf("only %s: Pick = %s, %v; want ErrNoServer", tt.name, n.ID, err)
				}
			})
		}
	}
}

func containsAddr(as []netip.AddrPort, x netip.AddrPort) bool {
	for _, a := range as {
		if a == x {
			return true
		}
	}
	return false
}

func TestStaleBoundary(t *testing.T) {
	c := newFakeClock()
	n := nodeN(c, 0, 0, 10)
	a := newTestAssigner(Config{StaleAfter: time.Second}, c, 1, []Node{n})
	c.Advance(time.Second) // exactly StaleAfter old: still eligible
	if _, err := a.Pick(sid(1), netip.AddrPort{}); err != nil {
		t.Fatalf("report exactly StaleAfter old: %v", err)
	}
	c.Advance(time.Nanosecond)
	if _, err := a.Pick(sid(1), netip.AddrPort{}); !errors.Is(err, ErrNoServer) {
		t.Fatalf("report older than StaleAfter: err = %v, want ErrNoServer", err)
	}
}

func TestZeroStaleAfterNeverStale(t *testing.T) {
	c := newFakeClock()
	n := nodeN(c, 0, 0, 10)
	a := newTestAssigner(Config{}, c, 1, []Node{n})
	c.Advance(1000 * time.Hour)
	if _, err := a.Pick(sid(1), netip.AddrPort{}); err != nil {
		t.Fatalf("StaleAfter 0: %v", err)
	}
}

// TestPendingCountsTowardsFull: a node whose sessions plus pending entries
// reach its capacity is passed over while another node has room counting
// its own, but it is still picked when no node has (its report says it has
// room), and its ledger then never outgrows its capacity.
func TestPendingCountsTowardsFull(t *testing.T) {
	for _, p := range allPolicies {
		t.Run(p.String(), func(t *testing.T) {
			c := newFakeClock()
			small := nodeN(c, 0, 1, 3)
			a := newTestAssigner(Config{Policy: p}, c, 1, []Node{small})
			pickIDs(t, a, 2) // 1 session + 2 pending = capacity 3
			a.SetView(NewView([]Node{small, nodeN(c, 1, 0, 1000)}))
			for i := range 100 {
				if n, err := a.Pick(sid(uint64(i)), none); err != nil || n.ID == small.ID {
					t.Fatalf("pick %d = %s, %v; want n01, which has room", i, n.ID, err)
				}
			}
			if got := a.Pending(small.ID); got != 2 {
				t.Errorf("Pending = %d, want 2", got)
			}
			a.SetView(NewView([]Node{small}))
			for i := range 10 {
				if n, err := a.Pick(sid(uint64(i)), none); err != nil {
					t.Fatalf("alone, full only by its pending entries: pick %d = %s, %v", i, n.ID, err)
				}
			}
			if got := a.Pending(small.ID); got != small.Capacity {
				t.Errorf("after 10 more picks: Pending = %d, want the capacity %d", got, small.Capacity)
			}
		})
	}
}

func TestNoViewNoServer(t *testing.T) {
	c := newFakeClock()
	a := New(Config{}, c.Now, newRand(1))
	if _, err := a.Pick(sid(1), netip.AddrPort{}); !errors.Is(err, ErrNoServer) {
		t.Fatalf("Pick without a view: %v", err)
	}
	if got := a.Backups(nil, 3, netip.AddrPort{}); len(got) != 0 {
		t.Fatalf("Backups without a view = %v", got)
	}
	a.SetView(nil)
	if _, err := a.Pick(sid(1), netip.AddrPort{}); !errors.Is(err, ErrNoServer) {
		t.Fatalf("Pick with a nil view: %v", err)
	}
	if a.Pending("x") != 0 {
		t.Fatal("Pending of an unknown node is not 0")
	}
}

func TestNewPanicsWithoutClockOrRand(t *testing.T) {
	c := newFakeClock()
	for name, f := range map[string]func(){
		"no clock": func() { New(Config{}, nil, newRand(1)) },
		"no rand":  func() { New(Config{}, c.Now, nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: New did not panic", name)
				}
			}()
			f()
		}()
	}
}

// TestZeroTimeClock runs an Assigner on a clock that reads the zero Time,
// whose Unix nanoseconds are clamped to the smallest int64: the ledger's
// expiry cutoff and the staleness bound must not wrap around to the far
// future, which would expire every pending entry and make every report
// stale.
func TestZeroTimeClock(t *testing.T) {
	c := &fakeClock{}
	nodes := equalNodes(c, 2, 1000)
	a := newTestAssigner(Config{StaleAfter: time.Second}, c, 1, nodes)
	nd, err := a.Pick(sid(1), netip.AddrPort{})
	if err != nil {
		t.Fatalf("pick on a zero clock: %v", err)
	}
	if got := a.Pending(nd.ID); got != 1 {
		t.Errorf("pending on %s: %d, want 1", nd.ID, got)
	}
}

// TestNoReportOrNoServer checks which error a failed pick gives: ErrNoReport
// when nothing current is known of the farm (no node, every report stale
// or starting), plain ErrNoServer when a node reports in time and still
// cannot take the session (full, draining, without capacity, suspect, or
// the server the client lost).
func TestNoReportOrNoServer(t *testing.T) {
	c := newFakeClock()
	fresh := nodeN(c, 0, 0, 10)
	stale := nodeN(c, 1, 0, 10)
	stale.ReportedAt = c.Now().Add(-2 * time.Second)
	mod := func(n Node, f func(*Node)) Node { f(&n); return n }
	for _, tt := range []struct {
		name     string
		nodes    []Node
		avoid    netip.AddrPort
		noReport bool
	}{
		{"no node", nil, netip.AddrPort{}, true},
		{"every report stale", []Node{stale}, netip.AddrPort{}, true},
		{"starting", []Node{mod(fresh, func(n *Node) { n.Starting = true })}, netip.AddrPort{}, true},
		{"starting and stale", []Node{mod(fresh, func(n *Node) { n.Starting = true }), stale}, netip.AddrPort{}, true},
		{"full", []Node{mod(fresh, func(n *Node) { n.Sessions = 10 }), stale}, netip.AddrPort{}, false},
		{"draining", []Node{mod(fresh, func(n *Node) { n.Draining = true })}, netip.AddrPort{}, false},
		{"no capacity", []Node{mod(fresh, func(n *Node) { n.Capacity = 0 })}, netip.AddrPort{}, false},
		{"suspect", []Node{mod(fresh, func(n *Node) { n.Suspect = true })}, netip.AddrPort{}, false},
		{"only the lost server", []Node{fresh}, fresh.Addr, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAssigner(Config{StaleAfter: time.Second}, c, 1, tt.nodes)
			_, err := a.Pick(sid(1), tt.avoid)
			if !errors.Is(err, ErrNoServer) || errors.Is(err, ErrNoReport) != tt.noReport {
				t.Errorf("Pick = %v; want ErrNoServer, ErrNoReport %v", err, tt.noReport)
			}
		})
	}
}
