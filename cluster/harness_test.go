package cluster

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/usherlb/usher/internal/testutil"
)

// leakGrace is how long TestMain lets goroutines that are still ending
// finish before it calls them leaked. memberlist's Shutdown does not wait
// for a probe in flight, which ends a probe interval or two later; goleak's
// own retries (about 0.4 s) miss it now and then when the last test of a
// run crashed nodes (TestQuorumLossStopsServing alone failed 6 of 15 runs).
const leakGrace = 5 * time.Second

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(leakGrace)
		for {
			err := goleak.Find()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
				code = 1
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	os.Exit(code)
}

// testLogger logs to stderr at USHER_TEST_LOG's level (off by default).
func testLogger(name string) hclog.Logger {
	level := hclog.LevelFromString(os.Getenv("USHER_TEST_LOG"))
	if level == hclog.NoLevel {
		level = hclog.Off
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: level, Output: os.Stderr})
}

// vipLedger is shared by every fakeVIP of a test: it records who holds the
// address and every serving interval, and fails the test on an overlap. The
// intervals come from two sides: the nodes' own Config.OnVIP records, and
// watch, which polls every node started with one of the ledger's fakeVIPs
// (see startNode) from the outside.
type vipLedger struct {
	t        testing.TB
	watch    *servingWatch
	mu       sync.Mutex
	holder   string
	acquires int
	// open serving intervals by node, and closed ones.
	open     map[string]time.Duration
	closed   []interval
	lastDrop map[string]time.Duration
	// failFirst makes every Acquire by the first node to call it fail.
	failFirst bool
	failing   string
	failures  int
}

type interval struct {
	node       string
	term       uint64
	start, end time.Duration
}

func newVIPLedger(t testing.TB) *vipLedger {
	l := &vipLedger{t: t, watch: newServingWatch(), open: map[string]time.Duration{}, lastDrop: map[string]time.Duration{}}
	// The first cleanup registered runs last, after every node has shut
	// down, so the watch sees the shutdowns too.
	t.Cleanup(l.check)
	return l
}

// fakeVIP is one node's VIP.
type fakeVIP struct {
	l    *vipLedger
	node string
}

func (v *fakeVIP) Acquire(term uint64) error {
	v.l.mu.Lock()
	defer v.l.mu.Unlock()
	if v.l.failFirst && v.l.failing == "" {
		v.l.failing = v.node
	}
	if v.l.failing == v.node {
		v.l.failures++
		return errors.New("injected acquire failure")
	}
	if v.l.holder != "" && v.l.holder != v.node {
		v.l.t.Errorf("vip overlap: %s acquired (term %d) while %s holds it", v.node, term, v.l.holder)
	}
	v.l.holder = v.node
	v.l.acquires++
	return nil
}

func (v *fakeVIP) Release() error {
	v.l.mu.Lock()
	defer v.l.mu.Unlock()
	if v.l.holder == v.node {
		v.l.holder = ""
	}
	return nil
}

// onVIP records serving intervals from Config.OnVIP.
func (l *vipLedger) onVIP(node string) func(bool, uint64, time.Duration) {
	return func(acquired bool, term uint64, at time.Duration) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if acquired {
			for other, start := range l.open {
				if other != node {
					l.t.Errorf("serving overlap: %s started serving (term %d) at %v while %s serves since %v", node, term, at, other, start)
				}
			}
			l.open[node] = at
			return
		}
		start, ok := l.open[node]
		if !ok {
			l.t.Errorf("%s stopped serving without starting", node)
			return
		}
		delete(l.open, node)
		l.closed = append(l.closed, interval{node: node, term: term, start: start, end: at})
		l.lastDrop[node] = at
	}
}

// check stops the watch and verifies that no two serving intervals
// overlap, as the nodes recorded them and as the watch saw them.
func (l *vipLedger) check() {
	l.watch.close()
	for _, o := range l.watch.overlaps() {
		l.t.Errorf("seen from outside: %s", o)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var all []testutil.Interval
	for _, iv := range l.closed {
		all = append(all, testutil.Interval{Holder: iv.node, From: iv.start, To: iv.end})
	}
	for node, start := range l.open {
		all = append(all, testutil.Interval{Holder: node, From: start})
	}
	for _, p := range testutil.Overlaps(all) {
		l.t.Errorf("serving intervals overlap: %+v and %+v", p[0], p[1])
	}
}

// lastRelease returns the instant node last stopped serving, as its
// Config.OnVIP recorded it, for gap measurements.
func (l *vipLedger) lastRelease(node string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.lastDrop[node]
	return at, ok
}

func (l *vipLedger) servingSince(node string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.open[node]
	return at, ok
}

var loopback = netip.MustParseAddr("127.0.0.1")

// testConfig returns a Fast-profile configuration on loopback ephemeral ports.
func testConfig(t testing.TB, name string, ledger *vipLedger) Config {
	timing, err := Profile(ProfileFast)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		NodeName:          name,
		BindAddr:          netip.AddrPortFrom(loopback, 0),
		RaftBindAddr:      netip.AddrPortFrom(loopback, 0),
		RetryJoinInterval: 100 * time.Millisecond,
		Label:             "usher-test",
		DataDir:           t.TempDir(),
		BootstrapExpect:   3,
		Voter:             true,
		Timing:            timing,
		Logger:            testLogger(name),
	}
	if ledger != nil {
		cfg.VIP = &fakeVIP{l: ledger, node: name}
		cfg.OnVIP = ledger.onVIP(name)
	}
	return cfg
}

