//go:build linux

package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usherlb/usher/client"
	"github.com/usherlb/usher/cluster"
)

// Environment variables that size a chaos run. The defaults are the short
// pass `go test ./e2e/` (and so CI) runs; `make chaos` sets them for the
// long statistics run.
const (
	// RepsEnv is how many times each fault is repeated (default 2).
	RepsEnv = "USHER_CHAOS_REPS"
	// ProfilesEnv lists the timing profiles to run, comma-separated
	// (default "fast").
	ProfilesEnv = "USHER_CHAOS_PROFILES"
	// TopologiesEnv lists the topologies, "netns" (root only) and "loop"
	// (default both).
	TopologiesEnv = "USHER_CHAOS_TOPOLOGIES"
	// QuietEnv is how long the no-fault scenario watches for spurious
	// leader changes (default 3s).
	QuietEnv = "USHER_CHAOS_QUIET"
	// LoadedEnv is how long the loaded no-fault scenario runs (default:
	// the quiet duration).
	LoadedEnv = "USHER_CHAOS_LOADED"
	// LogLevelEnv is the agents' log level (default "info"; "debug"
	// shows raft's elections, with USHER_E2E_LOGDIR to keep the logs).
	LogLevelEnv = "USHER_CHAOS_LOG_LEVEL"
)

// chaosConfig is a chaos run's size, from the environment.
type chaosConfig struct {
	reps       int
	profiles   []string
	topologies []string
	quiet      time.Duration
	loaded     time.Duration
	results    string
}

func loadChaosConfig(t *testing.T) chaosConfig {
	cfg := chaosConfig{reps: 2, profiles: []string{"fast"}, topologies: []string{"netns", "loop"}, quiet: 3 * time.Second}
	if s := os.Getenv(RepsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive integer", RepsEnv, s)
		}
		cfg.reps = n
	}
	list := func(env string, dst *[]string, valid func(string) bool) {
		if s := os.Getenv(env); s != "" {
			*dst = nil
			for _, f := range strings.Split(s, ",") {
				if f = strings.TrimSpace(f); f != "" {
					if !valid(f) {
						t.Fatalf("%s: unknown value %q", env, f)
					}
					*dst = append(*dst, f)
				}
			}
		}
	}
	list(ProfilesEnv, &cfg.profiles, func(s string) bool { _, ok := profiles[s]; return ok })
	list(TopologiesEnv, &cfg.topologies, func(s string) bool { return s == "netns" || s == "loop" })
	if s := os.Getenv(QuietEnv); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("%s=%q: want a positive duration", QuietEnv, s)
		}
		cfg.quiet = d
	}
	cfg.loaded = cfg.quiet
	if s := os.Getenv(LoadedEnv); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("%s=%q: want a positive duration", LoadedEnv, s)
		}
		cfg.loaded = d
	}
	cfg.results = os.Getenv(ResultsEnv)
	return cfg
}

// scenario is one kind of fault, run on a fresh three-node cluster.
type scenario struct {
	name      string
	netnsOnly bool // needs links to cut
	// cluster starts the scenario's farm; nil means newChaosCluster's
	// three plain agents.
	cluster func(t *testing.T, netns bool, profile string) *chaosCluster
	run     func(t *testing.T, c *chaosCluster, res *chaosResult, cfg chaosConfig)
}

// scenarios lists every fault the suite injects.
var scenarios = []scenario{
	{name: "leader-death", run: leaderDeath},
	{name: "leader-kill", netnsOnly: true, run: leaderProcessKill},
	{name: "follower-kill", run: followerKill},
	{name: "leader-pause", run: leaderPause},
	{name: "leader-isolate", netnsOnly: true, run: leaderIsolate},
	{name: "majority-kill", run: majorityKill},
	{name: "drain", run: drain},
	{name: "rolling-restart", run: rollingRestart},
	{name: "service-death", cluster: newServiceCluster, run: serviceDeath},
	{name: "quiet", run: quiet},
	{name: "quiet-loaded", run: quietLoaded},
	{name: "busy-host", netnsOnly: true, cluster: newNicedCluster, run: busyHost},
	{name: "cpu-hog", netnsOnly: true, cluster: newNicedCluster, run: cpuHog},
	{name: "flood", netnsOnly: true, cluster: newFloodCluster, run: flood},
}

