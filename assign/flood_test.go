package assign

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestFloodNeverRefuses is the ledger attack: a stranger makes picks as
// fast as it likes, none of whose clients ever arrives, on a farm whose
// reports show room. Whatever the picks book and whatever the policy, every
// pick still finds a server, and no node's ledger outgrows its bound.
func TestFloodNeverRefuses(t *testing.T) {
	farms := []struct {
		name  string
		nodes func(c *fakeClock) []Node
	}{
		{"idle", func(c *fakeClock) []Node { return equalNodes(c, 4, 100) }},
		{"one seat left", func(c *fakeClock) []Node {
			return []Node{nodeN(c, 0, 99, 100), nodeN(c, 1, 10, 10), nodeN(c, 2, 5, 5)}
		}},
		{"small and large", func(c *fakeClock) []Node {
			return []Node{nodeN(c, 0, 0, 1), nodeN(c, 1, 500, 1000), nodeN(c, 2, 3, 7)}
		}},
	}
	for _, farm := range farms {
		for _, book := range []Booking{BookSession, BookStock} {
			for _, p := range allPolicies {
				t.Run(fmt.Sprintf("%s/book=%d/%v", farm.name, book, p), func(t *testing.T) {
					c := newFakeClock()
					nodes := farm.nodes(c)
					a := newTestAssigner(Config{Policy: p}, c, 1, nodes)
					for i := range 20000 {
						if i%1000 == 0 {
							c.Advance(time.Millisecond) // well within the pending TTL
						}
						if _, _, err := a.PickFor(IPv4, sid(uint64(i)), none, nil, 0, book); err != nil {
							t.Fatalf("flood pick %d: %v", i, err)
						}
					}
					for _, n := range nodes {
						if got, most := a.Pending(n.ID), n.Capacity+a.stockCap(n.Capacity); got > most {
							t.Errorf("%s: %d pending entries, more than %d", n.ID, got, most)
						}
					}
					// The client that means it is still answered.
					if _, err := a.Pick(sid(1<<40), none); err != nil {
						t.Fatalf("after the flood: %v", err)
					}
				})
			}
		}
	}
}

// TestStockShareBounded: stock picks book at most a share of each node's
// capacity, so a flood of them leaves the rest for the clients that hold
// tickets, and a burst of those still spreads evenly.
func TestStockShareBounded(t *testing.T) {
	tests := []struct {
		share float64
		want  int // stock entries per node after the flood
	}{
		{0, 13}, // DefaultStockShare: ceil(100/8)
		{0.01, 1},
		{0.001, 1}, // at least one
		{0.5, 50},
		{-1, 0}, // stock books nothing
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.share), func(t *testing.T) {
			c := newFakeClock()
			a := newTestAssigner(Config{StockShare: tt.share, Spread: -1}, c, 1, equalNodes(c, 10, 100))
			for i := range 10000 {
				if _, _, err := a.PickFor(AnyFamily, sid(uint64(i)), none, nil, 0, BookStock); err != nil {
					t.Fatalf("stock pick %d: %v", i, err)
				}
			}
			for _, n := range a.View().Nodes() {
				if got := a.Pending(n.ID); got != tt.want {
					t.Fatalf("%s: %d stock entries, want %d", n.ID, got, tt.want)
				}
			}
			for id, k := range countIDs(t, a, 100) {
				if k != 10 {
					t.Errorf("burst of 100 after the flood: %s took %d, want 10", id, k)
				}
			}
		})
	}
}

// TestPendingStillSkews: pending entries steer the choice, both while some
// node has room counting them and once none has. A burst on an even farm
// spreads exactly evenly, and past the point where every node is full
// counting its pending entries, consecutive picks still go to different
// nodes rather than herd.
func TestPendingStillSkews(t *testing.T) {
	for _, spread := range []int{-1, 0} { // strict, and the default band
		t.Run(fmt.Sprintf("spread=%d", spread), func(t *testing.T) {
			c := newFakeClock()
			nodes := []Node{nodeN(c, 0, 5, 10), nodeN(c, 1, 5, 10), nodeN(c, 2, 5, 10)}
			a := newTestAssigner(Config{Spread: spread}, c, 1, nodes)
			for id, k := range countIDs(t, a, 15) {
				if k != 5 {
					t.Fatalf("burst of 15: %s took %d, want 5", id, k)
				}
			}
			// Every node is now full counting its pending entries.
			seen := map[string]bool{}
			for i, id := range pickIDs(t, a, 3) {
				if seen[id] {
					t.Fatalf("pick %d past the ledger's fill went to %s again", 15+i, id)
				}
				seen[id] = true
			}
		})
	}
}

// TestFullByReportRefuses: only the reports can close the farm. When every
// node's own report shows it full, pending entries or not, Pick fails.
func TestFullByReportRefuses(t *testing.T) {
	c := newFakeClock()
	a := newTestAssigner(Config{}, c, 1, []Node{nodeN(c, 0, 10, 10), nodeN(c, 1, 3, 3)})
	if n, err := a.Pick(sid(1), none); !errors.Is(err, ErrNoServer) {
		t.Fatalf("farm full by its reports: Pick = %s, %v; want ErrNoServer", n.ID, err)
	}
}

// TestReconcileTakesOldestOfBoth: a report's Accepted growth removes the
// oldest pending entries, whether session or stock picks made them.
func TestReconcileTakesOldestOfBoth(t *testing.T) {
	c := newFakeClock()
	nodes := []Node{nodeN(c, 0, 0, 100)}
	a := newTestAssigner(Config{PendingTTL: 10 * time.Second}, c, 1, nodes)
	t0 := c.Now()
	for _, b := range []Booking{BookStock, BookSession, BookStock, BookSession} {
		if _, _, err := a.PickFor(AnyFamily, sid(0), none, nil, 0, b); err != nil {
			t.Fatal(err)
		}
		c.Advance(time.Second)
	}
	a.SetView(NewView(accept(c, nodes, 0, 3))) // the entries of t0 to t0+2s
	if got := a.Pending("n00"); got != 1 {
		t.Fatalf("after 3 accepted: Pending = %d, want 1", got)
	}
	// The one left is the newest, from t0+3s: alive just past the TTL of
	// the one before it, gone just past its own.
	c.t = t0.Add(2*time.Second + 10*time.Second + time.Nanosecond)
	if got := a.Pending("n00"); got != 1 {
		t.Fatalf("past the TTL of the entry from t0+2s: Pending = %d, want 1", got)
	}
	c.t = t0.Add(3*time.Second + 10*time.Second + time.Nanosecond)
	if got := a.Pending("n00"); got != 0 {
		t.Fatalf("past the TTL of the entry from t0+3s: Pending = %d, want 0", got)
	}
}
