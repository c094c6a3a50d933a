//go:build !linux

package node

import (
	"errors"
	"net"
)

// listenSiblings would open SO_REUSEPORT siblings of conn; only the Linux
// build does, so the responder serves the one socket here.
func listenSiblings(conn *net.UDPConn, n int) ([]*net.UDPConn, error) {
	return nil, errors.New("reuseport: sibling sockets are only supported on linux")
}
