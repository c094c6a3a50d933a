package stats

import (
	"slices"
	"testing"
	"time"
)

// TestPercentile checks the nearest rank on odd and even counts, the
// extremes, and that the input is left unsorted.
func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var ds []time.Duration
		for _, n := range ns {
			ds = append(ds, time.Duration(n)*time.Millisecond)
		}
		return ds
	}
	tests := []struct {
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{ms(5), 0.5, 5 * time.Millisecond},
		{ms(3, 1, 2), 0.5, 2 * time.Millisecond},
		{ms(4, 1, 3, 2), 0.5, 2 * time.Millisecond},
		{ms(4, 1, 3, 2), 1, 4 * time.Millisecond},
		{ms(4, 1, 3, 2), 0, 1 * time.Millisecond},
		{ms(10, 20, 30, 40, 50, 60, 70, 80, 90, 100), 0.9, 90 * time.Millisecond},
	}
	for _, tt := range tests {
		in := slices.Clone(tt.in)
		if got := Percentile(in, tt.q); got != tt.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", tt.in, tt.q, got, tt.want)
		}
		if !slices.Equal(in, tt.in) {
			t.Errorf("Percentile(%v, %v) reordered its input to %v", tt.in, tt.q, in)
		}
	}
}
