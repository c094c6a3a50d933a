//go:build !linux

package udpio

import "net"

// Open returns a Conn reading and writing conn. Outside Linux every mode is
// Portable: Raw and MMsg are Linux's system calls.
func Open(conn *net.UDPConn, m Mode) (Conn, error) {
	return netConn{conn}, nil
}
