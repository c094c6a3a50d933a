//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"
)

// turnFarm is a namespace farm of three servers, each running coturn on
// its own address and an usher agent that offers it as service "turn"
// and balances stock STUN/TURN requests to the VIP over it (vip_service).
type turnFarm struct {
	t        *testing.T
	c        *chaosCluster
	bins     coturnBins
	dir      string
	coturns  []*coturn
	balancer netip.AddrPort // the VIP, turnPort
}

// turnHealthBound is how long after a coturn's death the balancer may
// still name it: the agent's check runs every 250 ms with a 200 ms
// timeout, the flip is republished at once, and the leader rebuilds the
// view.
const turnHealthBound = 1500 * time.Millisecond

// turnServiceConfig is an agent's configuration file: service "turn" at
// coturn address addr, its load the count of coturn's relay sockets (one
// per allocation) from relayMin, checked by a STUN Binding every 250 ms,
// and the balancer address's stock requests balanced over it.
func turnServiceConfig(addr netip.AddrPort, relayMin int) string {
	return fmt.Sprintf(`vip_service = "turn"
policy_spread = 1   # capacities of 100: the default band of 10 sessions would let a preloaded coturn in early

service "turn" {
  address  = %[1]q
  capacity = 100
  load {
    source     = "sockets"
    protocol   = "udp"
    port_range = "%[2]d-%[3]d"
    state      = "bound"
    interval   = "250ms"
    timeout    = "200ms"
  }
  check "coturn" {
    type     = "stun"
    address  = %[1]q
    interval = "250ms"
    timeout  = "200ms"
  }
}
`, addr.String(), relayMin, relayMin+turnRelayPorts-1)
}

// startTurnFarm builds the farm: coturns first, then the agents, and waits
// until the balancer names every coturn.
func startTurnFarm(t *testing.T) *turnFarm {
	t.Helper()
	bins := ensureCoturn(t)
	farm := NewFarm(t, 3)
	bin, err := usherBin()
	if err != nil {
		t.Fatalf("building usher: %v", err)
	}
	tf := &turnFarm{t: t, bins: bins, dir: t.TempDir(), balancer: netip.AddrPortFrom(farm.VIP(), turnPort)}
	c := &chaosCluster{
		t: t, topo: farm, netns: true, profile: "fast", timing: profiles["fast"],
		dir: tf.dir, bin: bin, keepalive: chaosKeepalive, deadAfter: chaosDeadAfter,
	}
	tf.c = c
	for i, h := range farm.Servers() {
		tf.coturns = append(tf.coturns, tf.startCoturn(i, h))
		c.addAgent(h)
	}
	var names []string
	for _, a := range c.agents {
		names = append(names, a.name)
	}
	c.creds = farmCredentials(t, bin, c.dir, names)
	for i, a := range c.agents {
		conf := filepath.Join(c.dir, a.name+".hcl")
		if err := os.WriteFile(conf, []byte(turnServiceConfig(tf.coturns[i].addr, turnRelayMin(i))), 0o600); err != nil {
			t.Fatal(err)
		}
		c.creds[a.name] = append(c.creds[a.name], "-config", conf)
		a.useFarmTLS()
		a.start()
	}
	t.Cleanup(func() {
		c.mu.Lock()
		c.finished = true
		c.mu.Unlock()
	})
	c.waitHealthy(30 * time.Second)
	tf.waitNamed(tf.addrs(), 20*time.Second)
	return tf
}

// startCoturn starts coturn number i (relay ports of its own) on h.
func (tf *turnFarm) startCoturn(i int, h *Host) *coturn {
	return startCoturn(tf.t, tf.bins.server, h, tf.c.topo.Client(), tf.dir, turnRelayMin(i))
}

// turnRelayMin is the first relay port of coturn number i.
func turnRelayMin(i int) int { return 49200 + i*turnRelayPorts }

