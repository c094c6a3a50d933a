package agentrun

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/usherlb/usher/node"
)

// fakeAgent is an Agent whose readiness and failure the test decides.
type fakeAgent struct {
	ready, failed chan struct{}
	reloaded      chan struct{} // receives one value per ReloadConfig
}

func newFakeAgent() *fakeAgent {
	return &fakeAgent{ready: make(chan struct{}), failed: make(chan struct{}), reloaded: make(chan struct{}, 4)}
}

func (f *fakeAgent) Ready() <-chan struct{}  { return f.ready }
func (f *fakeAgent) Failed() <-chan struct{} { return f.failed }
func (f *fakeAgent) Err() error              { return errors.New("the farm failed") }
func (f *fakeAgent) Close() error            { return nil }

func (f *fakeAgent) ReloadConfig() (node.ReloadResult, error) {
	f.reloaded <- struct{}{}
	return node.ReloadResult{}, nil
}

// notifySocket stands in for systemd: a datagram socket in a temporary
// directory, named by NOTIFY_SOCKET for the rest of the test.
func notifySocket(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

// nextNotice returns the next datagram the socket receives within wait,
// or "" if none comes.
func nextNotice(t *testing.T, conn *net.UnixConn, wait time.Duration) string {
	t.Helper()
	buf := make([]byte, 512)
	conn.SetReadDeadline(time.Now().Add(wait))
	n, err := conn.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

// expectNotice fails t unless the next datagram starts with want.
func expectNotice(t *testing.T, conn *net.UnixConn, want string) {
	t.Helper()
	if got := nextNotice(t, conn, 5*time.Second); !strings.HasPrefix(got, want) {
		t.Fatalf("systemd was told %q, want %q", got, want)
	}
}

// startRun runs Run on a in the background and returns its SIGHUP
// channel, the cancel of its context and its result's channel.
func startRun(a Agent) (chan os.Signal, context.CancelFunc, <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, a, hup, hclog.NewNullLogger()) }()
	return hup, cancel, done
}

// TestAgentNotifiesSystemd runs Run with systemd's
// notification socket faked: nothing is sent before the agent is ready
// (not even around a reload), READY=1 once it is, RELOADING=1 and READY=1
// around a reload after that, and STOPPING=1 at shutdown.
func TestAgentNotifiesSystemd(t *testing.T) {
	conn := notifySocket(t)
	a := newFakeAgent()
	hup, cancel, done := startRun(a)
	defer cancel()

	hup <- syscall.SIGHUP
	<-a.reloaded
	if got := nextNotice(t, conn, 300*time.Millisecond); got != "" {
		t.Fatalf("systemd was told %q before the agent was ready", got)
	}
	close(a.ready)
	expectNotice(t, conn, "READY=1")
	if got := nextNotice(t, conn, 100*time.Millisecond); got != "" {
		t.Fatalf("systemd was told %q after READY=1", got)
	}

	hup <- syscall.SIGHUP
	expectNotice(t, conn, "RELOADING=1\nMONOTONIC_USEC=")
	<-a.reloaded
	expectNotice(t, conn, "READY=1")

	cancel()
	expectNotice(t, conn, "STOPPING=1")
	if err := <-done; err != nil {
		t.Fatalf("Run: %v, want nil", err)
	}
}

// TestAgentFailsUnready: an agent that fails before it is ready never
// tells systemd READY=1, only STOPPING=1, and Run returns its error.
func TestAgentFailsUnready(t *testing.T) {
	conn := notifySocket(t)
	a := newFakeAgent()
	_, cancel, done := startRun(a)
	defer cancel()
	close(a.failed)
	expectNotice(t, conn, "STOPPING=1")
	if err := <-done; err == nil || err.Error() != "the farm failed" {
		t.Fatalf("Run: %v, want the agent's error", err)
	}
}

// TestCloseBounded checks the agent's bounded shutdown: a close that
// finishes returns its error; one that hangs is cut at the limit or at a
// second signal, with the stacks in the log.
func TestCloseBounded(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	blocked := func() error { <-hang; return nil }
	failing := errors.New("raft shutdown: boom")
	for _, tc := range []struct {
		name   string
		close  func() error
		signal bool
		want   error
	}{
		{"finishes", func() error { return nil }, false, nil},
		{"fails", func() error { return failing }, false, failing},
		{"hangs", blocked, false, errShutdownCut},
		{"second signal", blocked, true, errShutdownCut},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			logger := hclog.New(&hclog.LoggerOptions{Output: &log})
			again := make(chan os.Signal, 1)
			limit := 200 * time.Millisecond
			if tc.signal {
				limit = time.Hour
				again <- syscall.SIGTERM
			}
			err := closeBounded(tc.close, again, limit, logger)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("closeBounded: %v, want %v", err, tc.want)
			}
			if cut := strings.Contains(log.String(), "shutdown cut short"); cut != errors.Is(tc.want, errShutdownCut) ||
				cut && !strings.Contains(log.String(), "TestCloseBounded") {
				t.Fatalf("log after %s:\n%s", tc.name, log.String())
			}
		})
	}
}
