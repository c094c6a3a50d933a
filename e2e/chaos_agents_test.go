//go:build linux

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usherlb/usher/internal/farm"
	"github.com/usherlb/usher/internal/pki"
	"github.com/usherlb/usher/node"
)

// BinEnv names an environment variable holding the path of a built usher
// binary; when it is unset the chaos tests build one, once per test process.
const BinEnv = "USHER_BIN"

// Ports every agent uses on its own host address.
const (
	gossipPort  = 7946 // raft takes the next one
	sessionPort = 3479
	httpPort    = 7480
	vipPort     = 3478
)

// binDir is the temporary directory the built binary lives in, removed by
// TestMain.
var binDir string

// usherBin returns the agent binary: $USHER_BIN, or one built from
// ./cmd/usher into a temporary directory on first use.
var usherBin = sync.OnceValues(func() (string, error) {
	if p := os.Getenv(BinEnv); p != "" {
		return p, nil
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join("/usr/local/go/bin", "go")
	}
	dir, err := os.MkdirTemp("", "usher-e2e-bin-")
	if err != nil {
		return "", err
	}
	binDir = dir
	out := filepath.Join(dir, "usher")
	cmd := exec.Command(goTool, "build", "-o", out, "github.com/usherlb/usher/cmd/usher")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/usher: %w: %s", err, b)
	}
	return out, nil
})

// profileTiming holds the figures of a cluster timing profile the checks
// derive their bounds from (see cluster.Profile).
type profileTiming struct {
	heartbeat, lease time.Duration
}

var profiles = map[string]profileTiming{
	"lan":   {heartbeat: time.Second, lease: 500 * time.Millisecond},
	"fast":  {heartbeat: 300 * time.Millisecond, lease: 150 * time.Millisecond},
	"rapid": {heartbeat: 100 * time.Millisecond, lease: 50 * time.Millisecond},
}

// agentStatus is the part of GET /v1/status the scenarios read.
type agentStatus struct {
	Node      string   `json:"node"`
	Leader    string   `json:"leader"`
	Term      uint64   `json:"term"`
	Serving   bool     `json:"serving"`
	Members   int      `json:"members"`
	Voters    []string `json:"voters"`
	Changes   uint64   `json:"leadership_changes"`
	Lapses    uint64   `json:"lease_lapses"`
	Writes    uint64   `json:"raft_store_writes"`
	Sessions  int      `json:"sessions"`
	Draining  bool     `json:"draining"`
	VIPHolder string   `json:"vip_holder"`
}

// viewNodeJSON is one node of GET /v1/view.
type viewNodeJSON struct {
	ID       string `json:"id"`
	Addr     string `json:"addr"`
	Capacity int    `json:"capacity"`
	Draining bool   `json:"draining"`
	Starting bool   `json:"starting"`
	Suspect  bool   `json:"suspect"`
}

// agent is one usher agent process of a chaosCluster, restartable under the
// same name, address and data directory.
type agent struct {
	c    *chaosCluster
	host *Host
	name string
	// api asks the agent's API from the agent's own host; useFarmTLS
	// sets it up for HTTPS.
	api farm.API

	mu       sync.Mutex
	proc     *Proc
	expected bool   // the test ended (or is ending) the current process
	stopped  bool   // SIGSTOPped
	lives    []life // every process the agent ran, in order
}

// life is the span of one agent process on Monotonic: from just before it
// started to the instant the test killed or stopped it (0 while it runs).
type life struct{ from, to time.Duration }

