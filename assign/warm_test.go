package assign

import (
	"testing"
)

func TestWarmRule(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		views     int // SetView calls
		picks     int // picks after the first view
		wantWarm  bool
		wantAfter string
	}{
		{name: "new", views: 0, wantWarm: false},
		{name: "one view", views: 1, wantWarm: false},
		{name: "two views", views: 2, wantWarm: true},
		{name: "one view and picks", views: 1, picks: 50, wantWarm: false},
		{name: "WarmViews 3 after 2", cfg: Config{WarmViews: 3}, views: 2, wantWarm: false},
		{name: "WarmViews 3 after 3", cfg: Config{WarmViews: 3}, views: 3, wantWarm: true},
		{name: "negative WarmViews", cfg: Config{WarmViews: -1}, views: 0, wantWarm: true},
		{name: "ColdPicks not reached", cfg: Config{WarmViews: 10, ColdPicks: 5}, views: 1, picks: 4, wantWarm: false},
		{name: "ColdPicks reached", cfg: Config{WarmViews: 10, ColdPicks: 5}, views: 1, picks: 5, wantWarm: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeClock()
			a := New(tt.cfg, c.Now, newRand(1))
			v := NewView(equalNodes(c, 3, 1000))
			for range tt.views {
				a.SetView(v)
			}
			for range tt.picks {
				if _, err := a.Pick(sid(0), none); err != nil {
					t.Fatal(err)
				}
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
	a := New(Config{NoLedger: true}, c.Now, newRand(1))
	a.SetView(NewView(nodes))
	cold := countIDs(t, a, 300)
	if cold["n01"] == 0 || cold["n02"] != 0 {
		t.Errorf("cold picks %v: want p2c's spread (n01 some, n02 never)", cold)
	}
	a.SetView(NewView(nodes))
	warm := countIDs(t, a, 300)
	if warm["n00"] != 300 {
		t.Errorf("warm picks %v: want all on n00", warm)
	}
}
