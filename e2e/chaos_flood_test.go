//go:build linux

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usherlb/usher/client"
	"github.com/usherlb/usher/internal/stats"
)

// Environment of the flood scenario (flood in TestChaos).
const (
	// FloodEnv is how long each attack, and the unattacked baseline,
	// runs (default 3s; `make flood` runs 60s, and from one minute on
	// the acceptance is enforced).
	FloodEnv = "USHER_CHAOS_FLOOD"
	// FloodCapEnv caps the saturation rate, in datagrams per second
	// (default 20000).
	FloodCapEnv = "USHER_CHAOS_FLOOD_CAP"
)

// The flood scenario's legitimate load and acceptance (issue 15).
const (
	// legitRate is how many sessions per second the legitimate clients
	// open, each with the client library from the client host.
	legitRate = 200
	// legitLife is how long each legitimate session keeps sending
	// keepalives to its server before it closes.
	legitLife = time.Second
	// legitRetries is the legitimate clients' probe retransmissions: the
	// library's default RTO, and a round of four transmissions (about
	// 3.75 s), so a failed setup is known to have sent four probes.
	legitRetries = 3
	// legitDialTimeout bounds a setup beyond the round, as a safety.
	legitDialTimeout = 10 * time.Second
	// floodMinAnswered is the share of the legitimate probe datagrams
	// that must be answered under every attack.
	floodMinAnswered = 0.99
	// floodMaxP99Ratio bounds the setup p99 under attack against the
	// unattacked baseline's of the same run.
	floodMaxP99Ratio = 2.0
	// floodStrictFrom is the shortest window whose acceptance fails the
	// test: shorter ones (make test's) only record it.
	floodStrictFrom = time.Minute
	// floodHintRate is the USHER-LOST-SERVER hint flood's rate.
	floodHintRate = 1000
	// floodSources is how many spoofed sources the spoofed floods use.
	floodSources = 1000
	// floodCapacityFor is how long the probe path's capacity is measured
	// before the windows.
	floodCapacityFor = time.Second
	// floodSettle separates the windows: the last sessions close, the
	// counters settle.
	floodSettle = 500 * time.Millisecond
	// floodEndGrace is how long a flood process may take past its window
	// to stop and report.
	floodEndGrace = 10 * time.Second
	// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat's
	// CPU times.
	clockTicks = 100
)

// floodConfig is the flood scenario's size, from the environment.
type floodConfig struct {
	window  time.Duration
	rateCap float64
}

func loadFloodConfig(t *testing.T) floodConfig {
	t.Helper()
	fc := floodConfig{window: 3 * time.Second, rateCap: 20000}
	if s := os.Getenv(FloodEnv); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("%s=%q: want a positive duration", FloodEnv, s)
		}
		fc.window = d
	}
	if s := os.Getenv(FloodCapEnv); s != "" {
		n, err := strconv.ParseFloat(s, 64)
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a positive number of datagrams per second", FloodCapEnv, s)
		}
		fc.rateCap = n
	}
	return fc
}

// floodFigures is what a flood run measured, as the results file records
// it.
type floodFigures struct {
	// WindowSeconds is each window's length.
	WindowSeconds float64 `json:"window_seconds"`
	// LegitSessionsPerS and LegitSessionSeconds describe the legitimate
	// load: sessions opened per second, and how long each lived.
	LegitSessionsPerS   int     `json:"legit_sessions_per_s"`
	LegitSessionSeconds float64 `json:"legit_session_seconds"`
	// CapacityPerS is the closed-loop rate measured first in the run
	// from the client host (probeCapacity): with the per-source limit on,
	// what one address gets answered, not the probe path's capacity
	// (which the unlimited farms of the suite measure at 40,000 probes/s
	// and more here). SaturationPerS, the rate the saturating floods aim
	// at, is RateCapPerS.
	CapacityPerS   float64 `json:"capacity_per_s"`
	RateCapPerS    float64 `json:"rate_cap_per_s"`
	SaturationPerS float64 `json:"saturation_per_s"`
	// Strict says whether a missed acceptance failed the test.
	Strict bool `json:"strict"`
	// MinAnsweredPct and MaxP99Ratio are the acceptance.
	MinAnsweredPct float64 `json:"min_answered_pct"`
	MaxP99Ratio    float64 `json:"max_p99_ratio"`
	// Windows are the baseline, then each attack.
	Windows []*floodWindow `json:"windows"`
}

