package testutil

import (
	"reflect"
	"testing"
	"time"
)

func TestOverlaps(t *testing.T) {
	s := time.Second
	iv := func(h string, from, to time.Duration) Interval { return Interval{Holder: h, From: from, To: to} }
	tests := []struct {
		name string
		in   []Interval
		want [][2]Interval
	}{
		{name: "empty", in: nil, want: nil},
		{name: "single open", in: []Interval{iv("a", s, 0)}, want: nil},
		{name: "clean handover with gap", in: []Interval{iv("a", 1*s, 2*s), iv("b", 3*s, 0)}, want: nil},
		{name: "touching ends are not an overlap", in: []Interval{iv("a", 1*s, 2*s), iv("b", 2*s, 3*s)}, want: nil},
		{
			name: "one instant of overlap",
			in:   []Interval{iv("a", 1*s, 2*s+1), iv("b", 2*s, 3*s)},
			want: [][2]Interval{{iv("a", 1*s, 2*s+1), iv("b", 2*s, 3*s)}},
		},
		{
			name: "open interval overlaps a later one",
			in:   []Interval{iv("a", 1*s, 0), iv("b", 5*s, 6*s)},
			want: [][2]Interval{{iv("a", 1*s, 0), iv("b", 5*s, 6*s)}},
		},
		{
			name: "two open intervals",
			in:   []Interval{iv("b", 9*s, 0), iv("a", 1*s, 0)},
			want: [][2]Interval{{iv("b", 9*s, 0), iv("a", 1*s, 0)}},
		},
		{name: "open interval starting after a closed one", in: []Interval{iv("a", 1*s, 2*s), iv("b", 2*s, 0)}, want: nil},
		{name: "same holder overlapping itself", in: []Interval{iv("a", 1*s, 3*s), iv("a", 2*s, 0)}, want: nil},
		{
			name: "containment",
			in:   []Interval{iv("a", 1*s, 10*s), iv("b", 4*s, 5*s)},
			want: [][2]Interval{{iv("a", 1*s, 10*s), iv("b", 4*s, 5*s)}},
		},
		{name: "empty interval never overlaps", in: []Interval{iv("a", 1*s, 10*s), iv("b", 5*s, 5*s), iv("c", 7*s, 6*s)}, want: nil},
		{
			name: "unsorted input, every offending pair once in input order",
			in:   []Interval{iv("c", 5*s, 0), iv("a", 1*s, 3*s), iv("b", 2*s, 6*s)},
			want: [][2]Interval{
				{iv("c", 5*s, 0), iv("b", 2*s, 6*s)},
				{iv("a", 1*s, 3*s), iv("b", 2*s, 6*s)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Overlaps(tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Overlaps(%v)\n got  %v\n want %v", tt.in, got, tt.want)
			}
		})
	}
}
