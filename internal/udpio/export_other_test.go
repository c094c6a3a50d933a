//go:build !linux

package udpio

// setYield reports false: outside Linux no back-end yields.
func setYield(c Conn, f func()) bool { return false }
