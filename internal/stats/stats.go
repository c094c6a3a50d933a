// Package stats holds the small statistics the demo (internal/demo), the
// benchmark (cmd/usher-bench) and the chaos suite (e2e) report, so that all
// of them compute them alike.
package stats

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the p-th percentile of d by the nearest-rank method:
// the smallest sample such that at least p percent of the samples are less
// than or equal to it, i.e. the sample of rank ceil(p/100 * n) in sorted
// order. p is in percent (50 is the median, 99 the 99th percentile) and is
// clamped to [0, 100]; p <= 0 gives the minimum and p >= 100 the maximum.
// The result is always one of the samples (no interpolation), 0 for an empty
// slice. d is not modified.
func Percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	if math.IsNaN(p) || p <= 0 {
		return s[0]
	}
	if p >= 100 {
		return s[len(s)-1]
	}
	// p*n/100 rather than p/100*n: for whole percentages the product is exact,
	// so ceil never rounds 7.000000000000001 up to 8.
	rank := int(math.Ceil(p * float64(len(s)) / 100))
	rank = max(1, min(rank, len(s)))
	return s[rank-1]
}