// floodWindow is one window's figures.
type floodWindow struct {
	Attack  string `json:"attack"`
	What    string `json:"what"`
	Sources int    `json:"sources,omitempty"`
	// TargetPerS is the rate aimed at; AttackSent and AttackPerS what
	// the generator sent and achieved.
	TargetPerS float64 `json:"target_per_s,omitempty"`
	AttackSent int64   `json:"attack_sent"`
	AttackPerS float64 `json:"attack_per_s"`
	// The legitimate sessions opened in the window: tried, set up,
	// refused by an error answer, and the share set up.
	SessionsTried   int     `json:"sessions_tried"`
	SessionsSetUp   int     `json:"sessions_set_up"`
	SessionsRefused int     `json:"sessions_refused"`
	SessionPct      float64 `json:"sessions_set_up_pct"`
	// Their probe datagrams: sent, answered (one per round that got an
	// answer), and the share answered.
	ProbesSent     int     `json:"probes_sent"`
	ProbesAnswered int     `json:"probes_answered"`
	ProbePct       float64 `json:"probes_answered_pct"`
	SetupP50Ms     float64 `json:"setup_p50_ms"`
	SetupP99Ms     float64 `json:"setup_p99_ms"`
	SetupMaxMs     float64 `json:"setup_max_ms"`
	// Their keepalives, sent and answered.
	KeepalivesSent     int `json:"keepalives_sent"`
	KeepalivesAnswered int `json:"keepalives_answered"`
	// Leader and LeaderCPUPct: the leader at the window's start and its
	// CPU over the window, in percent of one core.
	Leader       string  `json:"leader"`
	LeaderCPUPct float64 `json:"leader_cpu_pct"`
	// Drops is how much each drop, refusal, limit or lost-server counter
	// of the agents' /metrics grew over the window, and their kernels'
	// UDP buffer errors (kernel_udp_*), summed over the agents.
	Drops map[string]float64 `json:"drops"`
	// Answered is the same for the answer counters: what the agents
	// answered, the flood's datagrams among them.
	Answered map[string]float64 `json:"answered"`
	// Verdict is "baseline", "pass" or "fail: why".
	Verdict string `json:"verdict"`
	Load    string `json:"loadavg_end"`
}

// floodAttack is one flood of the scenario; plan returns what it sends,
// nil for the baseline.
type floodAttack struct {
	name, what string
	plan       func(f *floodRun) *floodPlan
}

// saturating returns a flood of kinds from sources sources at the
// saturation rate, to the balancer address.
func saturating(sources int, kinds ...*probeKind) func(f *floodRun) *floodPlan {
	return func(f *floodRun) *floodPlan {
		return &floodPlan{sources: sources, targets: []netip.AddrPort{f.vip}, kinds: kinds, rate: f.fig.SaturationPerS}
	}
}

// floodAttacks are the scenario's windows in the order they run.
var floodAttacks = []floodAttack{
	{name: "baseline", what: "no attack"},
	{name: "one-source-stun-binding", what: "stock STUN Binding requests from one source at the saturation rate", plan: saturating(1, stockBinding)},
	{name: "one-source-turn-allocate", what: "stock TURN Allocate requests from one source at the saturation rate", plan: saturating(1, stockAllocate)},
	{name: "one-source-usher-padded", what: "Usher probes padded as clients pad them, from one source at the saturation rate", plan: saturating(1, probePadded)},
	{name: "one-source-usher-bare", what: "bare Usher probes (40 bytes) from one source at the saturation rate", plan: saturating(1, probeBare)},
	{name: "spoofed-1000", what: "the four requests above in turn from 1000 spoofed sources, at the same total rate", plan: saturating(floodSources, stockBinding, stockAllocate, probePadded, probeBare)},
	{name: "keepalive-flood", what: "ticketless keepalives at every node's session endpoint from 1000 spoofed sources at the saturation rate", plan: func(f *floodRun) *floodPlan {
		var to []netip.AddrPort
		for _, a := range f.c.agents {
			to = append(to, a.sessionAddr())
		}
		return &floodPlan{sources: floodSources, targets: to, kinds: []*probeKind{ticketlessKeepalive}, rate: f.fig.SaturationPerS}
	}},
	{name: "lost-server-hints", what: "Usher probes whose USHER-LOST-SERVER names non-members, from 1000 spoofed sources at 1000/s", plan: func(f *floodRun) *floodPlan {
		return &floodPlan{sources: floodSources, targets: []netip.AddrPort{f.vip}, kinds: []*probeKind{lostServerHint}, rate: floodHintRate}
	}},
}

