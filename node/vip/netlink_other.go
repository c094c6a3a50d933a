//go:build !linux

package vip

import (
	"errors"
	"net/netip"
	"time"

	"github.com/hashicorp/go-hclog"
)

// NetlinkVIP is only available on Linux.
type NetlinkVIP struct{}

// NewNetlinkVIP fails: netlink mode needs Linux.
func NewNetlinkVIP(string, netip.Addr, time.Duration, time.Duration, hclog.Logger) (*NetlinkVIP, error) {
	return nil, errors.New("vip_mode netlink is only supported on linux")
}

// Acquire fails: netlink mode needs Linux.
func (*NetlinkVIP) Acquire(uint64) error {
	return errors.New("vip_mode netlink is only supported on linux")
}

// Release does nothing.
func (*NetlinkVIP) Release() error { return nil }
