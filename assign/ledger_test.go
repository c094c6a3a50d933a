package assign

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestLedgerRingMatchesModel drives the ring buffer with random pushes,
// drops and expiries and compares it with a plain slice.
func TestLedgerRingMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var l ledger
	var model []int64
	now := base
	for step := range 20000 {
		switch op := rng.IntN(10); {
		case op < 6:
			now = now.Add(time.Duration(rng.IntN(3)) * time.Millisecond)
			l.push(now.UnixNano(), 1<<30)
			model = append(model, now.UnixNano())
		case op < 8:
			k := uint64(rng.IntN(4))
			l.dropOldest(k)
			model = model[min(int(k), len(model)):]
		default:
			cutoff := now.Add(-time.Duration(rng.IntN(40)) * time.Millisecond).UnixNano()
			l.expire(cutoff)
			for len(model) > 0 && model[0] < cutoff {
				model = model[1:]
			}
		}
		if l.len() != len(model) {
			t.Fatalf("step %d: len %d, model %d", step, l.len(), len(model))
		}
		for i, want := range model {
			if got := l.buf[(l.head+i)%len(l.buf)]; got != want {
				t.Fatalf("step %d: entry %d = %v, want %v", step, i, got, want)
			}
		}
	}
}

// accept returns the nodes with node i's report moved on by k accepted
// sessions, produced at the clock's current time.
func accept(c *fakeClock, nodes []Node, i, k int) []Node {
	ns := append([]Node(nil), nodes...)
	ns[i].Sessions += k
	ns[i].Accepted += uint64(k)
	ns[i].ReportedAt = c.Now()
	return ns
}

func TestLedgerReconcilesFromAccepted(t *testing.T) {
	const ttl = 10 * time.Second
	c := newFakeClock()
	nodes := []Node{nodeN(c, 0, 0, 100)}
	nodes[0].Accepted = 1000 // an old node: only growth matters
	a := newTestAssigner(Config{PendingTTL: ttl}, c, 1, nodes)
	t0 := c.Now()
	for range 4 { // entries at t0, t0+1s, t0+2s, t0+3s
		if _, err := a.Pick(sid(0), none); err != nil {
			t.Fatal(err)
		}
		c.Advance(time.Second)
	}
	if got := a.Pending("n00"); got != 4 {
		t.Fatalf("Pending = %d, want 4", got)
	}
	nodes = accept(c, nodes, 0, 2)
	a.SetView(NewView(nodes))
	if got := a.Pending("n00"); got != 2 {
		t.Fatalf("after 2 accepted: Pending = %d, want 2", got)
	}
	// The oldest two went: at t0+2s+ttl+1ns the entry from t0+2s expires
	// and the one from t0+3s remains. (Had the newest two gone, nothing
	// would remain.)
	c.t = t0.Add(2*time.Second + ttl + time.Nanosecond)
	if got := a.Pending("n00"); got != 1 {
		t.Fatalf("Pending = %d, want 1: reconciliation did not remove the oldest entries", got)
	}
	// The same report again changes nothing.
	a.SetView(NewView(nodes))
	if got := a.Pending("n00"); got != 1 {
		t.Fatalf("repeated report: Pending = %d, want 1", got)
	}
	// More accepted than pending (clients from elsewhere): empty, no underflow.
	nodes = accept(c, nodes, 0, 50)
	a.SetView(NewView(nodes))
	if got := a.Pending("n00"); got != 0 {
		t.Fatalf("Pending = %d, want 0", got)
	}
	if _, err := a.Pick(sid(0), none); err != nil || a.Pending("n00") != 1 {
		t.Fatalf("pick after emptying: %v, Pending %d", err, a.Pending("n00"))
	}
}

func TestLedgerExpiry(t *testing.T) {
	tests := []struct {
		name string
		ttl  time.Duration
		want time.Duration // effective TTL
	}{
		{"default", 0, DefaultPendingTTL},
		{"custom", 1500 * time.Millisecond, 1500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeClock()
			a := newTestAssigner(Config{PendingTTL: tt.ttl}, c, 1, []Node{nodeN(c, 0, 0, 100)})
			if _, err := a.Pick(sid(0), none); err != nil {
				t.Fatal(err)
			}
			c.Advance(tt.want)
			if got := a.Pending("n00"); got != 1 {
				t.Fatalf("exactly TTL old: Pending = %d, want 1", got)
			}
			c.Advance(time.Nanosecond)
			if got := a.Pending("n00"); got != 0 {
				t.Fatalf("older than TTL: Pending = %d, want 0", got)
			}
		})
	}
}

