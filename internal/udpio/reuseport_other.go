//go:build !linux

package udpio

import (
	"errors"
	"net"
)

// ListenSiblings would open SO_REUSEPORT siblings of conn; only the Linux
// build does, so the responder serves the one socket here.
func ListenSiblings(conn *net.UDPConn, n int) ([]*net.UDPConn, error) {
	return nil, errors.New("reuseport: sibling sockets are only supported on linux")
}
