//go:build !linux

package vip

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/hashicorp/go-hclog"
)

// netlinkMode is only available on Linux.
type netlinkMode struct{}

// newNetlink fails: netlink mode needs Linux.
func newNetlink(*net.UDPConn, string, netip.Addr, time.Duration, time.Duration, hclog.Logger) (*netlinkMode, error) {
	return nil, errors.New("vip_mode netlink is only supported on linux")
}

func (*netlinkMode) take(uint64) (*net.UDPConn, error) {
	return nil, errors.New("vip_mode netlink is only supported on linux")
}

func (*netlinkMode) drop() error  { return nil }
func (*netlinkMode) close() error { return nil }
