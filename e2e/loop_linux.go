//go:build linux

package e2e

import (
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// loopSeq numbers the loop farms of this process; each gets its own /24.
var loopSeq atomic.Int64

// LoopFarm is the unprivileged stand-in for Farm: its hosts share the root
// namespace and loopback, each with its own address in 127.18.<n>.0/24
// (servers .11 upwards, client .200, VIP .100), so tests of processes and
// protocols run without root. Linux routes all of 127.0.0.0/8 to lo, so the
// addresses need no setup. The Host methods that need a namespace
// (LinkDown, LinkUp, Isolate, Heal) return ErrNoNamespace; Start and
// Command run programs directly and Do just calls its function.
type LoopFarm struct {
	servers []*Host
	client  *Host
	vip     netip.Addr
	procs   *procSet

	closeOnce sync.Once
}

// NewLoopFarm hands out addresses for servers servers and a client and
// registers Close with t.Cleanup. servers must be in [1, MaxServers].
func NewLoopFarm(t testing.TB, servers int) *LoopFarm {
	t.Helper()
	if servers < 1 || servers > MaxServers {
		t.Fatalf("e2e: NewLoopFarm: %d servers, want 1..%d", servers, MaxServers)
	}
	n := byte(loopSeq.Add(1) - 1)
	addr := func(last byte) netip.Addr { return netip.AddrFrom4([4]byte{127, 18, n, last}) }
	f := &LoopFarm{vip: addr(100), procs: newProcSet()}
	for i := 1; i <= servers; i++ {
		f.servers = append(f.servers, &Host{Name: "h" + strconv.Itoa(i), Addr: addr(byte(10 + i)), Iface: "lo", procs: f.procs})
	}
	f.client = &Host{Name: "client", Addr: addr(200), Iface: "lo", procs: f.procs}
	registerSet(f.procs)
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// Servers returns the server hosts, h1 first. The slice is a copy.
func (f *LoopFarm) Servers() []*Host { return append([]*Host(nil), f.servers...) }

// Client returns the client host.
func (f *LoopFarm) Client() *Host { return f.client }

// VIP returns the loop farm's balancer address, .100 of its /24; nothing
// assigns it (loopback answers on it already).
func (f *LoopFarm) VIP() netip.Addr { return f.vip }

// Close kills every process still running on the loop farm's hosts. It is
// idempotent and always returns nil; the error is there so that LoopFarm
// and Farm both satisfy Topology.
func (f *LoopFarm) Close() error {
	f.closeOnce.Do(func() {
		f.procs.killAll()
		unregisterSet(f.procs)
	})
	return nil
}
