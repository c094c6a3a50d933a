//go:build !linux

package main

import (
	"context"
	"fmt"
	"io"
)

// runBench implements `usher-bench`, which needs Linux (recvmmsg,
// SO_REUSEPORT, /proc, apt-get).
func runBench(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "usher-bench: only supported on linux")
	return 1
}
