package assign

import (
	"fmt"
	"net/netip"
	"testing"
)

var none netip.AddrPort

// pickIDs makes n picks with sessions sid(0..n-1) and returns the IDs.
func pickIDs(t *testing.T, a *Assigner, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		nd, err := a.Pick(sid(uint64(i)), none)
		if err != nil {
			t.Fatalf("pick %d: %v", i, err)
		}
		ids[i] = nd.ID
	}
	return ids
}

// countIDs makes n picks and counts them per node ID.
func countIDs(t *testing.T, a *Assigner, n int) map[string]int {
	t.Helper()
	m := map[string]int{}
	for _, id := range pickIDs(t, a, n) {
		m[id]++
	}
	return m
}

func TestPoliciesDeterministicWithSeed(t *testing.T) {
	for _, p := range allPolicies {
		t.Run(p.String(), func(t *testing.T) {
			run := func() []string {
				c := newFakeClock()
				nodes := []Node{nodeN(c, 0, 10, 100), nodeN(c, 1, 20, 100), nodeN(c, 2, 10, 50), nodeN(c, 3, 0, 100)}
				a := newTestAssigner(Config{Policy: p}, c, 42, nodes)
				return pickIDs(t, a, 200)
			}
			x, y := run(), run()
			for i := range x {
				if x[i] != y[i] {
					t.Fatalf("pick %d differs between identical runs: %s vs %s", i, x[i], y[i])
				}
			}
		})
	}
}

func TestLeastLoadedFillsTheGaps(t *testing.T) {
	c := newFakeClock()
	a := newTestAssigner(Config{Spread: -1}, c, 1, []Node{nodeN(c, 0, 0, 100), nodeN(c, 1, 5, 100), nodeN(c, 2, 10, 100)})
	got := countIDs(t, a, 15)
	// Sessions 0,5,10 plus 15 picks counted in the ledger: 10,10,10.
	want := map[string]int{"n00": 10, "n01": 5}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("picks = %v, want %v", got, want)
	}
	for _, id := range []string{"n00", "n01", "n02"} {
		nd, _ := a.View().Lookup(id)
		if used := nd.Sessions + a.Pending(id); used != 10 {
			t.Errorf("%s: sessions+pending = %d, want 10", id, used)
		}
	}
}

func TestLeastLoadedUsesRatioNotCount(t *testing.T) {
	c := newFakeClock()
	// 50/100 = 0.5 versus 90/200 = 0.45: the bigger node is less loaded.
	a := newTestAssigner(Config{noLedger: true, Spread: -1}, c, 1, []Node{nodeN(c, 0, 50, 100), nodeN(c, 1, 90, 200)})
	for _, id := range pickIDs(t, a, 20) {
		if id != "n01" {
			t.Fatalf("picked %s, want n01 (load 0.45 < 0.5)", id)
		}
	}
}

func TestLeastLoadedBreaksTiesAtRandom(t *testing.T) {
	c := newFakeClock()
	nodes := []Node{nodeN(c, 0, 7, 100), nodeN(c, 1, 7, 100), nodeN(c, 2, 7, 100), nodeN(c, 3, 8, 100)}
	a := newTestAssigner(Config{noLedger: true, Spread: -1}, c, 3, nodes)
	got := countIDs(t, a, 3000)
	if got["n03"] != 0 {
		t.Errorf("the more loaded node was picked %d times", got["n03"])
	}
	for _, id := range []string{"n00", "n01", "n02"} {
		if got[id] < 900 || got[id] > 1100 {
			t.Errorf("tied node %s picked %d of 3000 times, want about 1000", id, got[id])
		}
	}
}

func TestP2C(t *testing.T) {
	c := newFakeClock()
	nodes := []Node{nodeN(c, 0, 10, 100), nodeN(c, 1, 20, 100), nodeN(c, 2, 30, 100)}
	a := newTestAssigner(Config{Policy: P2C, noLedger: true}, c, 5, nodes)
	got := countIDs(t, a, 3000)
	// Of the three pairs, n00 wins two and n01 one; n02 never wins.
	if got["n02"] != 0 {
		t.Errorf("the most loaded node won %d times", got["n02"])
	}
	if got["n00"] < 1850 || got["n00"] > 2150 {
		t.Errorf("least loaded picked %d of 3000 times, want about 2000", got["n00"])
	}

	// One eligible node: p2c has nothing to compare and returns it.
	a.SetView(NewView([]Node{nodeN(c, 4, 50, 100), {ID: "n05", Addr: addr(5), Draining: true, Capacity: 100}}))
	for _, id := range pickIDs(t, a, 10) {
		if id != "n04" {
			t.Fatalf("picked %s, want the only eligible n04", id)
		}
	}
}

