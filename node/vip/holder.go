package vip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/usherlb/usher/cluster"
)

// Server is what a Holder needs from the probe responder: start answering
// on a socket bound to the balancer address, and stop.
type Server interface {
	Serve(conn *net.UDPConn)
	Stop()
}

// mode is how one vip_mode makes the balancer address this host's and lets
// it go. The Holder calls take only when the address is not held and drop
// only after a take that succeeded, from one goroutine at a time.
type mode interface {
	// take makes the address this host's in term and returns the socket
	// to answer probes on. On error nothing is held.
	take(term uint64) (*net.UDPConn, error)
	// drop lets the address go; the responder has stopped reading.
	drop() error
	// close frees what the mode keeps for the agent's life.
	close() error
}

// Config says how a Holder holds the balancer address.
type Config struct {
	// Mode is the vip_mode: "bind", "netlink" or "script".
	Mode string
	// Addr is the balancer address and probe port.
	Addr netip.AddrPort
	// Server is the probe responder started on the address while held.
	Server Server
	// Listen binds the probe socket for the agent's life in netlink and
	// script modes, with IP_FREEBIND so that the address need not be on
	// the host yet.
	Listen func(netip.AddrPort) (*net.UDPConn, error)
	// Interface is the interface netlink mode adds the address to.
	Interface string
	// AcquireScript and ReleaseScript are script mode's commands; Node is
	// this node's name, given to them as USHER_NODE.
	AcquireScript, ReleaseScript, Node string
	// Logger receives netlink mode's renewal and announcement failures.
	Logger hclog.Logger
}

// Timings: netlink mode's kernel lifetime of the address and how often it
// is renewed and announced, and the bound on one script run.
const (
	netlinkLifetime = 10 * time.Second
	netlinkAnnounce = 2 * time.Second
	scriptTimeout   = 30 * time.Second
)

// Holder holds the balancer address for one node in one vip_mode and
// starts the probe responder on it while held. It implements cluster.VIP;
// see the package documentation for who may call it.
type Holder struct {
	server Server
	mode   mode
}

var _ cluster.VIP = (*Holder)(nil)

// New returns the Holder for cfg.Mode. In netlink and script modes it binds
// the probe socket now (cfg.Listen); netlink mode also removes a stale copy
// of the address that an earlier run left behind.
func New(cfg Config) (*Holder, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Mode == "bind" {
		return &Holder{server: cfg.Server, mode: &bindMode{addr: cfg.Addr}}, nil
	}
	if cfg.Mode != "netlink" && cfg.Mode != "script" {
		return nil, fmt.Errorf("vip_mode %q is not supported", cfg.Mode)
	}
	conn, err := cfg.Listen(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("bind balancer address %s: %w", cfg.Addr, err)
	}
	var m mode
	if cfg.Mode == "script" {
		m = newScript(conn, cfg.AcquireScript, cfg.ReleaseScript, cfg.Addr.Addr().String(), cfg.Node, scriptTimeout)
	} else {
		m, err = newNetlink(conn, cfg.Interface, cfg.Addr.Addr(), netlinkLifetime, netlinkAnnounce, cfg.Logger)
	}
	if err != nil {
		return nil, errors.Join(err, conn.Close())
	}
	return &Holder{server: cfg.Server, mode: m}, nil
}

// Acquire makes the address this host's in term and starts answering
// probes on it. Only the cluster's VIP owner calls it.
func (h *Holder) Acquire(term uint64) error {
	conn, err := h.mode.take(term)
	if err != nil {
		return err
	}
	h.server.Serve(conn)
	return nil
}

// Release stops answering probes and lets the address go. Only the
// cluster's VIP owner calls it.
func (h *Holder) Release() error {
	h.server.Stop()
	return h.mode.drop()
}

// Close frees the probe socket that netlink and script modes keep for the
// agent's life. Call it once the cluster has shut down, so that the
// address has been released.
func (h *Holder) Close() error {
	return h.mode.close()
}