// addrs returns every coturn's address.
func (tf *turnFarm) addrs() []netip.AddrPort {
	var out []netip.AddrPort
	for _, c := range tf.coturns {
		out = append(out, c.addr)
	}
	return out
}

// waitNamed sends stock Allocates to the balancer from the client host
// until each of want has been named, and fails after timeout.
func (tf *turnFarm) waitNamed(want []netip.AddrPort, timeout time.Duration) {
	tf.t.Helper()
	ac := newAllocateConn(tf.t, tf.c.topo.Client())
	seen := make(map[netip.AddrPort]bool)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if got, err := ac.allocate(tf.balancer, 200*time.Millisecond); err == nil {
			seen[got] = true
		}
		missing := 0
		for _, w := range want {
			if !seen[w] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	tf.t.Fatalf("the balancer did not name every one of %v within %v (named %v)", want, timeout, seen)
}

// checkExits fails the test if an agent exited on its own.
func (tf *turnFarm) checkExits() {
	tf.c.mu.Lock()
	defer tf.c.mu.Unlock()
	for _, u := range tf.c.unexpected {
		tf.t.Errorf("unexpected exit: %s", u)
	}
}

// uclientTimeout bounds one turnutils_uclient run: a successful one takes
// about five seconds, most of it the program's own wait for stragglers.
const uclientTimeout = 12 * time.Second

// TestTURN runs coturn, Debian's TURN server, behind an usher farm in the
// namespace farm: three servers each with a coturn and an agent offering
// it as service "turn", vip_service = "turn". It checks that coturn's own
// client, turnutils_uclient, allocates and relays through the balancer
// address over UDP and TCP, following the 300; that a dead coturn is no
// longer named within turnHealthBound while sessions on the others go on;
// that clients allocating across the leader agent's death succeed by
// retrying; and that headless chromium and firefox, given the balancer
// address as their STUN and TURN server, open a data channel over coturn
// relays (see testBrowser; skipped with USHER_E2E_BROWSER=0), also when
// they start allocating across the leader agent's death (see
// testBrowserLeaderDeath).
func TestTURN(t *testing.T) {
	if reason := farmUnsupported(); reason != "" {
		t.Skip(reason)
	}
	tf := startTurnFarm(t)
	t.Run("redirect", tf.testRedirect)
	t.Run("browser", tf.testBrowser)
	t.Run("load", tf.testLoad)
	t.Run("coturn-death", tf.testCoturnDeath)
	t.Run("browser-leader-death", func(t *testing.T) { tf.testBrowserLeaderDeath(t, false) })
	t.Run("browser-host-death", func(t *testing.T) { tf.testBrowserLeaderDeath(t, true) })
	t.Run("leader-death", tf.testLeaderDeath)
	tf.checkExits()
}

// testRedirect runs turnutils_uclient through the balancer address over
// UDP and TCP at once: only by following the 300 to a coturn can it
// allocate and relay, as the VIP runs no TURN server. A stock Binding to
// the balancer address, what a stun: ICE server gets, must be answered
// with a Binding success.
func (tf *turnFarm) testRedirect(t *testing.T) {
	if err := stunBinding(tf.c.topo.Client(), tf.balancer, time.Second); err != nil {
		t.Errorf("stock Binding to the balancer address %v: %v", tf.balancer, err)
	}
	var wg sync.WaitGroup
	for _, tcp := range []bool{false, true} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := runUclient(tf.c.topo.Client(), tf.bins.uclient, tf.balancer, tcp, 2, uclientTimeout)
			if r.err != nil {
				t.Errorf("uclient (tcp %v) through %v: %v\n%s", tcp, tf.balancer, r.err, tail(r.out, 20))
				return
			}
			t.Logf("uclient (tcp %v) through %v: allocated and relayed in %v", tcp, tf.balancer, r.dur.Round(time.Millisecond))
		}()
	}
	wg.Wait()
}