func TestRoundRobinCursorSurvivesViews(t *testing.T) {
	c := newFakeClock()
	mk := func(ids ...string) *View {
		ns := make([]Node, len(ids))
		for i, id := range ids {
			ns[i] = Node{ID: id, Addr: addr(int(id[0])), Capacity: 100, ReportedAt: c.Now()}
		}
		return NewView(ns)
	}
	a := newTestAssigner(Config{Policy: RoundRobin, noLedger: true}, c, 1, nil)
	steps := []struct {
		view *View // installed before the picks, if not nil
		want string
	}{
		{mk("a", "c", "e"), "a c e a c"},
		{mk("a", "b", "c", "d", "e"), "d e a b"}, // cursor was c
		{mk("a", "b", "c"), "c a"},               // cursor was b
		{mk("b", "c"), "b c b"},                  // cursor a left the view
	}
	for i, s := range steps {
		a.SetView(s.view)
		var got []string
		for range len(s.want)/2 + 1 {
			nd, err := a.Pick(SessionID{}, none)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, nd.ID)
		}
		if g := fmt.Sprint(got); g != "["+s.want+"]" {
			t.Errorf("step %d: picks %s, want [%s]", i, g, s.want)
		}
	}

	// Ineligible nodes are skipped without disturbing the order.
	v := mk("a", "b", "c")
	ns := v.Nodes()
	nodes := []Node{ns[0], ns[1], ns[2]}
	nodes[1].Draining = true
	a.SetView(NewView(nodes))
	got := pickIDs(t, a, 4)
	if fmt.Sprint(got) != "[c a c a]" { // cursor was b
		t.Errorf("with b draining: %v", got)
	}
}

func TestRandomIsUniform(t *testing.T) {
	c := newFakeClock()
	nodes := []Node{nodeN(c, 0, 0, 100), nodeN(c, 1, 90, 100), nodeN(c, 2, 50, 1000), nodeN(c, 3, 10, 10000), nodeN(c, 4, 0, 1)}
	a := newTestAssigner(Config{Policy: Random, noLedger: true}, c, 11, nodes)
	got := countIDs(t, a, 10000)
	for _, n := range nodes {
		if got[n.ID] < 1800 || got[n.ID] > 2200 {
			t.Errorf("%s picked %d of 10000 times, want about 2000 regardless of load", n.ID, got[n.ID])
		}
	}
}

// A report that shows ten departures at once from one node of ten: strict
// least-loaded sends the next ten sessions all to that node; the band
// spreads them over every node within Spread of the mean.
func TestLeastLoadedBandSpreadsAfterDepartures(t *testing.T) {
	for _, tt := range []struct {
		name         string
		spread       int
		minN3, maxN3 int // picks of n03, the node the report emptied
	}{
		{"strict", -1, 10, 10},
		{"band", 0, 1, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeClock()
			var nodes []Node
			for i := range 10 {
				sessions := 100
				if i == 3 {
					sessions = 90
				}
				nodes = append(nodes, nodeN(c, i, sessions, 1000))
			}
			a := newTestAssigner(Config{Spread: tt.spread}, c, 1, nodes)
			got := countIDs(t, a, 10)
			if n := got["n03"]; n < tt.minN3 || n > tt.maxN3 {
				t.Errorf("picks %v: n03 got %d, want %d to %d", got, n, tt.minN3, tt.maxN3)
			}
		})
	}
}

// The band never gives a session to a node above the mean by more than
// Spread sessions (scaled by capacity), whatever the cursor says.
func TestLeastLoadedBandExcludesOverloaded(t *testing.T) {
	tests := []struct {
		name  string
		nodes func(c *fakeClock) []Node
		never string
	}{
		{"equal capacity", func(c *fakeClock) []Node {
			return []Node{nodeN(c, 0, 0, 100), nodeN(c, 1, 0, 100), nodeN(c, 2, 50, 100)}
		}, "n02"}, // mean 16.7, band up to 21.7
		{"by ratio", func(c *fakeClock) []Node {
			return []Node{nodeN(c, 0, 100, 1000), nodeN(c, 1, 100, 1000), nodeN(c, 2, 100, 200)}
		}, "n02"}, // n02 is half full, the mean 300/2200
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeClock()
			a := newTestAssigner(Config{noLedger: true}, c, 1, tt.nodes(c))
			for _, id := range pickIDs(t, a, 50) {
				if id == tt.never {
					t.Fatalf("picked %s, which is above the band", id)
				}
			}
		})
	}
}
