//go:build !linux

package udpio

import (
	"net"
	"net/netip"
)

// ListenFreebind binds a UDP socket to addr. Outside Linux there is no
// IP_FREEBIND, so addr must already be on an interface.
func ListenFreebind(addr netip.AddrPort) (*net.UDPConn, error) {
	return net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
}
