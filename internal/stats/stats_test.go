package stats

import (
	"math"
	"slices"
	"testing"
	"time"
)

// TestPercentile checks the nearest rank on odd and even counts, whole and
// fractional percentages, the extremes, and that the input is left as it
// was.
func TestPercentile(t *testing.T) {
	ms := time.Millisecond
	ten := []time.Duration{10 * ms, 1 * ms, 9 * ms, 2 * ms, 8 * ms, 3 * ms, 7 * ms, 4 * ms, 6 * ms, 5 * ms}
	tests := []struct {
		name string
		d    []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single", []time.Duration{7 * ms}, 99, 7 * ms},
		{"p0 is min", ten, 0, 1 * ms},
		{"negative is min", ten, -5, 1 * ms},
		{"NaN is min", ten, math.NaN(), 1 * ms},
		{"p10 of ten", ten, 10, 1 * ms},
		{"just above p10", ten, 10.1, 2 * ms},
		{"median of ten", ten, 50, 5 * ms},
		{"p70 exact rank, no float drift", ten, 70, 7 * ms},
		{"p90 of ten", ten, 90, 9 * ms},
		{"p99 of ten", ten, 99, 10 * ms},
		{"p100 is max", ten, 100, 10 * ms},
		{"above 100 is max", ten, 250, 10 * ms},
		{"median of odd count", []time.Duration{3 * ms, 1 * ms, 2 * ms}, 50, 2 * ms},
		{"duplicates", []time.Duration{ms, ms, ms, 5 * ms}, 75, ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.d)
			if got := Percentile(tt.d, tt.p); got != tt.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tt.d, tt.p, got, tt.want)
			}
			if !slices.Equal(in, tt.d) {
				t.Errorf("Percentile modified its input: %v, was %v", tt.d, in)
			}
		})
	}
}
