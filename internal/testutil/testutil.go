// Package testutil is the test support that the packages of this module
// share, as serf's testutil and raft's testing.go are theirs: waiting for a
// condition (Eventually), picking a free loopback port (FreeUDPPort), waiting
// for an in-process agent to serve (AwaitServing), and the "never two
// holders" check of invariant 1 on recorded holding intervals (Interval,
// Overlaps). Only tests import it.
package testutil

import (
	"net"
	"testing"
	"time"
)

// pollEvery is how often Eventually tests its condition.
const pollEvery = 10 * time.Millisecond

// Eventually fails t unless cond holds within timeout; it tests cond every
// 10 ms, first at once. what names the condition in the failure.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
			return
		}
		time.Sleep(pollEvery)
	}
}

// FreeUDPPort returns a UDP port of 127.0.0.1 that is free right now.
// Another process may take it before the caller binds it; tests that can
// bind port 0 should.
func FreeUDPPort(t testing.TB) uint16 {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}

// ClosedTCPAddr returns a TCP address of 127.0.0.1 that nothing listens on
// right now: a connection to it is refused.
func ClosedTCPAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
