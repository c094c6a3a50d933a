//go:build linux

package e2e

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// interruptible runs the tests with CatchInterrupts installed, removes the
// handler before goleak looks for leftover goroutines, and deletes the agent
// binary the chaos tests built.
type interruptible struct{ m *testing.M }

func (r interruptible) Run() int {
	stop := CatchInterrupts()
	defer stop()
	code := r.m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	return code
}

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == serviceServerArg {
		os.Exit(runServiceServer(os.Args[2:])) // a helper process, not a test run
	}
	goleak.VerifyTestMain(interruptible{m})
}