// TestChaos runs every scenario on every configured topology and profile,
// checks the invariants of each, and writes statistics when $USHER_CHAOS_RESULTS
// is set.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos suite skipped in -short mode")
	}
	cfg := loadChaosConfig(t)
	for _, topo := range cfg.topologies {
		t.Run(topo, func(t *testing.T) {
			netns := topo == "netns"
			if netns {
				if reason := farmUnsupported(); reason != "" {
					t.Skip(reason)
				}
			}
			for _, profile := range cfg.profiles {
				t.Run(profile, func(t *testing.T) {
					for _, sc := range scenarios {
						t.Run(sc.name, func(t *testing.T) {
							if sc.netnsOnly && !netns {
								t.Skip("needs a namespace farm: loopback links cannot be cut")
							}
							res := newResult(sc.name, profile, topo)
							start := time.Now()
							var c *chaosCluster
							if sc.cluster != nil {
								c = sc.cluster(t, netns, profile)
							} else {
								c = newChaosCluster(t, netns, 3, profile)
							}
							sc.run(t, c, res, cfg)
							res.Seconds = time.Since(start).Seconds()
							res.LoadEnd = loadAvg()
							res.log(t.Logf)
							if cfg.results != "" {
								if err := res.write(cfg.results); err != nil {
									t.Errorf("writing results: %v", err)
								}
							}
						})
					}
				})
			}
		})
	}
	if cfg.results != "" {
		if err := writeTable(cfg.results); err != nil {
			t.Errorf("writing results table: %v", err)
		}
	}
}

// probeEvery is the prober's send interval, the resolution of every gap
// measured at the VIP.
const probeEvery = 5 * time.Millisecond

// answerTimeout bounds the wait for the VIP to answer again after a fault.
const answerTimeout = 15 * time.Second

// serverOf returns each session's server now.
func serverOf(s *chaosSession) netip.AddrPort { return s.s.Server() }

// split returns the sessions currently on server ap and the others.
func split(ss []*chaosSession, ap netip.AddrPort) (on, off []*chaosSession) {
	for _, s := range ss {
		if s.s.Server() == ap {
			on = append(on, s)
		} else {
			off = append(off, s)
		}
	}
	return on, off
}

// leaderDeath kills the leader again and again: on a namespace farm as a
// host death (its link goes down, then the process is SIGKILLed), on a loop
// farm by SIGKILL alone. Each time it measures the VIP failover gap (the
// death to the first answered probe), the reassignment time of the dead
// leader's sessions and how long the new leader kept assigning to the dead
// node, checks that sessions elsewhere were not disturbed, then restarts
// the node under the same name, address and data directory.
func leaderDeath(t *testing.T, c *chaosCluster, res *chaosResult, cfg chaosConfig) {
	leaderKill(t, c, res, cfg, c.netns)
}

// leaderProcessKill is leaderDeath without the host dying: on a namespace
// farm only the agent is SIGKILLed, so its host keeps the VIP on its
// interface (until the address's kernel lifetime runs out) and keeps
// answering ARP for it.
func leaderProcessKill(t *testing.T, c *chaosCluster, res *chaosResult, cfg chaosConfig) {
	leaderKill(t, c, res, cfg, false)
}

