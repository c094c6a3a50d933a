package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// shutdownLimit bounds the agent's shutdown after SIGINT or SIGTERM: the
// graceful leave takes seconds (a leader's leadership transfer, up to
// 2.5 s announcing the leave in the metadata and 5 s for memberlist's
// leave to spread); a shutdown stuck past this ends the process, inside
// systemd's default 90 s stop timeout.
const shutdownLimit = 45 * time.Second

// errShutdownCut says the shutdown was cut short.
var errShutdownCut = errors.New("shutdown cut short")

// closeBounded runs close, the agent's graceful shutdown, until it returns,
// limit passes or a signal arrives on again (a second SIGINT or SIGTERM).
// Cut short, it logs every goroutine's stack, so that whatever held the
// shutdown up shows in the log, and returns errShutdownCut; the caller
// exits and the process ends with the goroutine still running.
func closeBounded(close func() error, again <-chan os.Signal, limit time.Duration, logger hclog.Logger) error {
	done := make(chan error, 1)
	go func() { done <- close() }()
	t := time.NewTimer(limit)
	defer t.Stop()
	var why string
	select {
	case err := <-done:
		return err
	case <-t.C:
		why = fmt.Sprintf("not done after %v", limit)
	case s := <-again:
		why = fmt.Sprintf("a second signal (%v)", s)
	}
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	logger.Error("shutdown cut short, exiting now", "reason", why, "goroutines", string(buf))
	return fmt.Errorf("%w: %s", errShutdownCut, why)
}

// notifyAgain returns a channel that receives the next SIGINT or SIGTERM,
// and the function that stops it.
func notifyAgain() (<-chan os.Signal, func()) {
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	return again, func() { signal.Stop(again) }
}
