//go:build linux

package e2e

import (
	"time"

	"golang.org/x/sys/unix"
)

// Monotonic reads CLOCK_MONOTONIC. Network namespaces do not virtualise
// clocks, so every process on the machine, whichever farm host it runs on,
// reads the same clock: timestamps taken by the test and by agents in
// different namespaces can be compared directly.
func Monotonic() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		// CLOCK_MONOTONIC is always present on Linux; failing here means
		// the process is broken beyond what a test can handle.
		panic("e2e: clock_gettime(CLOCK_MONOTONIC): " + err.Error())
	}
	return time.Duration(ts.Nano())
}