// chaosCluster runs one usher agent per server host of a topology, all
// voters of one Raft cluster, and records what the invariant checks need.
type chaosCluster struct {
	t       *testing.T
	topo    Topology
	netns   bool
	profile string
	timing  profileTiming
	dir     string
	bin     string
	agents  []*agent
	creds   map[string][]string // each agent's label, gossip key and TLS flags
	extra   []string            // further flags for every agent
	// nice, when not zero, starts every agent at that nice value, as the
	// packaged systemd unit does (Nice=).
	nice int

	keepalive, deadAfter time.Duration

	// sizes probes the VIP and every session endpoint with requests of
	// every kind for the size rule; polls watches who serves. Both run
	// from the cluster's start to verify.
	sizes *prober
	polls *statusPoller

	mu         sync.Mutex
	unexpected []string // agents that exited without the test asking
	finished   bool
}

// Client timers handed out by every agent (USHER-TIMERS).
const (
	chaosKeepalive = 250 * time.Millisecond
	chaosDeadAfter = time.Second
)

// newChaosCluster builds the topology (a namespace farm when netns, else a
// loop farm) with n servers and starts an agent on each.
func newChaosCluster(t *testing.T, netns bool, n int, profile string) *chaosCluster {
	t.Helper()
	return startChaosCluster(t, chaosTopology(t, netns, n), netns, profile)
}

// chaosTopology builds a namespace farm with n servers when netns, else a
// loop farm.
func chaosTopology(t *testing.T, netns bool, n int) Topology {
	t.Helper()
	if netns {
		return NewFarm(t, n)
	}
	return NewLoopFarm(t, n)
}

// startChaosCluster starts an agent on each server of topo (with extra
// flags appended to each agent's command line) and the observers, and
// waits until the farm is healthy.
func startChaosCluster(t *testing.T, topo Topology, netns bool, profile string, extra ...string) *chaosCluster {
	t.Helper()
	c := prepareChaosCluster(t, topo, netns, profile, extra...)
	c.launch()
	return c
}

// prepareChaosCluster is startChaosCluster up to the agents' start: their
// credentials are made, so a caller may add flags of an agent's own to
// c.creds before launch.
func prepareChaosCluster(t *testing.T, topo Topology, netns bool, profile string, extra ...string) *chaosCluster {
	t.Helper()
	bin, err := usherBin()
	if err != nil {
		t.Fatalf("building usher: %v", err)
	}
	c := &chaosCluster{
		t: t, topo: topo, netns: netns, profile: profile, timing: profiles[profile],
		dir: t.TempDir(), bin: bin, keepalive: chaosKeepalive, deadAfter: chaosDeadAfter,
		extra: extra,
	}
	if d := os.Getenv(LogDirEnv); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if c.dir, err = os.MkdirTemp(d, "chaos-"); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range topo.Servers() {
		c.addAgent(h)
	}
	var names []string
	for _, a := range c.agents {
		names = append(names, a.name)
	}
	c.creds = farmCredentials(t, bin, c.dir, names)
	return c
}

// addAgent adds an agent for host h, not started yet.
func (c *chaosCluster) addAgent(h *Host) *agent {
	a := &agent{c: c, host: h, name: h.Name}
	a.api = farm.API{
		HTTP: &http.Client{
			Timeout: time.Second,
			Transport: &http.Transport{
				DisableKeepAlives: true,
				// Dial from the agent's own namespace: its API stays
				// reachable while its link is down or it is isolated.
				DialContext: dialFrom(h),
			},
		},
		Addr:  netip.AddrPortFrom(h.Addr, httpPort),
		Token: apiToken,
	}
	c.agents = append(c.agents, a)
	return a
}

// launch starts the agents of a prepared cluster and the observers, and
// waits until the farm is healthy.
func (c *chaosCluster) launch() {
	c.t.Helper()
	for _, a := range c.agents {
		a.useFarmTLS()
		a.start()
	}
	c.sizes = startSizeProber(c, sizeProbeEvery)
	c.polls = startStatusPoller(c)
	c.waitHealthy(30 * time.Second)
}

// sizeProbeEvery is the size prober's send interval: with three agents
// each of its ten targets (four at the VIP, two per agent) gets a request
// every 20 ms, often enough that every kind is answered in the short healthy spells of
// majority-kill.
const sizeProbeEvery = 2 * time.Millisecond

