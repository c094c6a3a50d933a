package vip

import (
	"fmt"
	"net"
	"net/netip"
)

// bindMode holds the balancer address by binding the probe socket to it,
// for loopback farms and development. Only one socket on a host can bind
// the address, so a second holder's take fails: the bind itself fences.
type bindMode struct {
	addr netip.AddrPort
	conn *net.UDPConn // while held
}

// take binds the balancer address.
func (b *bindMode) take(uint64) (*net.UDPConn, error) {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(b.addr))
	if err != nil {
		return nil, fmt.Errorf("bind balancer address %s: %w", b.addr, err)
	}
	b.conn = conn
	return conn, nil
}

// drop unbinds the balancer address.
func (b *bindMode) drop() error {
	err := b.conn.Close()
	b.conn = nil
	if err != nil {
		return fmt.Errorf("unbind balancer address %s: %w", b.addr, err)
	}
	return nil
}

// close does nothing: bind mode keeps no socket while the address is not
// held.
func (*bindMode) close() error { return nil }
