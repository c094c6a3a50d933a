// Package agentrun runs an Usher agent as the process of a system service,
// for `usher agent`: it tells systemd (Type=notify) when the agent is ready,
// reloading and stopping, reloads the configuration at each SIGHUP, and
// bounds the graceful shutdown that SIGINT or SIGTERM starts, so that a
// stuck shutdown ends the process with every goroutine's stack in the log
// rather than hanging until systemd kills it.
package agentrun

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/hashicorp/go-hclog"

	"github.com/usherlb/usher/node"
)

// Agent is what Run needs of a running agent (*node.Agent).
type Agent interface {
	Ready() <-chan struct{}
	Failed() <-chan struct{}
	Err() error
	ReloadConfig() (node.ReloadResult, error)
	Close() error
}

// shutdownLimit bounds the agent's shutdown after SIGINT or SIGTERM: the
// graceful leave takes seconds (a leader's leadership transfer, up to
// 2.5 s announcing the leave in the metadata and 5 s for memberlist's
// leave to spread); a shutdown stuck past this ends the process, inside
// systemd's default 90 s stop timeout.
const shutdownLimit = 45 * time.Second

// errShutdownCut says the shutdown was cut short.
var errShutdownCut = errors.New("shutdown cut short")

// Run runs until ctx is done or the agent fails, reloading the
// configuration at each SIGHUP on hup, then closes the agent within
// shutdownLimit. Under systemd (Type=notify) it tells the service manager
// READY=1 once the agent is ready (node.Agent.Ready), RELOADING=1 and
// READY=1 around a reload after that, and STOPPING=1 when it begins to
// shut down. It returns why the agent failed, or why it did not close
// cleanly.
func Run(ctx context.Context, a Agent, hup <-chan os.Signal, logger hclog.Logger) error {
	var failed error
	ready, isReady := a.Ready(), false
	for waiting := true; waiting; {
		select {
		case <-ctx.Done():
			waiting = false
		case <-a.Failed():
			failed, waiting = a.Err(), false
		case <-ready:
			ready, isReady = nil, true
			notify(logger, daemon.SdNotifyReady)
		case <-hup:
			if isReady {
				notify(logger, daemon.SdNotifyReloading+"\n"+daemon.SdNotifyMonotonicUsec())
			}
			reload(a, logger)
			if isReady {
				notify(logger, daemon.SdNotifyReady)
			}
		}
	}
	logger.Info("shutting down")
	notify(logger, daemon.SdNotifyStopping)
	again, stop := notifyAgain()
	defer stop()
	if err := closeBounded(a.Close, again, shutdownLimit, logger); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return failed
}

// notify sends state to the service manager named by NOTIFY_SOCKET (set by
// systemd for a Type=notify unit); without it, it does nothing. A failure
// to send is logged: the agent runs on regardless.
func notify(logger hclog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		logger.Warn("cannot notify systemd", "state", state, "error", err)
	}
}

// reload is the agent's answer to SIGHUP: it reads the configuration
// again and logs what it applied and what needs a restart, or why it kept
// the running configuration.
func reload(a Agent, logger hclog.Logger) {
	res, err := a.ReloadConfig()
	if err != nil {
		logger.Error("SIGHUP: the running configuration stays", "error", err)
		return
	}
	logger.Info("SIGHUP: reloaded", "applied", joinOrNone(res.Applied), "needs_restart", joinOrNone(res.NeedRestart))
}

// joinOrNone joins keys with commas, or says "(none)".
func joinOrNone(keys []string) string {
	if len(keys) == 0 {
		return "(none)"
	}
	return strings.Join(keys, ", ")
}

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
