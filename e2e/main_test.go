//go:build linux

package e2e

import (
	"testing"

	"go.uber.org/goleak"
)

// interruptible runs the tests with CatchInterrupts installed and removes
// the handler before goleak looks for leftover goroutines.
type interruptible struct{ m *testing.M }

func (r interruptible) Run() int {
	stop := CatchInterrupts()
	defer stop()
	return r.m.Run()
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(interruptible{m})
}
