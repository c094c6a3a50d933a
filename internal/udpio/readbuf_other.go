//go:build !linux

package udpio

import "net"

// SizeReadBuffer sets conn's receive buffer to n bytes; the system may cap
// it.
func SizeReadBuffer(conn *net.UDPConn, n int) error {
	return conn.SetReadBuffer(n)
}
