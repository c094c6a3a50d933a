//go:build linux

package udpio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// ListenSiblings opens n more UDP sockets bound to conn's address, all in
// one SO_REUSEPORT group with conn, so the kernel spreads incoming datagrams
// across them by source address. conn gets SO_REUSEPORT first (Linux lets a
// bound socket join a group that way); the siblings copy its IP_FREEBIND.
// On failure it closes what it opened and returns no sockets.
func ListenSiblings(conn *net.UDPConn, n int) ([]*net.UDPConn, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("reuseport: %w", err)
	}
	var family, freebind int
	var serr error
	err = rc.Control(func(fd uintptr) {
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); serr != nil {
			return
		}
		if family, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN); serr != nil {
			return
		}
		if family == unix.AF_INET {
			freebind, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_FREEBIND)
		} else {
			freebind, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_FREEBIND)
		}
	})
	if err = errors.Join(err, serr); err != nil {
		return nil, fmt.Errorf("reuseport: %w", err)
	}
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			if serr != nil || freebind == 0 {
				return
			}
			if family == unix.AF_INET {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_FREEBIND, 1)
			} else {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_FREEBIND, 1)
			}
		})
		return errors.Join(err, serr)
	}}
	// "udp" keeps an IPv6 wildcard socket dual-stack, as conn is; "udp6"
	// would make the siblings IPv6-only.
	network := "udp"
	if family == unix.AF_INET {
		network = "udp4"
	}
	addr := conn.LocalAddr().String()
	out := make([]*net.UDPConn, 0, n)
	for range n {
		pc, err := lc.ListenPacket(context.Background(), network, addr)
		if err != nil {
			for _, c := range out {
				c.Close()
			}
			return nil, fmt.Errorf("reuseport: %w", err)
		}
		out = append(out, pc.(*net.UDPConn))
	}
	return out, nil
}
