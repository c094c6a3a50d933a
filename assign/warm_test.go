package assign

import (
	"testing"
	"time"
)

func TestWarmRule(t *testing.T) {
	const stale = 10 * time.Second
	before := -time.Second // a report produced before New ran
	tests := []struct {
		name      string
		cfg       Config
		reports   [][3]time.Duration // per SetView: each node's ReportedAt relative to New
		suspect   bool               // node 0 is suspect
		emptyView bool               // install an empty view at the end
		picks     int                // picks after the views
		wantWarm  bool
	}{
		{name: "new", wantWarm: false},
		{name: "empty view", emptyView: true, wantWarm: false},
		{name: "old reports", reports: [][3]time.Duration{{before, before, before}}, wantWarm: false},
		{name: "one old report", reports: [][3]time.Duration{{0, time.Millisecond, before}}, wantWarm: false},
		{name: "all reports since New", reports: [][3]time.Duration{{before, before, before}, {0, 0, time.Second}}, wantWarm: true},
		{name: "stays warm", reports: [][3]time.Duration{{0, 0, 0}, {before, before, before}}, wantWarm: true},
		{name: "suspect node ignored", suspect: true, reports: [][3]time.Duration{{before, 0, 0}}, wantWarm: true},
		{name: "only stale nodes", cfg: Config{StaleAfter: stale}, reports: [][3]time.Duration{{-stale - 1, -stale - 1, -stale - 1}}, wantWarm: false},
		{name: "stale node ignored", cfg: Config{StaleAfter: stale}, reports: [][3]time.Duration{{-stale - 1, 0, 0}}, wantWarm: true},
		{name: "stale after New not stale", cfg: Config{StaleAfter: stale}, reports: [][3]time.Duration{{-stale, 0, 0}}, wantWarm: false},
		{name: "old reports and picks", reports: [][3]time.Duration{{before, before, before}}, picks: 50, wantWarm: false},
		{name: "ColdPicks not reached", cfg: Config{ColdPicks: 5}, reports: [][3]time.Duration{{before, before, before}}, picks: 4, wantWarm: false},
		{name: "ColdPicks reached", cfg: Config{ColdPicks: 5}, reports: [][3]time.Duration{{before, before, before}}, picks: 5, wantWarm: true},
		{name: "startWarm", cfg: Config{startWarm: true}, wantWarm: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeClock()
			a := New(tt.cfg, c.Now, newRand(1))
			born := c.Now()
			for _, rep := range tt.reports {
				nodes := equalNodes(c, 3, 1000)
				for i := range nodes {
					nodes[i].ReportedAt = born.Add(rep[i])
				}
				nodes[0].Suspect = tt.suspect
				a.SetView(NewView(nodes))
			}
			for range tt.picks {
				if _, err := a.Pick(sid(0), none); err != nil {
					t.Fatal(err)
				}
			}
			if tt.emptyView {
				a.SetView(NewView(nil))
			}
			if got := a.Warm(); got != tt.wantWarm {
				t.Errorf("Warm() = %v, want %v", got, tt.wantWarm)
			}
		})
	}
}

// TestColdLeastLoadedUsesP2C: while cold, least-loaded spreads picks like
// p2c (the second least loaded node gets some); once warm it takes only the
// least loaded node.
func TestColdLeastLoadedUsesP2C(t *testing.T) {
	c := newFakeClock()
	nodes := []Node{nodeN(c, 0, 10, 100), nodeN(c, 1, 20, 100), nodeN(c, 2, 30, 100)}
	for i := range nodes {
		nodes[i].ReportedAt = c.Now().Add(-time.Second) // from before the takeover
	}
	a := New(Config{noLedger: true, Spread: -1}, c.Now, newRand(1))
	a.SetView(NewView(nodes))
	cold := countIDs(t, a, 300)
	if cold["n01"] == 0 || cold["n02"] != 0 {
		t.Errorf("cold picks %v: want p2c's spread (n01 some, n02 never)", cold)
	}
	for i := range nodes {
		nodes[i].ReportedAt = c.Now()
	}
	a.SetView(NewView(nodes))
	warm := countIDs(t, a, 300)
	if warm["n00"] != 300 {
		t.Errorf("warm picks %v: want all on n00", warm)
	}
}

// TestReportsBeforeNewDoNotReconcile: Accepted growth in reports produced
// before the Assigner existed belongs to a previous leader's clients and
// must not eat this Assigner's ledger entries.
func TestReportsBeforeNewDoNotReconcile(t *testing.T) {
	c := newFakeClock()
	a := New(Config{}, c.Now, newRand(1))
	born := c.Now()
	report := func(at time.Duration, accepted uint64) *View {
		n := nodeN(c, 0, int(accepted), 1000)
		n.Accepted = accepted
		n.ReportedAt = born.Add(at)
		return NewView([]Node{n})
	}
	a.SetView(report(-2*time.Second, 100))
	pickIDs(t, a, 3)
	a.SetView(report(-time.Second, 150)) // the predecessor's clients
	if got := a.Pending("n00"); got != 3 {
		t.Fatalf("after a pre-New report: Pending = %d, want 3", got)
	}
	c.Advance(2 * time.Second)
	a.SetView(report(time.Second, 152)) // two of ours arrived
	if got := a.Pending("n00"); got != 1 {
		t.Fatalf("after a post-New report: Pending = %d, want 1", got)
	}
}
