// Package stats holds the small statistics the demo (internal/demo) and the
// benchmark (cmd/usher-bench) report, so that both compute them alike.
package stats

import (
	"slices"
	"time"
)

// Percentile returns the q-quantile (0..1) of ds by the nearest-rank
// method; ds must not be empty. It does not change ds.
func Percentile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s)) + 0.5)
	return s[min(max(i-1, 0), len(s)-1)]
}
