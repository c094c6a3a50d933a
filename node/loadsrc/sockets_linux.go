//go:build linux

package loadsrc

import (
	"context"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// tcpEstablished and tcpListen are the kernel's socket states (a connected
// UDP socket is in the established state too).
const (
	tcpEstablished = 1
	tcpListen      = 10
)

// sockets counts the kernel's sockets of a port (or port range) by
// sock_diag netlink dumps of both address families.
type sockets struct {
	protocol string
	lo, hi   int
	peer     bool
	anyState bool
}

func newSockets(set Settings) *sockets {
	return &sockets{protocol: set.Protocol, lo: set.PortLow, hi: set.PortHigh, peer: set.Peer, anyState: set.AnyState}
}

// Poll dumps the sockets and counts those that match. A dual-stack socket
// is listed only in the AF_INET6 dump, so none is counted twice.
func (s *sockets) Poll(ctx context.Context) (Reading, error) {
	n := 0
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		if err := ctx.Err(); err != nil {
			return Reading{}, err
		}
		list, err := s.dump(family)
		if err != nil {
			return Reading{}, fmt.Errorf("sock_diag %s family %d: %w", s.protocol, family, err)
		}
		for _, sk := range list {
			if s.match(sk) {
				n++
			}
		}
	}
	return Reading{Load: n}, nil
}

func (s *sockets) dump(family uint8) ([]*netlink.Socket, error) {
	if s.protocol == "tcp" {
		return netlink.SocketDiagTCP(family)
	}
	return netlink.SocketDiagUDP(family)
}

func (s *sockets) match(sk *netlink.Socket) bool {
	port := int(sk.ID.SourcePort)
	if s.peer {
		port = int(sk.ID.DestinationPort)
	}
	if port < s.lo || port > s.hi {
		return false
	}
	if s.anyState {
		return sk.State != tcpListen
	}
	return sk.State == tcpEstablished
}
