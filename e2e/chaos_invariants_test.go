//go:build linux

package e2e

import (
	"testing"
	"time"
)

// The invariant checks of the chaos suite must be able to fail: these
// tables feed them histories with and without violations.

func TestTermInterleavings(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	ans := func(sent, recv int, term uint64) answer {
		return answer{sent: ms(sent), recv: ms(recv), term: term}
	}
	tests := []struct {
		name      string
		answers   []answer
		bad, late int
	}{
		{"one term", []answer{ans(0, 1, 3), ans(5, 6, 3)}, 0, 0},
		{"clean handover", []answer{ans(0, 1, 3), ans(10, 11, 4), ans(20, 21, 4)}, 0, 0},
		{"old term answers a probe sent after the new term answered",
			[]answer{ans(0, 1, 3), ans(10, 11, 4), ans(20, 21, 3)}, 1, 0},
		{"two leaders alternate",
			[]answer{ans(0, 1, 4), ans(5, 6, 5), ans(10, 11, 4), ans(15, 16, 5), ans(20, 21, 4)}, 2, 0},
		{"old answer delivered late", []answer{ans(0, 1, 3), ans(10, 11, 4), ans(5, 30, 3)}, 0, 1},
		{"answers out of order in the slice", []answer{ans(20, 21, 3), ans(10, 11, 4)}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad, late := termInterleavings(tt.answers)
			if len(bad) != tt.bad || late != tt.late {
				t.Errorf("got %d violations %v and %d late, want %d and %d", len(bad), bad, late, tt.bad, tt.late)
			}
		})
	}
}

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
			[]Interval{{"h1", s(1), s(3)}}},
		{"still holding", []vipEventLine{ev("acquire", 1)}, []life{{from: 0}},
			[]Interval{{"h1", s(1), 0}}},
		{"killed while holding", []vipEventLine{ev("acquire", 1)}, []life{{from: 0, to: s(4)}},
			[]Interval{{"h1", s(1), s(4)}}},
		{"killed holding, restarted, held again",
			[]vipEventLine{ev("acquire", 1), ev("acquire", 6), ev("release", 7)},
			[]life{{from: 0, to: s(4)}, {from: s(5)}},
			[]Interval{{"h1", s(1), s(4)}, {"h1", s(6), s(7)}}},
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
