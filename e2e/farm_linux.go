//go:build linux

package e2e

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Prefix starts the name of every network namespace the harness creates, and
// nothing else on the machine may use it: the stale sweep deletes namespaces
// by this prefix.
const Prefix = "ushe2e-"

// portPrefix starts the names of the bridge ports (the bridge-side veth ends)
// and of the bridge itself. They live only in the farm's bridge namespace,
// so seeing one in the root namespace would be a harness bug.
const portPrefix = "ue2e-"

// MaxServers is the largest server count NewFarm accepts: servers take .11
// upwards and must stay below the VIP at .100.
const MaxServers = 88

// farmSeq numbers the farms of this process; the number goes into the
// namespace names and picks the farm's /24.
var farmSeq atomic.Int64

// Farm is a set of network namespaces joined by one bridge: N servers and a
// client, each in its own namespace with one veth interface, and the bridge
// in a namespace of its own. Nothing is created in the root namespace except
// the namespace files under /run/netns. See the package documentation for
// the addressing plan.
type Farm struct {
	id       string // "ushe2e-<pid%100000>-<index>-", the stem of all names
	bridgeNS string
	servers  []*Host
	client   *Host
	vip      netip.Addr
	procs    *procSet

	mu      sync.Mutex
	created []string // namespaces that exist, in creation order
	closed  bool

	closeOnce sync.Once
	closeErr  error
}

// NewFarm builds a farm of servers server hosts and one client host and
// registers its Close with t.Cleanup. It skips the test, with the reason,
// when the process is not root, ip(8) is missing, or the kernel refuses to
// create namespaces; any other setup error is fatal. servers must be in
// [1, MaxServers].
func NewFarm(t testing.TB, servers int) *Farm {
	t.Helper()
	if reason := farmUnsupported(); reason != "" {
		t.Skip(reason)
	}
	if servers < 1 || servers > MaxServers {
		t.Fatalf("e2e: NewFarm: %d servers, want 1..%d", servers, MaxServers)
	}
	if removed, err := sweepOnce(); err != nil {
		t.Logf("e2e: sweeping stale namespaces: %v", err)
	} else if len(removed) > 0 {
		t.Logf("e2e: removed stale namespaces of dead runs: %s", strings.Join(removed, " "))
	}
	f, err := newFarm(servers)
	if err != nil {
		if errors.Is(err, errNoPrivilege) {
			t.Skipf("e2e: network-namespace farm not possible here: %v", err)
		}
		t.Fatalf("e2e: building farm: %v", err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("e2e: closing farm: %v", err)
		}
	})
	return f
}

// farmUnsupported returns why a namespace farm cannot run here, or "".
func farmUnsupported() string {
	if os.Geteuid() != 0 {
		return fmt.Sprintf("e2e: network-namespace farm needs root (euid is %d); skipping", os.Geteuid())
	}
	if _, err := ipPath(); err != nil {
		return "e2e: network-namespace farm needs iproute2: " + err.Error() + "; skipping"
	}
	return ""
}

// newFarm creates the namespaces, the bridge and the links. On error it
// removes whatever it already created.
func newFarm(servers int) (*Farm, error) {
	idx := farmSeq.Add(1) - 1
	id := fmt.Sprintf("%s%d-%d-", Prefix, os.Getpid()%100000, idx)
	// Farms never share a link, so reusing a /24 across farms is harmless;
	// the index only makes addresses easier to tell apart in logs.
	net3 := byte(idx % 256)
	addr := func(last byte) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, net3, last}) }

	f := &Farm{
		id:       id,
		bridgeNS: id + "br",
		vip:      addr(100),
		procs:    newProcSet(),
	}
	for i := 1; i <= servers; i++ {
		f.servers = append(f.servers, &Host{
			Name: "h" + strconv.Itoa(i), NS: id + "h" + strconv.Itoa(i),
			Addr: addr(byte(10 + i)), Iface: "eth0",
			port: portPrefix + "h" + strconv.Itoa(i), farm: f, procs: f.procs,
		})
	}
	f.client = &Host{
		Name: "client", NS: id + "cl", Addr: addr(200), Iface: "eth0",
		port: portPrefix + "cl", farm: f, procs: f.procs,
	}

	// Register before creating anything, so an interrupt during setup
	// still tears down what exists.
	register(f)
	registerSet(f.procs)
	if err := f.build(); err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return f, nil
}

