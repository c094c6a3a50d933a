//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// browserDeathEcho is how long each case of the page in
// TestTURN/browser-leader-death waits for its echo, counted from the
// gate's opening: room for a browser's Allocate retransmissions across
// the failover (about 0.4 s in profile fast) and their backoff.
const browserDeathEcho = 30 * time.Second

// browserDeathTries is how many times the page of
// TestTURN/browser-leader-death runs its TCP case, browserDeathRetry
// apart: a browser whose TCP connection to the balancer address is
// refused does not try again, as an application that gathers again would.
const (
	browserDeathTries = 8
	browserDeathRetry = 500 * time.Millisecond
)

// testBrowserLeaderDeath kills the leader while both browsers allocate
// through the balancer address: its agent only or, with hostDeath, its
// whole host (link down, then the agent SIGKILLed; its coturn dies with
// it, and the new leader must not send anyone there although the dead
// node's last report is still fresh: cluster.Member.AwaitingReport). It opens each browser's page (both cases
// at once: stun: and turn: over UDP, turn: over TCP) and holds it at its
// gate until every browser has loaded it, then SIGKILLs the leader's
// agent, as testLeaderDeath does, and opens the gate: the pages'
// first STUN and TURN requests go to a balancer address whose holder is
// dead. Over UDP only the browsers' own retransmissions can reach the new
// leader, and every UDP case must end with a relay candidate on a coturn
// and a working data channel. Over TCP the dead agent's host, which keeps
// the address until the new leader's announcement moves the clients,
// refuses the connection, and neither browser tries that server again in
// the same gathering: the page gathers again, browserDeathRetry later, as
// an application would, and that must succeed. The killed agent comes
// back at the end, so the farm is whole for later subtests.
func (tf *turnFarm) testBrowserLeaderDeath(t *testing.T, hostDeath bool) {
	if os.Getenv(BrowserEnv) == "0" {
		t.Skipf("%s=0: browser part skipped", BrowserEnv)
	}
	leader := tf.c.waitLeader(10 * time.Second)
	cases := tf.browserCases()
	for i := range cases {
		if cases[i].Proto == "tcp" {
			cases[i].Tries = browserDeathTries
		}
	}
	page := browserPageFor(t, cases, map[string]any{"gate": "go", "parallel": true,
		"echoMs": browserDeathEcho.Milliseconds(), "retryMs": browserDeathRetry.Milliseconds()})
	srv, procs, launched := tf.launchBrowsers(t, page)
	tf.waitGate(t, srv, procs, launched)

	defer tf.revive(t, leader, hostDeath)
	var opened time.Duration
	t0 := tf.killLeader(t, leader, hostDeath, func() { srv.open(); opened = Monotonic() })
	killWall := time.Now().Add(-(Monotonic() - t0))
	t.Logf("leader %s killed (host death %v) %v after the browsers' launch; the pages' gate opened %v after the kill",
		leader.name, hostDeath, killWall.Sub(launched).Round(time.Millisecond), (opened - t0).Round(time.Millisecond))

	got := awaitResults(t, srv, procs, browserDeathEcho+10*time.Second)
	acquired, ok := tf.acquireAfter(leader, t0)
	if !ok {
		t.Fatalf("no agent took the balancer address after %s's death", leader.name)
	}
	t.Logf("the new leader took the balancer address %v after the kill", (acquired - t0).Round(time.Millisecond))
	startBy := acquired - t0
	if hostDeath {
		startBy = max(startBy, hostDeathWindow)
	}
	exercised := 0
	for _, b := range browsers {
		if results, ok := got[b.name]; ok {
			t.Run(b.name, func(t *testing.T) {
				exercised += tf.checkDeathResults(t, cases, results, killWall, acquired-t0, startBy)
			})
		}
	}
	if exercised == 0 {
		t.Errorf("no browser case started within %v of the kill: the death was not tested", startBy)
	}
}