// eventsPath is the agent's vip_events file; it survives restarts.
func (a *agent) eventsPath() string { return filepath.Join(a.c.dir, a.name+".vip.jsonl") }

// sessionAddr is the address the agent's sessions are redirected to.
func (a *agent) sessionAddr() netip.AddrPort {
	return netip.AddrPortFrom(a.host.Addr, sessionPort)
}

// addrs returns the addresses the agent serves on its host.
func (a *agent) addrs() farm.Addrs {
	return farm.Addrs{
		Name:    a.name,
		Gossip:  netip.AddrPortFrom(a.host.Addr, gossipPort),
		Session: a.sessionAddr(),
		HTTP:    a.api.Addr,
	}
}

// spec returns the agent's command line, but for extra: its addresses,
// every agent as a seed, the VIP in netlink mode on a namespace farm and
// in bind mode on a loop farm, and the token.
func (a *agent) spec(extra []string) farm.AgentSpec {
	c := a.c
	spec := farm.AgentSpec{
		Addrs:    a.addrs(),
		VIP:      netip.AddrPortFrom(c.topo.VIP(), vipPort),
		Profile:  c.profile,
		Expect:   min(len(c.agents), 5),
		DataDir:  filepath.Join(c.dir, a.name),
		LogLevel: chaosLogLevel(),
		APIToken: apiToken,
		Extra:    extra,
	}
	if c.netns {
		spec.VIPMode, spec.Interface = "netlink", a.host.Iface
	}
	for _, o := range c.agents {
		spec.Seeds = append(spec.Seeds, netip.AddrPortFrom(o.host.Addr, gossipPort))
	}
	return spec
}

// args returns the agent's command line: spec's, then the chaos suite's
// flags, the agent's credentials (and flags of its own) and the cluster's
// extra flags, in that order, so that each may override the one before.
func (a *agent) args() []string {
	c := a.c
	extra := []string{
		"-keepalive-interval", c.keepalive.String(),
		"-dead-after", c.deadAfter.String(),
		"-backups", "2",
		// Every probe is a new session; the load scenario sends
		// hundreds of thousands, which must not fill the farm.
		"-capacity", "100000000",
		// The load scenario measures the probe path at capacity from one
		// generator, far above any one prefix's limit.
		"-source-limit", "off",
		// The probers keep one ticketless session on every server
		// (keepaliveBare), and every client of a host is one source.
		"-require-ticket=false",
		"-max-sessions-per-source", "100000000",
		"-vip-events", a.eventsPath(),
	}
	extra = append(extra, c.creds[a.name]...)
	return a.spec(append(extra, c.extra...)).Args()
}

// start launches the agent process (again, after a kill: same name, address
// and data directory).
func (a *agent) start() {
	c := a.c
	bin, args := c.bin, a.args()
	if c.nice != 0 {
		// nice(1) execs the agent in place: every thread of it runs at
		// that nice value from the first.
		bin, args = "nice", append([]string{"-n", strconv.Itoa(c.nice), c.bin}, args...)
	}
	from := Monotonic()
	p := a.host.StartIn(c.t, filepath.Join(c.dir, "logs"), bin, args...)
	a.mu.Lock()
	a.proc, a.expected, a.stopped = p, false, false
	a.lives = append(a.lives, life{from: from})
	a.mu.Unlock()
	go a.watch(p)
}

// watch records an exit the test did not cause.
func (a *agent) watch(p *Proc) {
	<-p.Done()
	a.mu.Lock()
	unexpected := a.proc == p && !a.expected
	a.mu.Unlock()
	if !unexpected {
		return
	}
	_, err := p.Exited()
	why := tail(p.Log(), 3)
	for _, line := range strings.Split(p.Log(), "\n") {
		if strings.HasPrefix(line, "panic:") || strings.HasPrefix(line, "fatal error:") {
			why = line
			break
		}
	}
	a.c.mu.Lock()
	if !a.c.finished {
		a.c.unexpected = append(a.c.unexpected, fmt.Sprintf("%s (log %s) exited on its own: %v: %s", a.name, p.LogPath(), err, why))
	}
	a.c.mu.Unlock()
}

