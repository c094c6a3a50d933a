//go:build !linux

package node

import "net"

// sizeReadBuffer sets conn's receive buffer to n bytes; the system may cap
// it.
func sizeReadBuffer(conn *net.UDPConn, n int) error {
	return conn.SetReadBuffer(n)
}
