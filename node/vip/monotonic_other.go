//go:build !linux

package vip

import "time"

var monotonicBase = time.Now()

// systemMonotonic is a monotonic reading; outside Linux it is only
// comparable within this process.
func systemMonotonic() time.Duration { return time.Since(monotonicBase) }
