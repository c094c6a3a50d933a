//go:build linux

package udpio

// setYield makes c call f where it would yield the processor, if c is a
// raw back-end, and reports whether it is.
func setYield(c Conn, f func()) bool {
	switch c := c.(type) {
	case *rawConn:
		c.yield = f
	case *mmsgConn:
		c.yield = f
	default:
		return false
	}
	return true
}

// resetBusy forgets the loops that earlier tests left counted as flooded
// (a test that reads exactly what it sent never sees its socket empty);
// no loop may be running.
func resetBusy() { setBusy(0) }

// setBusy counts n loops as flooded, as if other loops were.
func setBusy(n int) { busyLoops.Store(int32(n)) } //nolint:gosec // G115: a test's small count