// leaderKill kills the leader cfg.reps times, as a host death (link down,
// then SIGKILL) when hostDeath, else as a process crash (SIGKILL).
func leaderKill(t *testing.T, c *chaosCluster, res *chaosResult, cfg chaosConfig, hostDeath bool) {
	pr := startProber(c, probeEvery)
	ss := openSessions(c, 6)
	for rep := range cfg.reps {
		l := c.waitHealthy(30 * time.Second)
		c.settle(ss, answerTimeout)
		if _, ok := pr.firstAfter(Monotonic(), 5*time.Second); !ok {
			t.Fatalf("rep %d: the VIP does not answer before the fault", rep)
		}
		victims, others := split(ss, l.sessionAddr())
		var t0 time.Duration
		if hostDeath {
			if err := l.host.LinkDown(); err != nil {
				t.Fatal(err)
			}
			t0 = Monotonic()
			l.kill()
		} else {
			t0 = l.kill()
		}
		a, ok := pr.firstAfter(t0, answerTimeout)
		gap := answerTimeout
		if !ok {
			res.violation("no-failover")
			t.Errorf("rep %d: no answer at the VIP within %v of %s's death", rep, answerTimeout, l.name)
		} else {
			gap = a.recv - t0
			res.observe("vip-failover-gap", a.recv-t0)
			if at, ok := c.acquiredAt(a.term); ok {
				res.observe("death-to-acquire", at-t0)
				res.observe("acquire-to-answer", a.recv-at)
			}
		}
		c.measureExclusion(l, t0, res)
		took, missing := waitMoved(victims, func(*chaosSession) netip.AddrPort { return l.sessionAddr() }, t0, c.deadAfter+answerTimeout)
		// A dead leader's clients re-probe after their declare-dead
		// timeout and need the VIP back: the failover gap. Their probe
		// retransmissions back off exponentially, so once the VIP is
		// back the next one may be up to about the silence so far
		// away: allow the gap twice, plus slack.
		bound := c.deadAfter + 2*gap + 300*time.Millisecond
		for _, d := range took {
			res.observe("client-reassignment", d)
			if d > bound {
				res.violation("slow-reassignment")
				t.Errorf("rep %d: a session of %s took %v to move (bound %v)", rep, l.name, d, bound)
			}
		}
		if missing > 0 {
			res.violation("not-reassigned")
			t.Errorf("rep %d: %d sessions of %s never moved", rep, missing, l.name)
		}
		c.checkUndisturbed(others, t0, Monotonic(), res)
		if hostDeath {
			if err := l.host.LinkUp(); err != nil {
				t.Fatal(err)
			}
		}
		l.start()
		res.repDone()
	}
	c.waitHealthy(30 * time.Second)
	c.verify(pr, res)
}

