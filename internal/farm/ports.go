package farm

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// UDPFree reports whether a UDP socket can bind ap right now.
func UDPFree(ap netip.AddrPort) bool {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// TCPFree reports whether a TCP listener can bind ap right now.
func TCPFree(ap netip.AddrPort) bool {
	l, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(ap))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// Loopback returns 127.0.0.1:p.
func Loopback(p uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), p)
}

// PortPicker hands out distinct loopback ports below the kernel's
// ephemeral range (so that no outgoing connection takes a port between its
// check and the agent's bind), scanning up from a random base so that
// concurrent runs rarely meet.
type PortPicker struct{ next, lo, hi int }

// NewPortPicker returns a picker over [10000, the ephemeral range).
func NewPortPicker() *PortPicker {
	lo, hi := 10000, ephemeralLow()-1
	// A random start only keeps concurrent pickers apart; it need not be
	// unpredictable.
	return &PortPicker{next: lo + rand.IntN(max(1, (hi-lo)/2)), lo: lo, hi: hi} //nolint:gosec // G404: see above
}

// ephemeralLow returns the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if fs := strings.Fields(string(b)); len(fs) == 2 {
			if v, err := strconv.Atoi(fs[0]); err == nil && v > 12000 {
				return v
			}
		}
	}
	return 32768
}

// Take returns the first port p at or after the picker's position such
// that p..p+width-1 lie in the picker's range and free(p) holds, and moves
// past them.
func (pp *PortPicker) Take(width int, free func(uint16) bool) (uint16, error) {
	for tries := 0; tries < 4000; tries++ {
		p := pp.next
		if p+width > pp.hi+1 {
			p = pp.lo
		}
		pp.next = p + width
		if free(uint16(p)) {
			return uint16(p), nil
		}
	}
	return 0, errors.New("no free loopback ports")
}

// PickLoopback picks free loopback addresses on 127.0.0.1 for agents named
// names with pp: gossip takes a port p (UDP and TCP) and Raft p+1 (TCP),
// the session endpoint a UDP port, the API a TCP port.
func (pp *PortPicker) PickLoopback(names []string) ([]Addrs, error) {
	out := make([]Addrs, 0, len(names))
	for _, name := range names {
		g, err := pp.Take(2, func(p uint16) bool {
			return UDPFree(Loopback(p)) && TCPFree(Loopback(p)) && TCPFree(Loopback(p+1))
		})
		if err != nil {
			return nil, err
		}
		s, err := pp.Take(1, func(p uint16) bool { return UDPFree(Loopback(p)) })
		if err != nil {
			return nil, err
		}
		h, err := pp.Take(1, func(p uint16) bool { return TCPFree(Loopback(p)) })
		if err != nil {
			return nil, err
		}
		out = append(out, Addrs{Name: name, Gossip: Loopback(g), Session: Loopback(s), HTTP: Loopback(h)})
	}
	return out, nil
}
