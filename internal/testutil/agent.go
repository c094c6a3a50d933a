package testutil

import (
	"context"
	"testing"
	"time"
)

// Agent is what AwaitServing needs of an agent (*node.Agent). It is an
// interface because package node's own tests import testutil, which
// therefore cannot import node.
type Agent interface {
	WaitServing(ctx context.Context) error
	Close() error
}

// serveWithin bounds how long AwaitServing waits: a one-node farm on
// loopback elects itself and serves well within it.
const serveWithin = 10 * time.Second

// AwaitServing closes a when the test ends and fails t unless a answers
// probes within 10 s (node.Agent.WaitServing).
func AwaitServing(t testing.TB, a Agent) {
	t.Helper()
	t.Cleanup(func() { a.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), serveWithin)
	defer cancel()
	if err := a.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
}