// addNS creates one named namespace and records it for Close.
func (f *Farm) addNS(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errors.New("farm closed during setup")
	}
	if _, err := ip("netns", "add", name); err != nil {
		return err
	}
	f.created = append(f.created, name)
	return nil
}

// build lays out the bridge namespace and every host.
func (f *Farm) build() error {
	bridge := portPrefix + "br"
	if err := f.addNS(f.bridgeNS); err != nil {
		return err
	}
	steps := [][]string{
		{"-n", f.bridgeNS, "link", "set", "lo", "up"},
		{"-n", f.bridgeNS, "link", "add", bridge, "type", "bridge"},
		{"-n", f.bridgeNS, "link", "set", bridge, "up"},
	}
	for _, h := range f.hosts() {
		if err := f.addNS(h.NS); err != nil {
			return err
		}
		prefix := netip.PrefixFrom(h.Addr, 24).String()
		steps = append(steps,
			[]string{"-n", h.NS, "link", "set", "lo", "up"},
			// Create the pair in the bridge namespace with the host end
			// born directly in the host namespace: it never exists in the
			// root namespace, not even for a moment.
			[]string{"-n", f.bridgeNS, "link", "add", h.port, "type", "veth", "peer", "name", h.Iface, "netns", h.NS},
			[]string{"-n", f.bridgeNS, "link", "set", h.port, "master", bridge, "up"},
			[]string{"-n", h.NS, "addr", "add", prefix, "dev", h.Iface},
			[]string{"-n", h.NS, "link", "set", h.Iface, "up"},
		)
	}
	for _, s := range steps {
		if _, err := ip(s...); err != nil {
			return err
		}
	}
	// Strict reverse-path filtering makes Isolate two-way: a packet whose
	// source is blackholed fails the reverse-path check and is dropped, so
	// peers cannot reach an isolated host either.
	for _, h := range f.hosts() {
		if err := h.Do(func() error {
			return os.WriteFile("/proc/sys/net/ipv4/conf/all/rp_filter", []byte("1"), 0)
		}); err != nil {
			return fmt.Errorf("%s: enable rp_filter: %w", h.NS, err)
		}
	}
	return nil
}

// hosts returns the servers and then the client.
func (f *Farm) hosts() []*Host {
	return append(f.Servers(), f.client)
}

// Servers returns the server hosts, h1 first. The slice is a copy.
func (f *Farm) Servers() []*Host { return append([]*Host(nil), f.servers...) }

// Client returns the client host.
func (f *Farm) Client() *Host { return f.client }

// VIP returns the farm's well-known balancer address, .100 of the farm's
// /24. The harness never assigns it: agents add it themselves.
func (f *Farm) VIP() netip.Addr { return f.vip }

// Subnet returns the farm's subnet, a /24 inside 198.18.0.0/15.
func (f *Farm) Subnet() netip.Prefix { return netip.PrefixFrom(f.vip, 24).Masked() }

// Namespaces returns the names of the farm's namespaces that currently
// exist: the bridge namespace first, then the hosts.
func (f *Farm) Namespaces() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.created...)
}

// Close kills every process still running on the farm's hosts and deletes
// all of the farm's namespaces, which deletes their interfaces with them.
// It then checks that `ip netns list` shows none of them. Close is
// idempotent and safe to call concurrently; every call returns the first
// call's result.
func (f *Farm) Close() error {
	f.closeOnce.Do(func() {
		f.procs.killAll()
		f.mu.Lock()
		f.closed = true
		names := f.created
		f.created = nil
		f.mu.Unlock()

		var errs []error
		// Hosts before the bridge namespace: deleting a host namespace
		// takes its veth pair with it, so the bridge goes last and empty.
		for i := len(names) - 1; i >= 0; i-- {
			if _, err := ip("netns", "del", names[i]); err != nil {
				errs = append(errs, err)
			}
		}
		if left, err := listNamespaces(); err != nil {
			errs = append(errs, err)
		} else {
			for _, n := range left {
				if strings.HasPrefix(n, f.id) {
					errs = append(errs, fmt.Errorf("namespace %s still exists after close", n))
				}
			}
		}
		unregister(f)
		unregisterSet(f.procs)
		f.closeErr = errors.Join(errs...)
	})
	return f.closeErr
}
