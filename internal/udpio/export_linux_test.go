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