// floodRun is one flood scenario in progress.
type floodRun struct {
	t        *testing.T
	c        *chaosCluster
	attacker *Host
	vip      netip.AddrPort
	cfg      floodConfig
	fig      *floodFigures
}

// newFloodCluster starts the scenario's farm: three agents with today's
// defaults, started as the package starts them (nice -5), and a fourth
// host of the same switch, running none, for the attacker, whose flood
// process runs at normal priority. Each server routes the spoofed block
// out of an uplink of its own (see spoofUplink).
func newFloodCluster(t *testing.T, _ bool, profile string) *chaosCluster {
	t.Helper()
	f := NewFarm(t, 4)
	for _, h := range f.Servers()[:3] {
		if err := spoofUplink(h); err != nil {
			t.Fatal(err)
		}
	}
	c := prepareChaosCluster(t, subFarm{Farm: f, n: 3}, true, profile, floodAgentFlags...)
	c.nice = packagedNice
	c.launch()
	return c
}

// uplinkName is the device spoofUplink adds to a server host, and
// uplinkPeer its other end.
const (
	uplinkName = "uplink0"
	uplinkPeer = "uplink0p"
)

// spoofUplink routes spoofBlock, the flood's victims, out of a device in
// h's namespace that stands for the server's uplink to the internet: the
// answers to spoofed sources cost the server what sending them costs, and
// the device drops them. It is a veth pair whose other end stays down,
// without ARP (the kernel here has no dummy device): sent with no carrier,
// a datagram is dropped by the device's queue. Routed over the bridge to
// another namespace instead, every answer was also received, and dropped,
// by that namespace's stack on this machine's cores, which the victims'
// own machines would do on the internet. Reverse-path filtering on h's
// farm interface becomes loose (a route to the source exists, through any
// device), so the spoofed datagrams still come in; the farm's other
// scenarios, which isolate hosts, keep it strict.
func spoofUplink(h *Host) error {
	for _, args := range [][]string{
		{"-n", h.NS, "link", "add", uplinkName, "type", "veth", "peer", "name", uplinkPeer},
		{"-n", h.NS, "link", "set", uplinkName, "arp", "off"},
		{"-n", h.NS, "link", "set", uplinkName, "up"},
		{"-n", h.NS, "route", "add", spoofBlock.String(), "dev", uplinkName},
	} {
		if _, err := ip(args...); err != nil {
			return err
		}
	}
	return h.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv4/conf/"+h.Iface+"/rp_filter", []byte("2"), 0)
	})
}

// floodAgentFlags undo, for the flood farm, the chaos suite's relaxations
// that the attacks are about: tickets are required again, and the
// per-source limits are on. The limits key on whole addresses (/32)
// because the farm's hosts share one /24, where on the internet the
// attacker and the clients would be different networks; and the client
// host stands for a network of many clients (the legitimate ones, the
// probers and the size checks, about 700 requests a second to the
// balancer address), so its rate is set above that and the floods', at
// up to 20,000 a second, are far beyond it.
var floodAgentFlags = []string{
	"-require-ticket=true",
	"-source-limit", "on",
	"-source-limit-ipv4-prefix", "32",
	"-source-limit-rate", "2000",
	"-source-limit-burst", "4000",
}

