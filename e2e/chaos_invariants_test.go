//go:build linux

package e2e

import (
	"testing"
	"time"
)

// The invariant checks of the chaos suite must be able to fail: these
// tables feed them histories with and without violations (the checks on
// sightings are tested in sighting_test.go).

func TestHoldIntervals(t *testing.T) {
	s := func(n int) time.Duration { return time.Duration(n) * time.Second }
	ev := func(kind string, at int) vipEventLine {
		return vipEventLine{Node: "h1", Event: kind, MonoNs: int64(s(at))}
	}
	tests := []struct {
		name  string
		evs   []vipEventLine
		lives []life
		want  []Interval
	}{
		{"acquire and release", []vipEventLine{ev("acquire", 1), ev("release", 3)}, []life{{from: 0}},
			[]Interval{{Holder: "h1", From: s(1), To: s(3)}}},
		{"still holding", []vipEventLine{ev("acquire", 1)}, []life{{from: 0}},
			[]Interval{{Holder: "h1", From: s(1), To: 0}}},
		{"killed while holding", []vipEventLine{ev("acquire", 1)}, []life{{from: 0, to: s(4)}},
			[]Interval{{Holder: "h1", From: s(1), To: s(4)}}},
		{"killed holding, restarted, held again",
			[]vipEventLine{ev("acquire", 1), ev("acquire", 6), ev("release", 7)},
			[]life{{from: 0, to: s(4)}, {from: s(5)}},
			[]Interval{{Holder: "h1", From: s(1), To: s(4)}, {Holder: "h1", From: s(6), To: s(7)}}},
		{"stray release", []vipEventLine{ev("release", 2)}, []life{{from: 0}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := holdIntervals("h1", tt.evs, tt.lives)
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("interval %d: got %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
	// Two nodes' histories that overlap must be caught by Overlaps.
	a := holdIntervals("h1", []vipEventLine{ev("acquire", 1)}, []life{{from: 0, to: s(5)}})
	b := holdIntervals("h2", []vipEventLine{{Node: "h2", Event: "acquire", MonoNs: int64(s(4))}}, []life{{from: 0}})
	if got := Overlaps(append(a, b...)); len(got) != 1 {
		t.Errorf("Overlaps(%v, %v) = %v, want one overlap", a, b, got)
	}
}
