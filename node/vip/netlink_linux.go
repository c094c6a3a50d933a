//go:build linux

package vip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// netlinkMode holds the balancer address by adding it to a network
// interface and announcing it (gratuitous ARP for IPv4, an unsolicited
// neighbour advertisement for IPv6), the way VRRP speakers move an address.
//
// The address is added with a short kernel lifetime that the holder renews
// at every announcement, so the address of an agent that crashed while its
// host stayed up expires by itself. The probe socket is bound to the
// address with IP_FREEBIND for the agent's life (udpio.ListenFreebind), so taking over needs no
// re-bind: once the address is on the interface, probes arrive.
type netlinkMode struct {
	conn     *net.UDPConn
	link     netlink.Link
	ifi      *net.Interface
	addr     netip.Addr
	lifetime time.Duration
	every    time.Duration
	log      hclog.Logger

	// The announcer goroutine while held: closing stop ends it, and it
	// closes done when it has returned.
	stop chan struct{}
	done chan struct{}
}

// newNetlink returns a mode that holds addr on interface ifname, with a
// kernel lifetime of lifetime, renewed and re-announced every interval, and
// answers probes on conn. It removes a stale copy of the address left by an
// earlier run.
func newNetlink(conn *net.UDPConn, ifname string, addr netip.Addr, lifetime, every time.Duration, log hclog.Logger) (*netlinkMode, error) {
	if every <= 0 || lifetime < 2*every || lifetime < time.Second {
		return nil, fmt.Errorf("vip lifetime %s must be at least 1s and twice the announce interval %s", lifetime, every)
	}
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", ifname, err)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", ifname, err)
	}
	v := &netlinkMode{conn: conn, link: link, ifi: ifi, addr: addr.Unmap(), lifetime: lifetime, every: every, log: log}
	if err := v.remove(); err != nil {
		return nil, fmt.Errorf("remove stale balancer address: %w", err)
	}
	return v, nil
}

// take adds the address to the interface and starts announcing it.
func (v *netlinkMode) take(uint64) (*net.UDPConn, error) {
	if err := v.add(); err != nil {
		return nil, err
	}
	v.stop, v.done = make(chan struct{}), make(chan struct{})
	go v.renew(v.stop, v.done)
	return v.conn, nil
}

// drop stops announcing and removes the address from the interface.
func (v *netlinkMode) drop() error {
	v.halt()
	return v.remove()
}

// halt stops the announcer and waits for it.
func (v *netlinkMode) halt() {
	close(v.stop)
	<-v.done
	v.stop, v.done = nil, nil
}

// close closes the probe socket.
func (v *netlinkMode) close() error { return v.conn.Close() }

// renew announces the address at once, again shortly after (a lost first
// announcement should not cost a whole interval), then every interval,
// renewing the kernel lifetime each time.
func (v *netlinkMode) renew(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	v.announce()
	t := time.NewTimer(50 * time.Millisecond)
	defer t.Stop()
	for first := true; ; first = false {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if !first {
			if err := v.add(); err != nil {
				v.log.Error("renew balancer address", "error", err)
			}
		}
		v.announce()
		t.Reset(v.every)
	}
}

func (v *netlinkMode) netlinkAddr() *netlink.Addr {
	bits := 32
	if v.addr.Is6() {
		bits = 128
	}
	p := netip.PrefixFrom(v.addr, bits)
	a := &netlink.Addr{
		IPNet:       &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(bits, bits)},
		ValidLft:    int(v.lifetime / time.Second),
		PreferedLft: int(v.lifetime / time.Second),
	}
	if v.addr.Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

func (v *netlinkMode) add() error {
	if err := netlink.AddrReplace(v.link, v.netlinkAddr()); err != nil {
		return fmt.Errorf("add %s to %s: %w", v.addr, v.ifi.Name, err)
	}
	return nil
}

func (v *netlinkMode) remove() error {
	err := netlink.AddrDel(v.link, v.netlinkAddr())
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s from %s: %w", v.addr, v.ifi.Name, err)
	}
	return nil
}

// announce tells the link who holds the address now. Failures are logged:
// the next announcement retries.
func (v *netlinkMode) announce() {
	var err error
	if v.addr.Is4() {
		err = v.gratuitousARP()
	} else {
		err = v.unsolicitedNA()
	}
	if err != nil {
		v.log.Warn("announce balancer address", "addr", v.addr, "error", err)
	}
}

func (v *netlinkMode) gratuitousARP() error {
	c, err := arp.Dial(v.ifi)
	if err != nil {
		return err
	}
	defer c.Close()
	p, err := arp.NewPacket(arp.OperationRequest, v.ifi.HardwareAddr, v.addr, ethernet.Broadcast, v.addr)
	if err != nil {
		return err
	}
	return c.WriteTo(p, ethernet.Broadcast)
}

func (v *netlinkMode) unsolicitedNA() error {
	c, _, err := ndp.Listen(v.ifi, ndp.LinkLocal)
	if err != nil {
		return err
	}
	defer c.Close()
	na := &ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: v.addr,
		Options: []ndp.Option{&ndp.LinkLayerAddress{
			Direction: ndp.Target,
			Addr:      v.ifi.HardwareAddr,
		}},
	}
	return c.WriteTo(na, nil, netip.IPv6LinkLocalAllNodes())
}