// flood measures the legitimate clients' setups beside each attack of
// floodAttacks, after an unattacked baseline in the same run, and checks
// the acceptance (enforced only for windows of at least floodStrictFrom).
func flood(t *testing.T, c *chaosCluster, res *chaosResult, _ chaosConfig) {
	fc := loadFloodConfig(t)
	f := &floodRun{
		t: t, c: c, attacker: c.topo.(subFarm).Farm.Servers()[3],
		vip: netip.AddrPortFrom(c.topo.VIP(), vipPort), cfg: fc,
		fig: &floodFigures{
			WindowSeconds: fc.window.Seconds(), LegitSessionsPerS: legitRate, LegitSessionSeconds: legitLife.Seconds(),
			RateCapPerS: fc.rateCap, Strict: fc.window >= floodStrictFrom,
			MinAnsweredPct: 100 * floodMinAnswered, MaxP99Ratio: floodMaxP99Ratio,
		},
	}
	res.Flood = f.fig
	pr := startProber(c, probeEvery)
	c.waitHealthy(30 * time.Second)
	f.fig.CapacityPerS = probeCapacity(c, floodCapacityFor)
	f.fig.SaturationPerS = fc.rateCap
	if f.fig.SaturationPerS < 1 {
		t.Fatalf("the probe path answered %.0f probes/s when measured: no farm to flood", f.fig.CapacityPerS)
	}
	var base *floodWindow
	for _, at := range floodAttacks {
		w := f.window(at)
		f.fig.Windows = append(f.fig.Windows, w)
		if base == nil {
			base = w
			f.checkBaseline(w, res)
		} else {
			f.judge(w, base, res)
		}
		t.Logf("flood %s: %d/%d sessions set up, %d/%d probes answered (%.2f%%), setup p50 %.1f ms p99 %.1f ms, leader %s CPU %.0f%%, attack %d sent (%.0f/s), drops %v: %s",
			w.Attack, w.SessionsSetUp, w.SessionsTried, w.ProbesAnswered, w.ProbesSent, w.ProbePct, w.SetupP50Ms, w.SetupP99Ms,
			w.Leader, w.LeaderCPUPct, w.AttackSent, w.AttackPerS, w.Drops, w.Verdict)
		time.Sleep(floodSettle)
	}
	res.note("saturation rate %.0f datagrams/s (the cap); one client address gets %.0f probes/s answered in a closed loop (%d clients) within its per-source limit",
		f.fig.SaturationPerS, f.fig.CapacityPerS, loadWorkers)
	res.repDone()
	c.waitHealthy(30 * time.Second)
	c.verify(pr, res)
}

