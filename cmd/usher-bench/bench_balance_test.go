//go:build linux

package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testBalanceModel is a short scenario for tests: the bench's model on n
// nodes with a shorter warm-up and measurement.
func testBalanceModel(n int, stale time.Duration) balanceModel {
	m := newBalanceModel(n, stale, true)
	m.Warmup, m.Measure = 20*time.Second, 20*time.Second
	return m
}

// balancePolicyNamed returns the policy with the given name.
func balancePolicyNamed(t *testing.T, name string) balancePolicy {
	t.Helper()
	for _, p := range balancePolicies {
		if p.name == name {
			return p
		}
	}
	t.Fatalf("no balance policy %q", name)
	return balancePolicy{}
}

// TestBalanceDeterministic checks that a seed fixes a run completely, and
// that another seed gives another run.
func TestBalanceDeterministic(t *testing.T) {
	m := testBalanceModel(10, time.Second)
	for _, p := range balancePolicies {
		t.Run(p.name, func(t *testing.T) {
			a, b := simulateBalance(m, p, 7), simulateBalance(m, p, 7)
			if a != b {
				t.Fatalf("same seed, different runs:\n%+v\n%+v", a, b)
			}
			if c := simulateBalance(m, p, 8); c == a {
				t.Fatalf("seeds 7 and 8 gave the same run %+v", a)
			}
			if a.arrivals < int(0.9*m.Rate*float64(m.Nodes)*m.Measure.Seconds()) {
				t.Errorf("only %d arrivals measured, want about %.0f", a.arrivals, m.Rate*float64(m.Nodes)*m.Measure.Seconds())
			}
			if a.rejected+a.unplaced != 0 {
				t.Errorf("%d rejected, %d unplaced: the farm should never fill", a.rejected, a.unplaced)
			}
		})
	}
}

// TestBalanceSanity checks properties the simulation must show if it
// models what it claims to.
func TestBalanceSanity(t *testing.T) {
	ll, rr, rnd, ct := balancePolicyNamed(t, "least-loaded"), balancePolicyNamed(t, "round-robin"),
		balancePolicyNamed(t, "random"), balancePolicyNamed(t, "coturn")
	for _, seed := range []uint64{1, 2} {
		m := testBalanceModel(10, time.Second)
		fresh := testBalanceModel(10, 0)
		runs := map[string]balanceRun{
			"least-loaded": simulateBalance(m, ll, seed), "least-loaded, fresh": simulateBalance(fresh, ll, seed),
			"round-robin": simulateBalance(m, rr, seed), "random": simulateBalance(m, rnd, seed), "coturn": simulateBalance(m, ct, seed),
		}
		for name, r := range runs {
			t.Logf("seed %d %-20s max/mean avg %.3f worst %.3f, window share max %.3f p99 %.3f", seed, name, r.avgRatio, r.worstRatio, r.maxShare, r.p99Share)
		}
		cases := []struct {
			what string
			ok   bool
		}{
			// Heavy tails unbalance a load-blind policy; least-loaded corrects.
			{"coturn's worst max/mean exceeds least-loaded's", runs["coturn"].worstRatio > runs["least-loaded"].worstRatio},
			{"random's worst max/mean exceeds least-loaded's", runs["random"].worstRatio > runs["least-loaded"].worstRatio},
			{"least-loaded with fresh reports keeps max/mean within 1.05", runs["least-loaded, fresh"].worstRatio <= balanceMaxMeanGoal},
			{"least-loaded with 1 s stale reports keeps max/mean within 1.05", runs["least-loaded"].worstRatio <= balanceMaxMeanGoal},
			// Round-robin gives each node one of every N picks: a window of k
			// picks gives a node at most ceil(k/N), which is at most 2/N of
			// the window for windows of N picks or more.
			{"round-robin's window share is within 2/N", runs["round-robin"].maxShare <= 2.0/10},
			{"random's window share exceeds round-robin's", runs["random"].maxShare > runs["round-robin"].maxShare},
			{"every measure is at least its ideal", runs["least-loaded"].avgRatio >= 1 && runs["least-loaded"].maxShare >= 0.1},
		}
		for _, c := range cases {
			if !c.ok {
				t.Errorf("seed %d: want %s", seed, c.what)
			}
		}
	}
}

// TestBalanceQueue checks the event queue's order: by time, then by
// scheduling order.
func TestBalanceQueue(t *testing.T) {
	var q balanceQueue
	at := []int64{5, 1, 3, 1, 9, 0, 3}
	for i, a := range at {
		q.push(balanceEvent{at: a, node: int32(i)})
	}
	want := []int32{5, 1, 3, 2, 6, 0, 4}
	for _, w := range want {
		if e := q.pop(); e.node != w {
			t.Fatalf("popped node %d at %d, want node %d", e.node, e.at, w)
		}
	}
	if len(q.ev) != 0 {
		t.Fatalf("%d events left", len(q.ev))
	}
}

// TestBenchBalanceQuick runs part 4 as benchBalance does, shortened to
// one seed of 5 s after a 5 s warm-up, with 10 s sessions so that the farm
// starts with fewer of them, to stay quick under the race detector; and
// checks the section and plots it produces.
func TestBenchBalanceQuick(t *testing.T) {
	f, err := runBalance(context.Background(), benchOpts{quick: true, log: io.Discard}, 1, func(n int, stale time.Duration) balanceModel {
		m := newBalanceModel(n, stale, true)
		m.Warmup, m.Measure, m.MeanLen = 5*time.Second, 5*time.Second, 10*time.Second
		return m
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := len(balanceNodes) * (2*len(balanceStale) + 3); len(f.Cases) != want {
		t.Errorf("%d cases, want %d", len(f.Cases), want)
	}
	dir := t.TempDir()
	files, err := f.plot(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Size() == 0 {
			t.Errorf("plot %s: %v", name, err)
		}
	}
	var b strings.Builder
	f.write(&b, dir)
	s := b.String()
	for _, want := range []string{"## 4. Balance quality", "| N | staleness | worst max/mean", "| 50 | 2s | least-loaded |", "| 10 | — | coturn |", "balance_share.png"} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q", want)
		}
	}
	if !strings.Contains(s, "met (margin") && !strings.Contains(s, "**not met**") {
		t.Error("section has no goal verdicts")
	}
	if _, err := benchBalance(canceledContext(), benchOpts{quick: true}); err == nil {
		t.Error("a canceled context did not stop the run")
	}
}

func canceledContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
