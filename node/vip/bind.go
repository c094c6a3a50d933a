package vip

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// Server is what the bind-mode VIP needs from the probe responder:
// start answering on a socket bound to the balancer address, and stop.
type Server interface {
	Serve(conn *net.UDPConn)
	Stop()
}

// BindVIP holds the balancer address by binding the probe socket to it, for
// loopback farms and development. Only one socket on a host can bind the
// address, so a second holder's Acquire fails: the bind itself fences.
type BindVIP struct {
	addr   netip.AddrPort
	server Server

	mu   sync.Mutex
	conn *net.UDPConn
}

// NewBindVIP returns a VIP that binds addr and hands the socket to server.
func NewBindVIP(addr netip.AddrPort, server Server) *BindVIP {
	return &BindVIP{addr: addr, server: server}
}

// Acquire binds the balancer address and starts answering probes on it. It
// does nothing if the address is already held.
func (v *BindVIP) Acquire(term uint64) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.conn != nil {
		return nil
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(v.addr))
	if err != nil {
		return fmt.Errorf("bind balancer address %s: %w", v.addr, err)
	}
	v.conn = conn
	v.server.Serve(conn)
	return nil
}

// Release stops answering probes and unbinds the balancer address. It does
// nothing if the address is not held.
func (v *BindVIP) Release() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.conn == nil {
		return nil
	}
	v.server.Stop()
	err := v.conn.Close()
	v.conn = nil
	if err != nil {
		return fmt.Errorf("unbind balancer address %s: %w", v.addr, err)
	}
	return nil
}
