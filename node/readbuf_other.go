//go:build !linux

package node

import "net"

// SizeReadBuffer sets conn's receive buffer to n bytes, as the responder
// does for its probe sockets; the system may cap it.
func SizeReadBuffer(conn *net.UDPConn, n int) error {
	return conn.SetReadBuffer(n)
}