// window runs the legitimate load for one window beside attack at, and
// returns its figures.
func (f *floodRun) window(at floodAttack) *floodWindow {
	t := f.t
	w := &floodWindow{Attack: at.name, What: at.what}
	leader := f.c.waitHealthy(30 * time.Second)
	w.Leader = leader.name
	drops0, answers0 := f.drops(), f.counters(answerSeries)
	cpu0, err := procCPU(leader.pid())
	if err != nil {
		t.Fatalf("leader CPU: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.window)
	defer cancel()
	var flood *floodProc
	if at.plan != nil {
		p := at.plan(f)
		w.Sources, w.TargetPerS = p.sources, p.rate
		flood = startFlood(t, f.attacker, p, f.cfg.window)
	}
	start := time.Now()
	tally := f.legit(ctx)
	elapsed := time.Since(start)
	cpu1, err := procCPU(leader.pid())
	if err != nil {
		t.Fatalf("leader CPU: %v", err)
	}
	if flood != nil {
		if w.AttackSent, err = flood.wait(floodEndGrace); err != nil {
			t.Fatalf("%s: %v", at.name, err)
		}
		w.AttackPerS = float64(w.AttackSent) / f.cfg.window.Seconds()
		if w.AttackSent == 0 {
			t.Fatalf("%s: the generator sent nothing", at.name)
		}
	}
	// The sessions still setting up when the window closed.
	tally.wait()
	w.LeaderCPUPct = 100 * float64(cpu1-cpu0) / clockTicks / elapsed.Seconds()
	w.Drops, w.Answered = grew(drops0, f.drops()), grew(answers0, f.counters(answerSeries))
	tally.fill(w)
	w.Load = loadAvg()
	return w
}

// checkBaseline fails the test when the unattacked farm itself is far
// from serving the legitimate load: a broken harness or farm, not a
// figure.
func (f *floodRun) checkBaseline(w *floodWindow, res *chaosResult) {
	w.Verdict = "baseline"
	if w.SessionsTried == 0 || w.SessionPct < 90 {
		f.c.fail(res, "flood-baseline", "unattacked: %d of %d legitimate sessions set up", w.SessionsSetUp, w.SessionsTried)
	}
}

// judge records whether w meets the acceptance against base; a miss fails
// the test only in a strict run.
func (f *floodRun) judge(w, base *floodWindow, res *chaosResult) {
	w.Verdict = floodVerdict(w, base)
	if f.fig.Strict && w.Verdict != "pass" {
		f.c.fail(res, "flood-"+w.Attack, "%s: %s", w.Attack, w.Verdict)
	}
}

// floodVerdict is "pass" when w, an attack's window, meets the acceptance
// against base, the unattacked one, else "fail: " and why.
func floodVerdict(w, base *floodWindow) string {
	var why []string
	if w.ProbePct < 100*floodMinAnswered {
		why = append(why, fmt.Sprintf("%.2f%% of probes answered < %.0f%%", w.ProbePct, 100*floodMinAnswered))
	}
	if w.SessionsSetUp == 0 || w.SetupP99Ms > floodMaxP99Ratio*base.SetupP99Ms {
		why = append(why, fmt.Sprintf("setup p99 %.1f ms > %.0f× the baseline's %.1f ms", w.SetupP99Ms, floodMaxP99Ratio, base.SetupP99Ms))
	}
	if len(why) == 0 {
		return "pass"
	}
	return "fail: " + strings.Join(why, "; ")
}

// legitTally adds up the legitimate sessions of one window.
type legitTally struct {
	wg sync.WaitGroup

	mu                    sync.Mutex
	tried, setUp, refused int
	probesSent, probesAns int
	kaSent, kaAnswered    int
	setups                []time.Duration
	other                 []string // unexpected dial errors, a few
}

// legit opens legitRate sessions per second from the client host until
// ctx ends (paced in 5 ms batches) and returns their tally; each session
// probes the balancer address, keeps its server for legitLife, then
// closes. The caller waits for the last ones.
func (f *floodRun) legit(ctx context.Context) *legitTally {
	lt := &legitTally{}
	const tick = 5 * time.Millisecond
	tk := time.NewTicker(tick)
	defer tk.Stop()
	start := time.Now()
	var done int64
	for {
		select {
		case <-ctx.Done():
			return lt
		case <-tk.C:
		}
		due := int64(legitRate * time.Since(start).Seconds())
		for ; done < due; done++ {
			lt.wg.Add(1)
			go func() {
				defer lt.wg.Done()
				f.session(lt)
			}()
		}
	}
}

// session runs one legitimate session and adds it to lt.
func (f *floodRun) session(lt *legitTally) {
	cl := f.c.topo.Client()
	var s *client.Session
	var took time.Duration
	err := cl.Do(func() (err error) {
		ctx, cancel := context.WithTimeout(context.Background(), legitDialTimeout)
		defer cancel()
		t0 := time.Now()
		s, err = client.Dial(ctx, f.vip, client.Options{
			LocalAddr: netip.AddrPortFrom(cl.Addr, 0),
			Retries:   legitRetries,
		})
		took = time.Since(t0)
		return err
	})
	if err != nil {
		lt.failed(err)
		return
	}
	time.Sleep(legitLife)
	st := s.Stats()
	s.Close()
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.tried++
	lt.setUp++
	lt.setups = append(lt.setups, took)
	lt.probesSent += int(st.ProbesSent)
	lt.probesAns += int(st.ProbeRounds - st.FailedRounds)
	lt.kaSent += int(st.KeepalivesSent)
	lt.kaAnswered += int(st.KeepalivesAnswered)
}

// failed counts a session that was never set up: a whole unanswered round
// sent legitRetries+1 probes; a refusal was one answered with an error.
func (lt *legitTally) failed(err error) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.tried++
	switch {
	case errors.Is(err, client.ErrNoAnswer):
		lt.probesSent += legitRetries + 1
	case errors.Is(err, client.ErrRefused):
		lt.refused++
		lt.probesSent++
	default:
		lt.probesSent++
		if len(lt.other) < 3 {
			lt.other = append(lt.other, err.Error())
		}
	}
}

// wait waits for every session of the tally to end.
func (lt *legitTally) wait() { lt.wg.Wait() }

// fill writes the tally into w.
func (lt *legitTally) fill(w *floodWindow) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	w.SessionsTried, w.SessionsSetUp, w.SessionsRefused = lt.tried, lt.setUp, lt.refused
	w.SessionPct = 100 * float64(lt.setUp) / float64(max(lt.tried, 1))
	w.ProbesSent, w.ProbesAnswered = lt.probesSent, lt.probesAns
	w.ProbePct = 100 * float64(lt.probesAns) / float64(max(lt.probesSent, 1))
	w.SetupP50Ms = ms(stats.Percentile(lt.setups, 50))
	w.SetupP99Ms = ms(stats.Percentile(lt.setups, 99))
	w.SetupMaxMs = ms(stats.Percentile(lt.setups, 100))
	w.KeepalivesSent, w.KeepalivesAnswered = lt.kaSent, lt.kaAnswered
	if len(lt.other) > 0 {
		w.What += " (dial errors: " + strings.Join(lt.other, "; ") + ")"
	}
}

