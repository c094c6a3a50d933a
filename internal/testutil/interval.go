package testutil

import "time"

// Interval is a span of monotonic time (e2e.Monotonic, or a test's own
// clock) during which Holder held something exclusive, typically the VIP. It is half-open, [From, To):
// a handover where one holder's To equals the next holder's From is not an
// overlap. To == 0 means the interval is still open (extends forever).
type Interval struct {
	Holder   string
	From, To time.Duration
}

// end returns the exclusive end of iv, treating an open interval as endless.
func (iv Interval) end() time.Duration {
	if iv.To == 0 {
		return time.Duration(1<<63 - 1)
	}
	return iv.To
}

// Overlaps returns every pair of intervals that belong to different holders
// and share at least one instant, which is what the "never two VIP holders"
// invariant forbids. Intervals of the same holder never count, and neither
// do empty intervals (To != 0 and To <= From). Each pair is reported once,
// in input order: for pair p, p[0] comes before p[1] in iv. The result is
// nil when there is no overlap.
func Overlaps(iv []Interval) [][2]Interval {
	var out [][2]Interval
	for i := range iv {
		a := iv[i]
		if a.end() <= a.From {
			continue
		}
		for _, b := range iv[i+1:] {
			if a.Holder == b.Holder || b.end() <= b.From {
				continue
			}
			if a.From < b.end() && b.From < a.end() {
				out = append(out, [2]Interval{a, b})
			}
		}
	}
	return out
}