// startNode starts a cluster and registers its shutdown with the test. A
// node whose VIP is a fakeVIP is added to its ledger's watch.
func startNode(t testing.TB, cfg Config) *Cluster {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", cfg.NodeName, err)
	}
	if v, ok := cfg.VIP.(*fakeVIP); ok {
		v.l.watch.add(c)
	}
	t.Cleanup(func() {
		if err := c.Shutdown(); err != nil {
			t.Logf("shutdown %s: %v", cfg.NodeName, err)
		}
	})
	return c
}

// startFarm starts n voter-eligible nodes named n1..nN, all joining n1.
func startFarm(t testing.TB, n, expect int, ledger *vipLedger) []*Cluster {
	t.Helper()
	return startFarmWith(t, n, expect, ledger, nil)
}

// startFarmWith is startFarm with each node's configuration passed through
// adjust (when not nil) before the node starts.
func startFarmWith(t testing.TB, n, expect int, ledger *vipLedger, adjust func(*Config)) []*Cluster {
	t.Helper()
	var nodes []*Cluster
	var seed string
	for i := 1; i <= n; i++ {
		cfg := testConfig(t, fmt.Sprintf("n%d", i), ledger)
		cfg.BootstrapExpect = expect
		if adjust != nil {
			adjust(&cfg)
		}
		if seed != "" {
			cfg.Join = []string{seed}
		}
		c := startNode(t, cfg)
		if seed == "" {
			seed = c.GossipAddr().String()
		}
		nodes = append(nodes, c)
	}
	return nodes
}

// startOneVoterTLSFarm starts a TLS farm of three nodes of which only n1
// is voter-eligible (n2 and n3 stay outside raft) and returns its nodes
// and n1 once it serves.
func startOneVoterTLSFarm(t *testing.T) ([]*Cluster, *Cluster) {
	t.Helper()
	p := newTestPKI(t, testFarm)
	nodes := startFarmWith(t, 3, 1, nil, func(c *Config) {
		p.withTLS(c)
		c.Voter = c.NodeName == "n1"
	})
	return nodes, waitSingleServer(t, nodes, 20*time.Second)
}

// eventually is testutil.Eventually.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, timeout, what, cond)
}

// servingNodes returns the nodes for which Serving reports true.
func servingNodes(nodes []*Cluster) []*Cluster {
	var out []*Cluster
	for _, c := range nodes {
		if c == nil {
			continue
		}
		if _, ok := c.Serving(); ok {
			out = append(out, c)
		}
	}
	return out
}

// waitSingleServer waits until exactly one of nodes serves and returns it.
func waitSingleServer(t testing.TB, nodes []*Cluster, timeout time.Duration) *Cluster {
	t.Helper()
	var leader *Cluster
	eventually(t, timeout, "exactly one serving node", func() bool {
		s := servingNodes(nodes)
		if len(s) > 1 {
			t.Fatalf("%d nodes serve at once", len(s))
		}
		if len(s) == 1 {
			leader = s[0]
			return true
		}
		return false
	})
	return leader
}

// crash stops c without leaving: memberlist and raft just go silent, as when
// the process dies. Shutdown afterwards is a no-op.
func (c *Cluster) crash() {
	c.shutOnce.Do(func() { c.shutErr = c.shutdown() })
}

// nodeNamed returns the node with the given name.
func nodeNamed(nodes []*Cluster, name string) *Cluster {
	for _, c := range nodes {
		if c != nil && c.cfg.NodeName == name {
			return c
		}
	}
	return nil
}

// without returns nodes without x.
func without(nodes []*Cluster, x *Cluster) []*Cluster {
	var out []*Cluster
	for _, c := range nodes {
		if c != x {
			out = append(out, c)
		}
	}
	return out
}

// member returns the named member from c's view.
func member(c *Cluster, name string) (Member, bool) {
	for _, m := range c.Members() {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}
