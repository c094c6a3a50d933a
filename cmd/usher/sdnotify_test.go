package main

import (
	"context"
	"errors"
	"io"
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

// fakeAgent is a runningAgent whose readiness and failure the test decides.
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

// startAwait runs awaitAgent on a in the background and returns its
// SIGHUP channel, the cancel of its context and its exit code's channel.
func startAwait(a runningAgent) (chan os.Signal, context.CancelFunc, <-chan int) {
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan os.Signal, 1)
	code := make(chan int, 1)
	go func() { code <- awaitAgent(ctx, a, hup, hclog.NewNullLogger(), io.Discard) }()
	return hup, cancel, code
}

// TestAgentNotifiesSystemd runs the agent's main loop with systemd's
// notification socket faked: nothing is sent before the agent is ready
// (not even around a reload), READY=1 once it is, RELOADING=1 and READY=1
// around a reload after that, and STOPPING=1 at shutdown.
func TestAgentNotifiesSystemd(t *testing.T) {
	conn := notifySocket(t)
	a := newFakeAgent()
	hup, cancel, code := startAwait(a)
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
	if c := <-code; c != 0 {
		t.Fatalf("exit code %d, want 0", c)
	}
}

// TestAgentFailsUnready: an agent that fails before it is ready never
// tells systemd READY=1, only STOPPING=1, and exits 1.
func TestAgentFailsUnready(t *testing.T) {
	conn := notifySocket(t)
	a := newFakeAgent()
	_, cancel, code := startAwait(a)
	defer cancel()
	close(a.failed)
	expectNotice(t, conn, "STOPPING=1")
	if c := <-code; c != 1 {
		t.Fatalf("exit code %d, want 1", c)
	}
}
