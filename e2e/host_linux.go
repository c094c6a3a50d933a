//go:build linux

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"runtime"
	"slices"
	"sync"

	"github.com/vishvananda/netns"
)

// ErrNoNamespace is returned by the Host methods that need a network
// namespace (LinkDown, LinkUp, Isolate, Heal) when called on a LoopFarm
// host, which runs in the root namespace.
var ErrNoNamespace = errors.New("e2e: host has no network namespace of its own")

// Topology is what Farm and LoopFarm have in common, so a scenario can be
// written once and run on either.
type Topology interface {
	// Servers returns the server hosts, h1 first.
	Servers() []*Host
	// Client returns the client host.
	Client() *Host
	// VIP returns the balancer address agents should claim.
	VIP() netip.Addr
	// Close kills the hosts' processes and removes the topology.
	Close() error
}

var (
	_ Topology = (*Farm)(nil)
	_ Topology = (*LoopFarm)(nil)
)

// Host is one machine of a farm: a network namespace with one interface
// holding one address. Hosts of a LoopFarm have an empty NS and live in the
// root namespace on a loopback address.
type Host struct {
	// Name is the short role name: "h1", "h2", ... or "client".
	Name string
	// NS is the network namespace name, as `ip netns` knows it; empty for
	// a LoopFarm host.
	NS string
	// Addr is the host's own address.
	Addr netip.Addr
	// Iface is the host's interface inside NS ("eth0"; "lo" for a LoopFarm).
	Iface string

	port  string // the bridge-side end of the veth pair, in the bridge namespace
	farm  *Farm
	procs *procSet

	mu       sync.Mutex
	isolated []netip.Addr // blackholed destinations, for Heal
}

// String returns the host's name and address, for test logs.
func (h *Host) String() string { return h.Name + "(" + h.Addr.String() + ")" }

// Command returns a command that runs name with args inside h's namespace
// via `ip netns exec`, which execs the program in place, so the command's
// process is the program itself. On a LoopFarm host it runs name directly.
// Cancelling ctx kills the process, as with exec.CommandContext.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if h.NS == "" {
		return exec.CommandContext(ctx, name, args...)
	}
	path, err := ipPath()
	if err != nil {
		// Unreachable for a farm host: NewFarm skipped without ip(8).
		path = "ip"
	}
	return exec.CommandContext(ctx, path, append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// LinkDown takes down the host's switch port (the bridge end of its veth
// pair), as if its cable were pulled or the machine died: the host keeps
// its addresses and routes, its interface loses carrier, and packets in
// either direction are silently lost. LinkUp undoes it.
func (h *Host) LinkDown() error { return h.setPort("down") }

// LinkUp brings the host's switch port back up after LinkDown.
func (h *Host) LinkUp() error { return h.setPort("up") }

func (h *Host) setPort(state string) error {
	if h.farm == nil {
		return ErrNoNamespace
	}
	if _, err := ip("-n", h.farm.bridgeNS, "link", "set", h.port, state); err != nil {
		return fmt.Errorf("e2e: link %s %s: %w", state, h.Name, err)
	}
	return nil
}

// Isolate cuts h off from the given peers, both ways, while leaving every
// other host (the client in particular) able to talk to it. With no peers
// it isolates h from all the farm's other servers.
//
// It adds a blackhole route to each peer's address inside h's namespace, so
// h's packets to the peer are dropped at once (local senders get EINVAL);
// because every farm namespace runs strict reverse-path filtering, packets
// arriving from a blackholed source are dropped too. Repeated calls add to
// the set; Heal removes it all.
func (h *Host) Isolate(peers ...*Host) error {
	if h.farm == nil {
		return ErrNoNamespace
	}
	if len(peers) == 0 {
		for _, s := range h.farm.servers {
			if s != h {
				peers = append(peers, s)
			}
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range peers {
		if p == h {
			continue
		}
		dst := netip.PrefixFrom(p.Addr, 32).String()
		if _, err := ip("-n", h.NS, "route", "replace", "blackhole", dst); err != nil {
			return fmt.Errorf("e2e: isolate %s from %s: %w", h.Name, p.Name, err)
		}
		if !slices.Contains(h.isolated, p.Addr) {
			h.isolated = append(h.isolated, p.Addr)
		}
	}
	return nil
}

// Heal removes every blackhole route Isolate added to h.
func (h *Host) Heal() error {
	if h.farm == nil {
		return ErrNoNamespace
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var errs []error
	kept := h.isolated[:0]
	for _, a := range h.isolated {
		dst := netip.PrefixFrom(a, 32).String()
		if _, err := ip("-n", h.NS, "route", "del", "blackhole", dst); err != nil {
			errs = append(errs, fmt.Errorf("e2e: heal %s: %w", h.Name, err))
			kept = append(kept, a)
		}
	}
	h.isolated = kept
	return errors.Join(errs...)
}

// errGoexit reports that fn ended its goroutine (t.FailNow, t.Skip,
// runtime.Goexit) so Do can do the same on the caller's goroutine.
var errGoexit = errors.New("e2e: function passed to Do called runtime.Goexit")

// Do runs fn on an OS thread that has entered h's network namespace and
// returns fn's error. Sockets fn creates belong to that namespace for good,
// so the test process can, for example, dial "from the client host" and
// keep using the connection afterwards from any goroutine. Goroutines fn
// starts run in the root namespace.
//
// fn runs on its own goroutine, locked to its thread; the thread switches
// back before it is reused, and if switching back fails the thread is
// thrown away rather than returned to the scheduler. A panic in fn is
// re-raised, and t.FailNow/t.Skip inside fn end the caller's goroutine, as
// if fn had run there. On a LoopFarm host Do just calls fn.
func (h *Host) Do(fn func() error) error {
	if h.NS == "" {
		return fn()
	}
	target, err := netns.GetFromName(h.NS)
	if err != nil {
		return fmt.Errorf("e2e: open namespace %s: %w", h.NS, err)
	}
	defer target.Close()

	type result struct {
		err      error
		panicked bool
		value    any
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("e2e: current namespace: %w", err)}
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("e2e: enter namespace %s: %w", h.NS, err)}
			return
		}
		res := result{err: errGoexit}
		defer func() {
			if err := netns.Set(orig); err != nil {
				// Leave the thread locked: the goroutine ends locked,
				// and the runtime destroys the thread.
				res.err = errors.Join(res.err, fmt.Errorf("e2e: leave namespace %s: %w", h.NS, err))
			} else {
				runtime.UnlockOSThread()
			}
			done <- res
		}()
		defer func() {
			if v := recover(); v != nil {
				res = result{panicked: true, value: v}
			}
		}()
		res.err = fn()
	}()
	res := <-done
	if res.panicked {
		panic(res.value)
	}
	if errors.Is(res.err, errGoexit) {
		runtime.Goexit()
	}
	return res.err
}