// dropSeries matches the /metrics series the windows report: every drop,
// refusal, limit or lost-server counter, whatever reasons the agents have.
var dropSeries = regexp.MustCompile(`^usher_\w*(drop|refus|limit|overload|reject|lost_server|cap)\w*`)

// answerSeries matches the answer counters.
var answerSeries = regexp.MustCompile(`^usher_\w*answered`)

// counters sums the series of every agent's /metrics that re matches; an
// agent that does not answer adds nothing.
func (f *floodRun) counters(re *regexp.Regexp) map[string]float64 {
	out := map[string]float64{}
	for _, a := range f.c.agents {
		m, err := scrape(a)
		if err != nil {
			f.t.Logf("flood: /metrics of %s: %v", a.name, err)
			continue
		}
		for k, v := range m {
			if re.MatchString(k) {
				out[k] += v
			}
		}
	}
	return out
}

// drops is the agents' drop series and their kernels' UDP drops: what
// overflowed a socket's receive buffer (kernel_udp_rcvbuf_errors) never
// reached an agent to be counted there.
func (f *floodRun) drops() map[string]float64 {
	out := f.counters(dropSeries)
	for _, a := range f.c.agents {
		udp, err := kernelUDP(a.pid())
		if err != nil {
			f.t.Logf("flood: UDP counters of %s: %v", a.name, err)
			continue
		}
		out["kernel_udp_rcvbuf_errors"] += udp["RcvbufErrors"]
		out["kernel_udp_sndbuf_errors"] += udp["SndbufErrors"]
	}
	return out
}

// kernelUDP reads the Udp counters of /proc/<pid>/net/snmp: those of the
// network namespace process pid runs in.
func kernelUDP(pid int) (map[string]float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/snmp", pid))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f[1:]
			continue
		}
		out := map[string]float64{}
		for i, v := range f[1:] {
			if n, err := strconv.ParseFloat(v, 64); err == nil && i < len(names) {
				out[names[i]] = n
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("/proc/%d/net/snmp: no Udp counters", pid)
}

// grew returns the series that grew from before to after, by how much.
func grew(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// procCPU returns the user and system CPU time of process pid so far, in
// clock ticks, from /proc/<pid>/stat.
func procCPU(pid int) (int64, error) {
	fields, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	// utime is field 14 and stime 15 of proc(5).
	var total int64
	for _, s := range fields[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		total += n
	}
	return total, nil
}

// procMajorFaults returns how many major page faults (pages read from
// disk) process pid has taken so far, from /proc/<pid>/stat.
func procMajorFaults(pid int) (int64, error) {
	fields, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	// majflt is field 12 of proc(5).
	n, err := strconv.ParseInt(fields[9], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return n, nil
}

// procStat returns the fields of /proc/<pid>/stat after the command
// name, which may hold spaces and ends at the last ')': the first is the
// state, field 3 of proc(5).
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 13 {
		return nil, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	return fields, nil
}

// pid returns the agent's current process ID.
func (a *agent) pid() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.proc.PID()
}
