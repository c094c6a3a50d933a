package e2e

import "github.com/usherlb/usher/internal/testutil"

// Interval is a span during which a holder held the VIP, on Monotonic's
// scale (testutil.Interval).
type Interval = testutil.Interval

// Overlaps returns every pair of intervals of two holders that share an
// instant (testutil.Overlaps).
func Overlaps(iv []Interval) [][2]Interval { return testutil.Overlaps(iv) }