// running reports whether the agent's process is up and not paused.
func (a *agent) running() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.proc == nil || a.stopped {
		return false
	}
	done, _ := a.proc.Exited()
	return !done
}

// kill SIGKILLs the agent and returns the instant it was killed.
func (a *agent) kill() time.Duration {
	a.mu.Lock()
	a.expected = true
	p := a.proc
	a.mu.Unlock()
	at := Monotonic()
	if err := p.Kill(); err != nil {
		a.c.t.Errorf("kill %s: %v", a.name, err)
	}
	a.ended(at)
	return at
}

// term stops the agent gracefully (SIGTERM) and returns when it exited.
func (a *agent) term() time.Duration {
	a.mu.Lock()
	a.expected = true
	p := a.proc
	a.mu.Unlock()
	if err := p.Term(); err != nil {
		a.c.t.Errorf("term %s: %v", a.name, err)
	}
	at := Monotonic()
	a.ended(at)
	return at
}

// ended records that the current process ended at instant at.
func (a *agent) ended(at time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := len(a.lives); n > 0 && a.lives[n-1].to == 0 {
		a.lives[n-1].to = at
	}
}

// history returns a copy of the agent's lives.
func (a *agent) history() []life {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]life(nil), a.lives...)
}

// stop pauses the agent (SIGSTOP); cont resumes it.
func (a *agent) stop() {
	a.mu.Lock()
	a.stopped = true
	p := a.proc
	a.mu.Unlock()
	if err := p.Stop(); err != nil {
		a.c.t.Errorf("stop %s: %v", a.name, err)
	}
}

func (a *agent) cont() {
	a.mu.Lock()
	p := a.proc
	a.mu.Unlock()
	if err := p.Cont(); err != nil {
		a.c.t.Errorf("cont %s: %v", a.name, err)
	}
	a.mu.Lock()
	a.stopped = false
	a.mu.Unlock()
}