// launchBrowsers serves page to every installed browser and starts them
// all on the client host; the browsers are killed when the test ends.
func (tf *turnFarm) launchBrowsers(t *testing.T, page string) (*pageServer, map[string]*Proc, time.Time) {
	t.Helper()
	bins := make(map[string]string)
	pages := make(map[string]string)
	for _, b := range browsers {
		p, err := b.lookup()
		if err != nil {
			t.Logf("%s: not installed, left out: %v", b.name, err)
			continue
		}
		bins[b.name], pages[b.name] = p, page
	}
	if len(bins) == 0 {
		t.Skip("no browser installed")
	}
	client := tf.c.topo.Client()
	srv := serveBrowserPages(t, client, pages)
	launched := time.Now()
	procs := make(map[string]*Proc)
	for _, b := range browsers {
		bin, ok := bins[b.name]
		if !ok {
			continue
		}
		dir := filepath.Join(tf.dir, "death-"+b.name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		args := b.args(bin, srv.url(client, b.name), dir)
		p := client.StartIn(t, filepath.Join(tf.dir, "logs"), args[0], args[1:]...)
		t.Cleanup(func() { _ = p.Kill() })
		procs[b.name] = p
	}
	return srv, procs, launched
}

// awaitResults collects every browser's results, failing the test for
// each browser whose page has not reported within timeout.
func awaitResults(t *testing.T, srv *pageServer, procs map[string]*Proc, timeout time.Duration) map[string][]browserResult {
	t.Helper()
	got := make(map[string][]browserResult)
	deadline := time.After(timeout)
	for name, p := range procs {
		select {
		case got[name] = <-srv.results[name]:
		case <-deadline:
			t.Errorf("%s: the page reported nothing within %v; its log:\n%s", name, timeout, tail(p.Log(), 20))
			deadline = time.After(0)
		}
	}
	return got
}

// waitGate waits until every browser's page has reached its gate.
func (tf *turnFarm) waitGate(t *testing.T, srv *pageServer, procs map[string]*Proc, launched time.Time) {
	t.Helper()
	timeout := time.After(browserTimeout)
	for waiting := len(procs); waiting > 0; waiting-- {
		select {
		case name := <-srv.arrived:
			t.Logf("%s: page loaded and at its gate %v after launch", name, time.Since(launched).Round(time.Millisecond))
		case <-timeout:
			for name, p := range procs {
				t.Logf("%s's log:\n%s", name, tail(p.Log(), 20))
			}
			t.Fatalf("the pages did not all reach their gate within %v", browserTimeout)
		}
	}
}

// hostDeathWindow is how long after a host death the dead node's last load
// report is still fresh (three publish intervals of 250 ms): a case that
// starts after the failover but within it still tests that the new leader
// sends no one to the dead host's coturn.
const hostDeathWindow = 750 * time.Millisecond

// checkDeathResults checks one browser's cases after the leader's death
// and logs when each got its relay candidate and its echo, from the kill
// at killWall; failover is the kill to the new leader's taking the
// balancer address. Each case must end with an echo over a relay; it
// returns how many cases started by startBy after the kill (the failover:
// a later case never met the dead leader; after a host death,
// hostDeathWindow if that is later), which exercised the death. A browser
// slow to start its cases (Firefox, on a loaded machine) is logged, not
// failed; the caller fails if no case at all was exercised. A
// case the page ran again (TCP: a refused connection is not retried by
// the browsers) must have failed its first run for want of a relay
// candidate, not later.
func (tf *turnFarm) checkDeathResults(t *testing.T, cases []browserCase, got []browserResult, killWall time.Time, failover, startBy time.Duration) (exercised int) {
	coturns := tf.coturnAddrs()
	kill := killWall.UnixMilli()
	since := func(ms int64) string {
		if ms == 0 {
			return "never"
		}
		return (time.Duration(ms-kill) * time.Millisecond).String()
	}
	for i, c := range cases {
		if i >= len(got) {
			t.Errorf("%s: no result", c.Name)
			continue
		}
		r := got[i]
		started := r.Started
		if r.Attempts > 1 {
			started = r.FirstStarted
			t.Logf("%s: run %d times; the first, started %s after the kill, failed: %s", c.Name, r.Attempts, since(started), r.FirstError)
			if !strings.Contains(r.FirstError, "without a relay candidate") {
				t.Errorf("%s: the first run failed for another reason than a relay candidate missing: %s", c.Name, r.FirstError)
			}
		}
		t.Logf("%s: last run started %s after the kill, relay candidate at %s, echo at %s (failover at %v)",
			c.Name, since(r.Started), since(r.RelayAt), since(r.EchoAt), failover.Round(time.Millisecond))
		checkBrowserResult(t, c, r, coturns)
		if started-kill > startBy.Milliseconds() {
			t.Logf("%s: the case started %s after the kill, later than %v (failover %v): it did not test the death", c.Name, since(started), startBy, failover)
			continue
		}
		exercised++
	}
	return exercised
}

// killLeader kills the leader agent, as a host death (link down, then
// SIGKILL) when hostDeath, calls died as soon as it is dead (before the
// SIGKILLed process has been reaped, after a host death) and returns the
// instant of the death.
func (tf *turnFarm) killLeader(t *testing.T, l *agent, hostDeath bool, died func()) time.Duration {
	if !hostDeath {
		t0 := l.kill()
		died()
		return t0
	}
	if err := l.host.LinkDown(); err != nil {
		t.Fatal(err)
	}
	t0 := Monotonic()
	died()
	l.kill()
	return t0
}

// revive brings a killed agent back (its host's link too, after a host
// death) and waits until the farm is whole and the leader offers every
// coturn. (It does not wait for the balancer to name each: the coturn
// that lost its allocations is the least loaded, and rightly takes every
// new one until it catches up.)
func (tf *turnFarm) revive(t *testing.T, a *agent, hostDeath bool) {
	if hostDeath {
		if err := a.host.LinkUp(); err != nil {
			t.Fatal(err)
		}
	}
	a.start()
	l := tf.c.waitHealthy(30 * time.Second)
	tf.c.waitOffered(l, "turn", tf.addrs(), 20*time.Second)
}

// acquireAfter returns the first instant after t0 at which an agent other
// than dead took the balancer address, from the agents' -vip-events files.
func (tf *turnFarm) acquireAfter(dead *agent, t0 time.Duration) (time.Duration, bool) {
	var first time.Duration
	for _, a := range tf.c.agents {
		if a == dead {
			continue
		}
		evs, err := readVIPEvents(a.eventsPath())
		if err != nil {
			continue
		}
		for _, ev := range evs {
			at := time.Duration(ev.MonoNs)
			if ev.Event == "acquire" && at > t0 && (first == 0 || at < first) {
				first = at
			}
		}
	}
	return first, first != 0
}
