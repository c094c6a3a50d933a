//go:build linux

package vip

import (
	"time"

	"golang.org/x/sys/unix"
)

// systemMonotonic reads CLOCK_MONOTONIC, which every process on the host,
// in whatever network namespace, shares: event logs of several agents can
// be laid side by side.
func systemMonotonic() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