// TestExpiryFreesCapacity: a node full only because of pending entries is
// passed over for a busier one with room, and is the first choice again
// when its clients never show up and the entries expire.
func TestExpiryFreesCapacity(t *testing.T) {
	c := newFakeClock()
	empty := nodeN(c, 0, 0, 2)
	a := newTestAssigner(Config{PendingTTL: time.Second, Spread: -1}, c, 1, []Node{empty})
	pickIDs(t, a, 2)
	a.SetView(NewView([]Node{empty, nodeN(c, 1, 98, 100)}))
	if n, err := a.Pick(sid(0), none); err != nil || n.ID != "n01" {
		t.Fatalf("with n00 full of pending entries: Pick = %s, %v; want n01", n.ID, err)
	}
	c.Advance(time.Second + time.Nanosecond)
	if n, err := a.Pick(sid(0), none); err != nil || n.ID != "n00" {
		t.Fatalf("after the entries expired: Pick = %s, %v; want n00", n.ID, err)
	}
}

func TestLedgerDroppedWithNode(t *testing.T) {
	c := newFakeClock()
	nodes := []Node{nodeN(c, 0, 0, 100), nodeN(c, 1, 0, 100), nodeN(c, 2, 0, 100)}
	a := newTestAssigner(Config{Policy: RoundRobin}, c, 1, nodes)
	pickIDs(t, a, 9) // three entries each
	a.SetView(NewView([]Node{nodes[0], nodes[2]}))
	if a.Pending("n00") != 3 || a.Pending("n01") != 0 || a.Pending("n02") != 3 {
		t.Fatalf("after n01 left: pending %d %d %d, want 3 0 3", a.Pending("n00"), a.Pending("n01"), a.Pending("n02"))
	}
	// n01 comes back with a higher Accepted (it took its clients while
	// away): it starts with an empty ledger and that count as its baseline.
	back := nodes[1]
	back.Accepted, back.Sessions = 3, 3
	a.SetView(NewView([]Node{nodes[0], back, nodes[2]}))
	if got := a.Pending("n01"); got != 0 {
		t.Fatalf("returning node: Pending = %d, want 0", got)
	}
	a.Pick(sid(0), none) // round robin: after n02 comes n00
	a.Pick(sid(0), none) // n01
	back = accept(c, []Node{back}, 0, 0)[0]
	a.SetView(NewView([]Node{nodes[0], back, nodes[2]}))
	if got := a.Pending("n01"); got != 1 {
		t.Fatalf("returning node after a pick: Pending = %d, want 1", got)
	}
}

func TestLedgerNodeRestartAndStaleReports(t *testing.T) {
	c := newFakeClock()
	nodes := []Node{nodeN(c, 0, 40, 100)}
	nodes[0].Accepted = 100
	a := newTestAssigner(Config{}, c, 1, nodes)
	pickIDs(t, a, 5)
	c.Advance(time.Second)

	// An older report arriving late (lower Accepted, earlier ReportedAt)
	// must neither drop entries nor move the baseline.
	old := nodes[0]
	old.Accepted = 90
	old.ReportedAt = c.Now().Add(-time.Hour)
	a.SetView(NewView([]Node{old}))
	if got := a.Pending("n00"); got != 5 {
		t.Fatalf("out-of-order report: Pending = %d, want 5", got)
	}
	a.SetView(NewView(accept(c, nodes, 0, 1))) // growth of 1 from 100, not 11 from 90
	if got := a.Pending("n00"); got != 4 {
		t.Fatalf("after out-of-order report and 1 accepted: Pending = %d, want 4", got)
	}

	// A restarted node reports a small Accepted with a newer timestamp:
	// that whole count is growth.
	c.Advance(time.Second)
	restarted := nodeN(c, 0, 2, 100)
	restarted.Accepted = 2
	a.SetView(NewView([]Node{restarted}))
	if got := a.Pending("n00"); got != 2 {
		t.Fatalf("after restart with 2 accepted: Pending = %d, want 2", got)
	}
}

func TestNoLedgerRecordsNothing(t *testing.T) {
	c := newFakeClock()
	a := newTestAssigner(Config{noLedger: true}, c, 1, []Node{nodeN(c, 0, 0, 100)})
	pickIDs(t, a, 10)
	if got := a.Pending("n00"); got != 0 {
		t.Fatalf("noLedger: Pending = %d", got)
	}
}