// testCoturnDeath kills the coturn of a follower's host while its agent
// lives, sends a stock Allocate to the balancer every 50 ms for twice
// turnHealthBound, and fails if the dead coturn is named later than
// turnHealthBound after the kill (timed by the answer's arrival, against
// the clock read before the kill, so the figure is an upper bound). A
// uclient session relaying on another coturn across the death must not
// lose a packet. The coturn then restarts and must be named again.
func (tf *turnFarm) testCoturnDeath(t *testing.T) {
	leader := tf.c.waitLeader(10 * time.Second)
	var victim, bystander *coturn
	for _, ct := range tf.coturns {
		switch {
		case ct.host.Name == leader.name:
		case victim == nil:
			victim = ct
		default:
			bystander = ct
		}
	}
	client := tf.c.topo.Client()
	tf.waitNamed([]netip.AddrPort{victim.addr}, 5*time.Second)

	// A session on the bystander relays 150 messages 20 ms apart: three
	// seconds, across the death.
	done := make(chan uclientRun, 1)
	go func() { done <- runUclient(client, tf.bins.uclient, bystander.addr, false, 150, 20*time.Second) }()
	time.Sleep(500 * time.Millisecond)

	ac := newAllocateConn(t, client)
	t0 := Monotonic()
	if err := victim.proc.Kill(); err != nil {
		t.Fatalf("kill coturn on %s: %v", victim.host.Name, err)
	}
	var last time.Duration
	named := make(map[netip.AddrPort]int)
	for Monotonic()-t0 < 2*turnHealthBound {
		got, err := ac.allocate(tf.balancer, 45*time.Millisecond)
		recv := Monotonic()
		if err == nil {
			named[got]++
			if got == victim.addr {
				last = recv - t0
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("coturn on %s killed: last named %v after the kill (bound %v); answers after it: %v",
		victim.host.Name, last.Round(time.Millisecond), turnHealthBound, named)
	if last > turnHealthBound {
		t.Errorf("dead coturn %v named %v after its death, bound %v", victim.addr, last, turnHealthBound)
	}
	if named[bystander.addr] == 0 {
		t.Errorf("the balancer never named the bystander's live coturn after the death: %v", named)
	}
	if r := <-done; r.err != nil {
		t.Errorf("session on %s's coturn disturbed by the death of %s's: %v\n%s", bystander.host.Name, victim.host.Name, r.err, tail(r.out, 20))
	}

	for i, ct := range tf.coturns {
		if ct == victim {
			tf.coturns[i] = tf.startCoturn(i, ct.host)
		}
	}
	tf.waitNamed([]netip.AddrPort{victim.addr}, 10*time.Second)
}

// leaderDeathBudget is how long a client that starts allocating around
// the leader agent's death may take to succeed, retrying: the failover
// (a new leader takes the balancer address and announces it) plus a
// uclient run or two. A client still sent to the dead leader's host, as
// it would be without the new holder's announcement, fails for longer:
// the dead leader's address lives on for its kernel lifetime and the
// client's neighbour entry for longer still.
const leaderDeathBudget = 15 * time.Second

// testLeaderDeath kills the leader agent while clients allocate: four
// clients, UDP and TCP, start turnutils_uclient runs through the balancer
// address 300 ms and 100 ms before the kill and after it, each retrying
// until a run succeeds, for at most leaderDeathBudget.
func (tf *turnFarm) testLeaderDeath(t *testing.T) {
	leader := tf.c.waitLeader(10 * time.Second)
	client := tf.c.topo.Client()
	offsets := []time.Duration{-300 * time.Millisecond, -100 * time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond}
	type outcome struct {
		tries int
		took  time.Duration
		err   error
		first error // the first failed run's, for the log
		tcp   bool
		start time.Duration
	}
	outcomes := make([]outcome, len(offsets))
	kill := time.Now().Add(-offsets[0])
	var wg sync.WaitGroup
	for i, off := range offsets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(kill.Add(off)))
			o := outcome{tcp: i%2 == 1, start: off}
			begin := time.Now()
			for time.Since(begin) < leaderDeathBudget {
				o.tries++
				r := runUclient(client, tf.bins.uclient, tf.balancer, o.tcp, 2, uclientTimeout)
				if o.err = r.err; r.err == nil {
					break
				}
				if o.first == nil {
					o.first = r.err
				}
				time.Sleep(200 * time.Millisecond)
			}
			o.took = time.Since(begin)
			outcomes[i] = o
		}()
	}
	time.Sleep(time.Until(kill))
	leader.kill()
	wg.Wait()
	sort.Slice(outcomes, func(i, j int) bool { return outcomes[i].start < outcomes[j].start })
	for _, o := range outcomes {
		t.Logf("client started %v from the kill of leader %s (tcp %v): %d runs, %v (first failure: %v)",
			o.start, leader.name, o.tcp, o.tries, o.took.Round(time.Millisecond), o.first)
		if o.err != nil {
			t.Errorf("client started %v from the leader's kill (tcp %v) never succeeded in %d runs: %v", o.start, o.tcp, o.tries, o.err)
		}
	}
}