// dialFrom returns a dialer that connects from inside h's namespace.
func dialFrom(h *Host) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (conn net.Conn, err error) {
		err = h.Do(func() error {
			var d net.Dialer
			conn, err = d.DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
}

// apiToken is the chaos farm's API token: its agents listen on addresses
// other than loopback, which needs one.
const apiToken = "chaos-farm-api-token"

// useFarmTLS makes the agent's API client speak HTTPS, checking that the
// agent's certificate is the farm's and names the agent, when the agent
// serves its API over TLS: with the tls block, an API off loopback does by
// default (the namespace farm's), one on loopback does not.
func (a *agent) useFarmTLS() {
	if a.host.Addr.IsLoopback() {
		return
	}
	caPEM, err := os.ReadFile(farmCAFile(a.c.dir))
	if err != nil {
		a.c.t.Fatal(err)
	}
	v, err := pki.NewVerifier(caPEM)
	if err != nil {
		a.c.t.Fatal(err)
	}
	a.api.HTTP.Transport.(*http.Transport).TLSClientConfig = node.APIClientTLS(v, a.name)
	a.api.HTTPS = true
}

// do sends one API request and decodes a JSON answer into out (if not nil).
func (a *agent) do(method, path string, out any) error {
	return a.api.DoJSON(context.Background(), method, path, out)
}

// status reads GET /v1/status.
func (a *agent) status() (agentStatus, error) {
	var st agentStatus
	err := a.api.GetJSON(context.Background(), "/v1/status", &st)
	return st, err
}

// view reads the nodes of GET /v1/view.
func (a *agent) view() ([]viewNodeJSON, error) {
	var v struct {
		Nodes []viewNodeJSON `json:"nodes"`
	}
	err := a.api.GetJSON(context.Background(), "/v1/view", &v)
	return v.Nodes, err
}

// waitOffered waits until the view of the leader l offers every server of
// want for the named service: in the view, neither draining (which
// includes failing health checks) nor suspect.
func (c *chaosCluster) waitOffered(l *agent, service string, want []netip.AddrPort, timeout time.Duration) {
	c.t.Helper()
	var last string
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var view struct {
			Services map[string][]viewNodeJSON `json:"services"`
		}
		if err := l.api.GetJSON(context.Background(), "/v1/view", &view); err != nil {
			last = err.Error()
			time.Sleep(100 * time.Millisecond)
			continue
		}
		offered := map[string]bool{}
		for _, n := range view.Services[service] {
			offered[n.Addr] = !n.Draining && !n.Suspect
		}
		missing := 0
		for _, w := range want {
			if !offered[w.String()] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		last = fmt.Sprint(view.Services[service])
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("%s did not offer every one of %v for %s within %v: %s", l.name, want, service, timeout, last)
}

// live returns the agents whose process runs and is not paused.
func (c *chaosCluster) live() []*agent {
	var out []*agent
	for _, a := range c.agents {
		if a.running() {
			out = append(out, a)
		}
	}
	return out
}

// byName returns the agent named name, or nil.
func (c *chaosCluster) byName(name string) *agent {
	for _, a := range c.agents {
		if a.name == name {
			return a
		}
	}
	return nil
}

// leader returns the live agent that serves the VIP, once every live agent
// names it leader, or nil.
func (c *chaosCluster) leader() *agent {
	var serving *agent
	var leaderName string
	for _, a := range c.live() {
		st, err := a.status()
		if err != nil {
			return nil
		}
		if leaderName == "" {
			leaderName = st.Leader
		}
		if st.Leader == "" || st.Leader != leaderName {
			return nil
		}
		if st.Serving {
			serving = a
		}
	}
	if serving == nil || serving.name != leaderName {
		return nil
	}
	return serving
}

// waitLeader waits for a leader that serves, as leader() sees it.
func (c *chaosCluster) waitLeader(timeout time.Duration) *agent {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if l := c.leader(); l != nil {
			return l
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("no serving leader within %v", timeout)
	return nil
}

// waitHealthy waits until every running agent sees all agents as members
// and voters and one of them serves.
func (c *chaosCluster) waitHealthy(timeout time.Duration) *agent {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if last = c.healthy(); last == nil {
			if l := c.leader(); l != nil {
				return l
			}
			last = errors.New("no agreed serving leader")
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("cluster not healthy within %v: %v", timeout, last)
	return nil
}

// healthy reports why the cluster is not whole, or nil.
func (c *chaosCluster) healthy() error {
	want := min(len(c.agents), 5)
	for _, a := range c.agents {
		if !a.running() {
			return fmt.Errorf("%s is down", a.name)
		}
		st, err := a.status()
		if err != nil {
			return fmt.Errorf("%s: %w", a.name, err)
		}
		if st.Members < len(c.agents) || len(st.Voters) < want {
			return fmt.Errorf("%s sees %d members, voters %v", a.name, st.Members, st.Voters)
		}
		v, err := a.view()
		if err != nil {
			return fmt.Errorf("%s: view: %w", a.name, err)
		}
		fresh := 0
		for _, n := range v {
			if !n.Suspect && !n.Draining && !n.Starting {
				fresh++
			}
		}
		if fresh < len(c.agents) {
			return fmt.Errorf("%s's view has %d usable nodes", a.name, fresh)
		}
	}
	return nil
}

// chaosLogLevel is the agents' log level: $USHER_CHAOS_LOG_LEVEL, or info.
func chaosLogLevel() string {
	if l := os.Getenv(LogLevelEnv); l != "" {
		return l
	}
	return "info"
}