// measureExclusion polls the serving leader's view after dead died at t0
// until dead is gone from it or marked suspect, and records how long that
// took.
func (c *chaosCluster) measureExclusion(dead *agent, t0 time.Duration, res *chaosResult) {
	deadline := time.Now().Add(answerTimeout)
	for time.Now().Before(deadline) {
		for _, a := range c.live() {
			if a == dead {
				continue
			}
			st, err := a.status()
			if err != nil || !st.Serving {
				continue
			}
			v, err := a.view()
			if err != nil {
				continue
			}
			excluded := true
			for _, n := range v {
				if n.ID == dead.name && !n.Suspect {
					excluded = false
				}
			}
			if excluded {
				res.observe("dead-server-exclusion", Monotonic()-t0)
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	res.violation("not-excluded")
	c.t.Errorf("%s still assignable %v after its death", dead.name, answerTimeout)
}

// followerKill SIGKILLs a follower that holds sessions, measures how soon
// its clients are reassigned and how soon the leader stops assigning to
// it, checks that sessions elsewhere were not disturbed, and restarts it
// under the same name and address.
func followerKill(t *testing.T, c *chaosCluster, res *chaosResult, cfg chaosConfig) {
	pr := startProber(c, probeEvery)
	ss := openSessions(c, 6)
	for rep := range cfg.reps {
		l := c.waitHealthy(30 * time.Second)
		c.settle(ss, answerTimeout)
		f := c.busyFollower(&ss, l)
		victims, others := split(ss, f.sessionAddr())
		t0 := f.kill()
		c.measureExclusion(f, t0, res)
		took, missing := waitMoved(victims, func(*chaosSession) netip.AddrPort { return f.sessionAddr() }, t0, c.deadAfter+answerTimeout)
		for _, d := range took {
			res.observe("client-reassignment", d)
			if d > c.deadAfter+300*time.Millisecond {
				res.violation("slow-reassignment")
				t.Errorf("rep %d: a session of %s took %v to move (bound %v)", rep, f.name, d, c.deadAfter+300*time.Millisecond)
			}
		}
		if missing > 0 {
			res.violation("not-reassigned")
			t.Errorf("rep %d: %d sessions of %s never moved", rep, missing, f.name)
		}
		c.checkUndisturbed(others, t0, Monotonic(), res)
		f.start()
		res.repDone()
	}
	c.waitHealthy(30 * time.Second)
	c.verify(pr, res)
}

// busyFollower returns the follower (any agent but l) holding the most
// sessions of *ss. While none holds any it dials more: a restarted or
// undrained node starts empty, and the least-loaded policy fills it first.
func (c *chaosCluster) busyFollower(ss *[]*chaosSession, l *agent) *agent {
	c.t.Helper()
	for range 3 {
		var f *agent
		for _, a := range c.agents {
			if n := len(mustSplit(*ss, a)); a != l && n > 0 && (f == nil || n > len(mustSplit(*ss, f))) {
				f = a
			}
		}
		if f != nil {
			return f
		}
		// Let the load reports catch up, so the new sessions go to the
		// empty nodes.
		time.Sleep(3 * cluster.DefaultPublishInterval)
		*ss = append(*ss, openSessions(c, 3)...)
		c.settle(*ss, answerTimeout)
	}
	c.t.Fatalf("no follower holds a session")
	return nil
}

// mustSplit returns the sessions currently on a's server.
func mustSplit(ss []*chaosSession, a *agent) []*chaosSession {
	on, _ := split(ss, a.sessionAddr())
	return on
}

// leaderPause freezes the leader with SIGSTOP until another node serves
// (on a loop farm, where the frozen process keeps the VIP's socket bound,
// for a fixed time), then resumes it: it wakes still believing it leads,
// and must neither answer with its old term nor overlap the new holder.
func leaderPause(t *testing.T, c *chaosCluster, res *chaosResult, cfg chaosConfig) {
	pr := startProber(c, probeEvery)
	ss := openSessions(c, 6)
	for rep := range cfg.reps {
		l := c.waitHealthy(30 * time.Second)
		c.settle(ss, answerTimeout)
		_, others := split(ss, l.sessionAddr())
		l.stop()
		t0 := Monotonic()
		if c.netns {
			if a, ok := pr.firstAfter(t0, answerTimeout); ok {
				res.observe("vip-failover-gap", a.recv-t0)
			} else {
				res.violation("no-failover")
				t.Errorf("rep %d: no answer at the VIP within %v of pausing %s", rep, answerTimeout, l.name)
			}
		}
		// Stay paused well past the election, so the new leader is
		// established when the old one wakes.
		time.Sleep(max(2*time.Second, 4*c.timing.heartbeat))
		l.cont()
		tc := Monotonic()
		nl := c.waitHealthy(30 * time.Second)
		if c.netns && nl == l {
			res.note("rep %d: the paused leader %s led again after waking", rep, l.name)
		}
		c.checkUndisturbed(others, t0, tc, res)
		res.repDone()
	}
	c.verify(pr, res)
}

// leaderIsolate cuts the leader off from its peers while the client still
// reaches it, waits for another node to serve, then heals: the cut-off
// leader must stop serving at its lease deadline and nobody may overlap.
// The client's sessions all keep their servers throughout.
func leaderIsolate(t *testing.T, c *chaosCluster, res *chaosResult, cfg chaosConfig) {
	pr := startProber(c, probeEvery)
	ss := openSessions(c, 6)
	for rep := range cfg.reps {
		l := c.waitHealthy(30 * time.Second)
		c.settle(ss, answerTimeout)
		st, err := l.status()
		if err != nil {
			t.Fatal(err)
		}
		if err := l.host.Isolate(); err != nil {
			t.Fatal(err)
		}
		t0 := Monotonic()
		// The first answer from a newer term is the failover.
		deadline := time.Now().Add(answerTimeout)
		var got bool
		for !got && time.Now().Before(deadline) {
			for _, a := range pr.snapshot() {
				if a.sent >= t0 && a.term > st.Term {
					res.observe("vip-failover-gap", a.recv-t0)
					got = true
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		if !got {
			res.violation("no-failover")
			t.Errorf("rep %d: no newer term answered within %v of isolating %s", rep, answerTimeout, l.name)
		}
		time.Sleep(2 * c.timing.heartbeat)
		if err := l.host.Heal(); err != nil {
			t.Fatal(err)
		}
		c.waitHealthy(30 * time.Second)
		// Every lease renewal that committed started before the cut, so
		// the lease ended by t0 + lease, whatever l recorded: nobody may
		// be seen serving its term after that.
		if late := Served(c.sightings(pr), st.Term, t0+c.timing.lease, 0); len(late) > 0 {
			x := late[0]
			res.violation("served-past-lease")
			t.Errorf("rep %d: %s served term %d within [%v, %v], %v after it was cut off (lease %v); %d sightings in all, %d of them by status polls",
				rep, who(x), x.Term, x.Sent, x.Recv, x.Sent-t0, c.timing.lease, len(late), named(late))
		}
		c.checkUndisturbed(ss, t0, Monotonic(), res)
		res.repDone()
	}
	c.verify(pr, res)
}

// majorityKill kills two of the three nodes, the leader among them, and
// checks what the design promises for the loss of a majority: nobody
// serves at the VIP once the old leader's lease is over (no split brain);
// the sessions on the survivor carry on undisturbed; every session of a
// dead server falls back to the survivor, the one live USHER-BACKUP it was
// given, within its declare-dead timeout plus one unanswered probe round,
// and keeps working there. Then the dead nodes come back and the VIP must
// answer again.
func majorityKill(t *testing.T, c *chaosCluster, res *chaosResult, cfg chaosConfig) {
	pr := startProber(c, probeEvery)
	for rep := range cfg.reps {
		l := c.waitHealthy(30 * time.Second)
		// Fresh sessions every time: a session keeps the backups of the
		// answer that placed it, and skips backups it lost within its
		// loop guard, so one that already survived a majority loss may
		// know no live backup the next time.
		ss := openSessions(c, 9)
		dead := []*agent{l}
		var survivor *agent
		for _, a := range c.agents {
			switch {
			case a == l:
			case len(dead) < 2:
				dead = append(dead, a)
			default:
				survivor = a
			}
		}
		c.settle(ss, answerTimeout)
		kept, victims := split(ss, survivor.sessionAddr())
		var t0 time.Duration
		for i, a := range dead {
			at := a.kill()
			if i == 0 {
				t0 = at
			}
		}
		// No answer at the VIP once the old leader's lease is over.
		quiet := t0 + c.timing.lease
		waitMoved(victims, func(*chaosSession) netip.AddrPort { return netip.AddrPort{} }, t0, c.deadAfter+answerTimeout)
		fellBack := c.checkFallback(rep, victims, survivor, t0, res)
		// Hold the quorum-less state a while longer.
		time.Sleep(max(time.Second, 3*c.timing.heartbeat))
		tq := Monotonic()
		for _, x := range Served(c.sightings(pr), 0, quiet, tq) {
			res.violation("served-without-quorum")
			t.Errorf("rep %d: %s served (term %d) within [%v, %v] after the kill, without a quorum", rep, who(x), x.Term, x.Sent-t0, x.Recv-t0)
			break
		}
		c.checkUndisturbed(kept, t0, tq, res)
		// A fallen-back session's silence ends with its first answer
		// from the survivor, within a keepalive interval of the move.
		for i, s := range victims {
			if at, ok := fellBack[s]; ok {
				c.checkSession(fmt.Sprintf("session %d of a dead server, on the survivor since %v", i, at), s, at+c.gapBound(), tq, res)
			}
		}
		tr := Monotonic()
		for _, a := range dead {
			a.start()
		}
		if a, ok := pr.firstAfter(tr, answerTimeout); ok {
			res.observe("restart-to-vip-answer", a.recv-tr)
		} else {
			res.violation("no-recovery")
			t.Errorf("rep %d: the VIP stayed silent %v after the majority came back", rep, answerTimeout)
		}
		c.waitHealthy(30 * time.Second)
		for _, s := range ss {
			s.close()
		}
		res.repDone()
	}
	c.verify(pr, res)
}

// checkFallback checks that every session of victims, whose server died at
// t0 while the balancer fell silent, moved to the survivor through a
// backup (BackupUsed) within its declare-dead timeout plus one unanswered
// probe round, and returns when each that did moved.
func (c *chaosCluster) checkFallback(rep int, victims []*chaosSession, survivor *agent, t0 time.Duration, res *chaosResult) map[*chaosSession]time.Duration {
	c.t.Helper()
	bound := c.deadAfter + probeRound + 300*time.Millisecond
	out := map[*chaosSession]time.Duration{}
	for _, s := range victims {
		var at time.Duration
		used := false
		for _, ev := range s.eventsSince(t0) {
			if ev.Kind == client.BackupUsed {
				at, used = mono(ev.At), ev.Server == survivor.sessionAddr()
				break
			}
		}
		if !used {
			res.violation("no-backup")
			c.t.Errorf("rep %d: a session of a dead server did not fall back to the survivor %s; its events since the kill: %v; stats %+v",
				rep, survivor.sessionAddr(), s.eventsSince(t0), s.s.Stats())
			continue
		}
		res.observe("backup-fallback", at-t0)
		if at-t0 > bound {
			res.violation("slow-backup")
			c.t.Errorf("rep %d: a session of a dead server took %v to fall back to %s (bound %v)", rep, at-t0, survivor.name, bound)
		}
		out[s] = at
	}
	return out
}

// drain drains a follower that holds sessions through the leader's API and
// measures the time until every one of its sessions moved; new probes must
// stop going to it; then it is undrained.
func drain(t *testing.T, c *chaosCluster, res *chaosResult, cfg chaosConfig) {
	pr := startProber(c, probeEvery)
	ss := openSessions(c, 6)
	for rep := range cfg.reps {
		l := c.waitHealthy(30 * time.Second)
		c.settle(ss, answerTimeout)
		f := c.busyFollower(&ss, l)
		victims, others := split(ss, f.sessionAddr())
		t0 := Monotonic()
		if err := l.do("PUT", "/v1/drain?node="+f.name, nil); err != nil {
			t.Fatalf("drain %s: %v", f.name, err)
		}
		took, missing := waitMoved(victims, func(*chaosSession) netip.AddrPort { return f.sessionAddr() }, t0, answerTimeout)
		if missing > 0 {
			res.violation("not-drained")
			t.Errorf("rep %d: %d sessions still on draining %s after %v", rep, missing, f.name, answerTimeout)
		} else if len(took) > 0 {
			res.observe("time-to-drain", slicesMax(took))
		}
		time.Sleep(exclusionBound / 2)
		for _, a := range pr.snapshot() {
			if a.sent >= t0+exclusionBound/2 && a.server == f.sessionAddr() {
				res.violation("assigned-while-draining")
				t.Errorf("rep %d: a probe %v after the drain was assigned to %s", rep, a.sent-t0, f.name)
				break
			}
		}
		c.checkUndisturbed(others, t0, Monotonic(), res)
		if err := l.do("DELETE", "/v1/drain?node="+f.name, nil); err != nil {
			t.Fatalf("undrain %s: %v", f.name, err)
		}
		res.repDone()
	}
	c.waitHealthy(30 * time.Second)
	c.verify(pr, res)
}

// slicesMax returns the largest of d.
func slicesMax(d []time.Duration) time.Duration {
	m := d[0]
	for _, x := range d[1:] {
		m = max(m, x)
	}
	return m
}

// rollingRestart stops (SIGTERM) and restarts every node in turn, the
// leader last, waiting for the cluster to be whole between nodes, in
// cfg.reps/10 passes (at least one; each counts as one repetition): every
// session of the stopped node must find a server again within its
// declare-dead timeout plus the failover gap (as in leaderKill), counted
// from the process's exit, and the others must not notice.
func rollingRestart(t *testing.T, c *chaosCluster, res *chaosResult, cfg chaosConfig) {
	pr := startProber(c, probeEvery)
	ss := openSessions(c, 6)
	passes := max(1, cfg.reps/10)
	for range passes {
		l := c.waitHealthy(30 * time.Second)
		order := make([]*agent, 0, len(c.agents))
		for _, a := range c.agents {
			if a != l {
				order = append(order, a)
			}
		}
		order = append(order, l)
		for _, a := range order {
			c.settle(ss, answerTimeout)
			victims, others := split(ss, a.sessionAddr())
			t0 := Monotonic()
			te := a.term()
			gap := answerTimeout
			if ans, ok := pr.firstAfter(te, answerTimeout); ok {
				gap = ans.recv - te
			}
			bound := c.deadAfter + 2*gap + 300*time.Millisecond
			took, missing := waitMoved(victims, func(*chaosSession) netip.AddrPort { return a.sessionAddr() }, t0, answerTimeout)
			for _, d := range took {
				res.observe("client-reassignment", d)
				if t0+d-te > bound {
					res.violation("slow-reassignment")
					t.Errorf("a session of stopped %s took %v from its exit to move (bound %v)", a.name, t0+d-te, bound)
				}
			}
			if missing > 0 {
				res.violation("not-reassigned")
				t.Errorf("%d sessions of stopped %s never moved", missing, a.name)
			}
			c.checkUndisturbed(others, t0, Monotonic(), res)
			a.start()
			c.waitHealthy(30 * time.Second)
			res.observe("node-restart-to-healthy", Monotonic()-t0)
		}
		res.repDone()
	}
	c.verify(pr, res)
}

// quiet runs the farm with no fault at all and counts leader changes,
// which must be zero.
func quiet(t *testing.T, c *chaosCluster, res *chaosResult, cfg chaosConfig) {
	quietRun(t, c, res, cfg, 0)
}

// quietLoaded is quiet with the probe path loaded at 90% of the capacity
// measured just before.
func quietLoaded(t *testing.T, c *chaosCluster, res *chaosResult, cfg chaosConfig) {
	cfg.quiet = cfg.loaded
	quietRun(t, c, res, cfg, 0.9)
}

// quietRun watches a fault-free farm for cfg.quiet, with the probe path
// loaded at the given fraction of its measured capacity (0: no load), and
// fails on any leader change and on any session disturbed: the load goes
// to the VIP, the sessions to their servers.
func quietRun(t *testing.T, c *chaosCluster, res *chaosResult, cfg chaosConfig, load float64) {
	pr := startProber(c, probeEvery)
	ss := openSessions(c, 6)
	l := c.waitHealthy(30 * time.Second)
	c.settle(ss, answerTimeout)
	if load > 0 {
		capacity := probeCapacity(c, 2*time.Second)
		g := startLoad(c, load*capacity)
		defer func() {
			g.close()
			sent, answered := g.sent.Load(), g.answered.Load()

			res.note("probe path capacity %.0f probes/s (closed loop, %d clients, generator on the same 2 cores); load %.0f probes/s; %d sent, %d answered (%.1f%%)",
				capacity, loadWorkers, load*capacity, sent, answered, 100*float64(answered)/float64(max(sent, 1)))
		}()
	}
	before, err := l.status()
	if err != nil {
		t.Fatal(err)
	}
	t0 := Monotonic()
	time.Sleep(cfg.quiet)
	after, err := l.status()
	if err != nil {
		t.Fatal(err)
	}
	terms := map[uint64]bool{}
	for _, a := range pr.snapshot() {
		if a.sent >= t0 {
			terms[a.term] = true
		}
	}
	changes := max(int(after.Changes-before.Changes), len(terms)-1)
	if after.Term != before.Term || !after.Serving || changes > 0 {
		res.violation("spurious-leader-change")
		t.Errorf("leader %s: term %d -> %d, serving %v, %d leadership changes in %v without faults",
			l.name, before.Term, after.Term, after.Serving, changes, cfg.quiet)
	}
	res.note("%d spurious leader changes in %v without faults", changes, cfg.quiet)
	c.checkUndisturbed(ss, t0, Monotonic(), res)
	res.repDone()
	c.verify(pr, res)
}

// acquiredAt returns when some agent took the VIP in term, from the
// agents' vip_events files.
func (c *chaosCluster) acquiredAt(term uint64) (time.Duration, bool) {
	for _, a := range c.agents {
		evs, err := readVIPEvents(a.eventsPath())
		if err != nil {
			continue
		}
		for _, ev := range evs {
			if ev.Event == "acquire" && ev.Term == term {
				return time.Duration(ev.MonoNs), true
			}
		}
	}
	return 0, false
}