// turnPreload is how many allocations testLoad makes on one coturn before
// the clients come, and turnClients how many clients then come through
// the balancer.
const (
	turnPreload = 30
	turnClients = 60
)

// testLoad makes turnPreload allocations straight on the first coturn,
// waits until the farm's view shows them (its load source counts coturn's
// relay sockets), then sends turnClients TURN clients through the
// balancer, each allocating on the coturn named: the busy coturn must get
// none until the others catch up, so that the allocations per coturn end
// with max/mean at most 1.1.
func (tf *turnFarm) testLoad(t *testing.T) {
	client := tf.c.topo.Client()
	user, pass := turnRESTCredential(turnSecret, turnUser)
	busy := tf.coturns[0].addr
	count := map[netip.AddrPort]int{}
	for range turnPreload {
		if err := newAllocateConn(t, client).authAllocate(busy, user, pass, time.Second); err != nil {
			t.Fatalf("preloading %v: %v", busy, err)
		}
		count[busy]++
	}
	tf.waitServiceLoad(tf.c.agents[0].name, turnPreload, 10*time.Second)
	for i := range turnClients {
		a := newAllocateConn(t, client)
		alt, err := a.allocate(tf.balancer, time.Second)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		if err := a.authAllocate(alt, user, pass, time.Second); err != nil {
			t.Fatalf("client %d on %v: %v", i, alt, err)
		}
		count[alt]++
		time.Sleep(20 * time.Millisecond)
	}
	most := 0
	for _, n := range count {
		most = max(most, n)
	}
	mean := float64(turnPreload+turnClients) / float64(len(tf.coturns))
	t.Logf("allocations per coturn after %d preloaded on %v and %d clients: %v (max/mean %.2f)", turnPreload, busy, turnClients, count, float64(most)/mean)
	if float64(most)/mean > 1.1 {
		t.Errorf("allocations per coturn %v: max/mean %.2f, want at most 1.1", count, float64(most)/mean)
	}
}

// waitServiceLoad waits until every running agent's view of service turn
// (the leader's among them) shows node name with at least want sessions.
func (tf *turnFarm) waitServiceLoad(name string, want int, timeout time.Duration) {
	tf.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		seen := 0
		for _, a := range tf.c.agents {
			if !a.running() {
				seen++
				continue
			}
			var view struct {
				Services map[string][]struct {
					ID       string `json:"id"`
					Sessions int    `json:"sessions"`
				} `json:"services"`
			}
			if err := a.do("GET", "/v1/view", &view); err != nil {
				last = err.Error()
				continue
			}
			for _, n := range view.Services["turn"] {
				if n.ID == name && n.Sessions >= want {
					seen++
				}
			}
			b, _ := json.Marshal(view)
			last = a.name + ": " + string(b)
		}
		if seen == len(tf.c.agents) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	tf.t.Fatalf("not every agent's view shows %s with %d turn sessions within %v; last: %s", name, want, timeout, last)
}
