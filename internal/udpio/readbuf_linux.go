//go:build linux

package udpio

import (
	"errors"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// SizeReadBuffer sets conn's receive buffer to n bytes. With CAP_NET_ADMIN
// it uses SO_RCVBUFFORCE, which may exceed net.core.rmem_max (an agent that
// moves the balancer address in netlink mode has that capability anyway);
// without it the kernel caps n at rmem_max.
func SizeReadBuffer(conn *net.UDPConn, n int) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("receive buffer: %w", err)
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
		if errors.Is(serr, unix.EPERM) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n)
		}
	})
	if err = errors.Join(err, serr); err != nil {
		return fmt.Errorf("receive buffer of %d bytes: %w", n, err)
	}
	return nil
}
