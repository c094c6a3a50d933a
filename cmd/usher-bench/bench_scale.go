//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/usherlb/usher/cluster"
	"github.com/usherlb/usher/internal/farm"
	"github.com/usherlb/usher/internal/stats"
	"github.com/usherlb/usher/node"
	"github.com/usherlb/usher/wire"
)

// Part 5 of `usher-bench`: clusters of 16, 64 and 128 agent processes of
// the usher binary on loopback, and one agent holding 100,000 sessions.

const (
	scaleVoters      = 3                      // bootstrap_expect; the first agents are the voters and the seeds
	scalePoll        = 200 * time.Millisecond // formation and view polling period
	scaleStatusEvery = time.Second            // status polling period inside the window
	scaleWorkers     = 16                     // concurrent API requests
	scaleRSSGoalMiB  = 100                    // agent RSS goal with scaleSessionGoal sessions
	scaleSessionGoal = 100000
	scaleStopGrace   = 5 * time.Second // SIGTERM to SIGKILL
	scaleHTTPTimeout = 5 * time.Second // one API request
)

// scalePlan is what one part-5 run measures.
type scalePlan struct {
	Sizes          []int         `json:"sizes"`           // cluster sizes, profile fast
	LanSizes       []int         `json:"lan_sizes"`       // cluster sizes also run with profile lan, to tell the failure detector's limit from the rest
	Repeats        int           `json:"repeats"`         // runs of each size
	Window         time.Duration `json:"window"`          // measuring window once a cluster has formed
	Form           time.Duration `json:"form"`            // most time allowed to join and agree on a leader
	Sessions       int           `json:"sessions"`        // sessions driven into one agent
	SessionRepeats int           `json:"session_repeats"` // runs of the session measurement
}

// scalePlanFor returns the plan for o: three repeats of 16, 64 and 128
// agents with a 15 s window, or with -quick one repeat of 16 and 64 with
// a 5 s window. The repeats do not follow -repeats: one repeat of 128
// agents takes about a minute.
func scalePlanFor(o benchOpts) scalePlan {
	if o.quick {
		return scalePlan{Sizes: []int{16, 64}, Repeats: 1, Window: 5 * time.Second, Form: 60 * time.Second,
			Sessions: scaleSessionGoal, SessionRepeats: 1}
	}
	return scalePlan{Sizes: []int{16, 64, 128}, LanSizes: []int{128}, Repeats: 3, Window: 15 * time.Second, Form: 120 * time.Second,
		Sessions: scaleSessionGoal, SessionRepeats: 3}
}

// scaleFigures are part 5's measurements.
type scaleFigures struct {
	Plan      scalePlan       `json:"plan"`
	Sizes     []*scaleSize    `json:"sizes"`
	Sessions  *sessionFigures `json:"sessions"`
	LoadStart string          `json:"load_start"` // /proc/loadavg at the start and end of part 5
	LoadEnd   string          `json:"load_end"`
	LoadPeak  float64         `json:"load_peak"` // highest 1-minute load average sampled during part 5
}

// scaleSize is the measurements of one cluster size over its repeats.
// Times are in seconds, staleness in milliseconds, sizes in MiB.
type scaleSize struct {
	N          int               `json:"n"`
	Profile    string            `json:"profile"` // the agents' timing profile
	Runs       int               `json:"runs"`
	Join       spread            `json:"join"`        // start of the first process to all agents seeing every member
	Leader     spread            `json:"leader"`      // start of the first process to all agents agreeing on a leader
	Term       spread            `json:"term"`        // raft term when all agreed on a leader
	FormFailed int               `json:"form_failed"` // repeats that did not form within the plan's time
	StaleP50   spread            `json:"stale_p50"`
	StaleP99   spread            `json:"stale_p99"`
	StaleMax   spread            `json:"stale_max"`
	APIRTT     spread            `json:"api_rtt"`    // p50 of the leader's /v1/view round trips, ms
	GossipMed  spread            `json:"gossip_med"` // memberlist bytes sent per second, median agent
	GossipMax  spread            `json:"gossip_max"` // memberlist bytes sent per second, busiest agent
	RSSMed     spread            `json:"rss_med"`
	RSSMax     spread            `json:"rss_max"`
	CPU        spread            `json:"cpu"`        // CPU cores used by all agents together
	LeaderCPU  spread            `json:"leader_cpu"` // CPU cores used by the leader
	SelfCPU    spread            `json:"self_cpu"`   // CPU cores used by the benchmark process (the poller)
	Elections  spread            `json:"elections"`  // raft term increase during the window
	Exited     spread            `json:"exited"`     // agents that ended on their own
	Largest    []string          `json:"largest"`
	LogCounts  map[string]spread `json:"log_counts"`
	Notes      []string          `json:"notes"`
}

// sessionFigures is the measurement of one agent with many sessions.
type sessionFigures struct {
	Target  int      `json:"target"`
	Counted spread   `json:"counted"` // sessions the agent reported
	Drive   spread   `json:"drive"`   // seconds to create them all
	RSS0    spread   `json:"rss0"`    // MiB before the sessions
	RSS     spread   `json:"rss"`     // MiB with them
	HWM     spread   `json:"hwm"`     // VmHWM with them, MiB
	Heap0   spread   `json:"heap0"`   // live heap after the last GC (gctrace), MiB, before the sessions
	Heap    spread   `json:"heap"`    // and with them
	Notes   []string `json:"notes"`
}

// scaleResult is one repeat of one cluster size.
type scaleResult struct {
	n                    int
	formed               bool
	join, leaderAt       time.Duration // zero: not reached
	leader               string
	term, endTerm        uint64
	ages, rtts           []time.Duration
	staleMax             time.Duration
	gossipMed, gossipMax float64
	rssMed, rssMax       float64
	cpu, leaderCPU       float64
	selfCPU              float64
	exited               int
	largest              string // the agent with the largest RSS and its role
	logCounts            map[string]int
	notes                []string
}

// benchScale runs part 5 with the plan for o.
func benchScale(ctx context.Context, o benchOpts) (*scaleFigures, error) {
	return benchScaleWith(ctx, o, scalePlanFor(o))
}

// benchScaleWith runs part 5 with plan p. A cluster that does not form,
// or whose agents die, is a finding recorded in the figures, not an error;
// the error is for a cancelled ctx or a run where nothing could start.
func benchScaleWith(ctx context.Context, o benchOpts, p scalePlan) (*scaleFigures, error) {
	if err := raiseNoFile(); err != nil {
		return nil, err
	}
	f := &scaleFigures{Plan: p, LoadStart: loadAvg()}
	f.samplePeak()
	started := 0
	var cases []*scaleSize
	for _, n := range p.Sizes {
		cases = append(cases, &scaleSize{N: n, Profile: "fast", LogCounts: map[string]spread{}})
	}
	for _, n := range p.LanSizes {
		cases = append(cases, &scaleSize{N: n, Profile: "lan", LogCounts: map[string]spread{}})
	}
	for _, sz := range cases {
		n := sz.N
		f.Sizes = append(f.Sizes, sz)
		for r := range p.Repeats {
			if err := ctx.Err(); err != nil {
				return f, err
			}
			res, err := scaleRun(ctx, o, p, n, sz.Profile)
			f.samplePeak()
			if err != nil {
				if ctx.Err() != nil {
					return f, ctx.Err()
				}
				sz.Notes = append(sz.Notes, fmt.Sprintf("repeat %d: %v", r+1, err))
				fmt.Fprintf(o.log, "scale %s %d/%d: %v\n", sz.label(), r+1, p.Repeats, err)
				continue
			}
			started++
			sz.add(res)
			fmt.Fprintf(o.log, "scale %s %d/%d: %s\n", sz.label(), r+1, p.Repeats, res.summary())
		}
	}
	sf := &sessionFigures{Target: p.Sessions}
	f.Sessions = sf
	for r := range p.SessionRepeats {
		if err := ctx.Err(); err != nil {
			return f, err
		}
		err := sessionRun(ctx, o, p.Sessions, sf)
		f.samplePeak()
		if err != nil {
			if ctx.Err() != nil {
				return f, ctx.Err()
			}
			sf.Notes = append(sf.Notes, fmt.Sprintf("repeat %d: %v", r+1, err))
			fmt.Fprintf(o.log, "scale sessions %d/%d: %v\n", r+1, p.SessionRepeats, err)
			continue
		}
		started++
		i := len(sf.RSS) - 1
		fmt.Fprintf(o.log, "scale sessions %d/%d: %.0f sessions counted in %.2fs, RSS %.1f MiB (%.1f MiB at 0), live heap %.1f MiB\n",
			r+1, p.SessionRepeats, sf.Counted[i], sf.Drive[i], sf.RSS[i], sf.RSS0[i], lastOr(sf.Heap, -1))
	}
	f.LoadEnd = loadAvg()
	if started == 0 {
		return f, errors.New("scale: no run could start: " + strings.Join(append(f.allNotes(), "no notes"), "; "))
	}
	return f, nil
}

// fast reports whether the size runs the part's own profile, fast (the
// zero profile means fast too).
func (sz *scaleSize) fast() bool { return sz.Profile == "" || sz.Profile == "fast" }

// label names the size in the report: "64 agents", or "128 agents, lan"
// for a profile other than fast.
func (sz *scaleSize) label() string {
	if sz.fast() {
		return fmt.Sprintf("%d agents", sz.N)
	}
	return fmt.Sprintf("%d agents, %s", sz.N, sz.Profile)
}

// rowLabel names the size in a table row: "64", or "128, lan".
func (sz *scaleSize) rowLabel() string {
	if sz.fast() {
		return strconv.Itoa(sz.N)
	}
	return fmt.Sprintf("%d, %s", sz.N, sz.Profile)
}

// allNotes returns every note of every size and of the session run.
func (f *scaleFigures) allNotes() []string {
	var out []string
	for _, sz := range f.Sizes {
		out = append(out, sz.Notes...)
	}
	if f.Sessions != nil {
		out = append(out, f.Sessions.Notes...)
	}
	return out
}

// samplePeak records the 1-minute load average if it is the highest yet.
func (f *scaleFigures) samplePeak() {
	if l, ok := loadAvg1(); ok && l > f.LoadPeak {
		f.LoadPeak = l
	}
}

// loadAvg1 returns the 1-minute load average.
func loadAvg1() (float64, bool) {
	first, _, _ := strings.Cut(loadAvg(), ",")
	v, err := strconv.ParseFloat(first, 64)
	return v, err == nil
}

func lastOr(s spread, def float64) float64 {
	if len(s) == 0 {
		return def
	}
	return s[len(s)-1]
}

// add folds one repeat into the size's figures.
func (sz *scaleSize) add(r scaleResult) {
	sz.Runs++
	if !r.formed {
		sz.FormFailed++
	}
	if r.join > 0 {
		sz.Join = append(sz.Join, r.join.Seconds())
	}
	if r.leaderAt > 0 {
		sz.Leader = append(sz.Leader, r.leaderAt.Seconds())
		sz.Term = append(sz.Term, float64(r.term))
		sz.Elections = append(sz.Elections, float64(r.endTerm-r.term))
	}
	if len(r.ages) > 0 {
		sz.StaleP50 = append(sz.StaleP50, ms(stats.Percentile(r.ages, 50)))
		sz.StaleP99 = append(sz.StaleP99, ms(stats.Percentile(r.ages, 99)))
		sz.StaleMax = append(sz.StaleMax, ms(r.staleMax))
		sz.APIRTT = append(sz.APIRTT, ms(stats.Percentile(r.rtts, 50)))
	}
	sz.GossipMed = append(sz.GossipMed, r.gossipMed)
	sz.GossipMax = append(sz.GossipMax, r.gossipMax)
	sz.RSSMed = append(sz.RSSMed, r.rssMed)
	sz.RSSMax = append(sz.RSSMax, r.rssMax)
	sz.CPU = append(sz.CPU, r.cpu)
	if r.leaderAt > 0 {
		sz.LeaderCPU = append(sz.LeaderCPU, r.leaderCPU)
	}
	sz.SelfCPU = append(sz.SelfCPU, r.selfCPU)
	sz.Exited = append(sz.Exited, float64(r.exited))
	sz.Largest = append(sz.Largest, r.largest)
	for _, p := range scaleLogPatterns {
		sz.LogCounts[p.key] = append(sz.LogCounts[p.key], float64(r.logCounts[p.key]))
	}
	for _, n := range r.notes {
		sz.Notes = append(sz.Notes, fmt.Sprintf("repeat %d: %s", sz.Runs, n))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summary is the progress line of one repeat.
func (r scaleResult) summary() string {
	var b strings.Builder
	if r.join > 0 {
		fmt.Fprintf(&b, "joined %.1fs", r.join.Seconds())
	} else {
		b.WriteString("never all joined")
	}
	if r.leaderAt > 0 {
		fmt.Fprintf(&b, ", leader %s at %.1fs (term %d, %d after the window)", r.leader, r.leaderAt.Seconds(), r.term, r.endTerm)
	} else {
		b.WriteString(", no agreed leader")
	}
	if len(r.ages) > 0 {
		fmt.Fprintf(&b, ", staleness p99 %.0f ms", ms(stats.Percentile(r.ages, 99)))
	}
	fmt.Fprintf(&b, ", gossip %.1f kB/s/agent (max %.1f), RSS %.1f MiB (max %.1f, %s), CPU %.2f cores (leader %.2f, poller %.2f)",
		r.gossipMed/1e3, r.gossipMax/1e3, r.rssMed, r.rssMax, r.largest, r.cpu, r.leaderCPU, r.selfCPU)
	if r.exited > 0 {
		fmt.Fprintf(&b, ", %d agents exited", r.exited)
	}
	return b.String()
}

// scaleRun starts n agents, waits for them to join and agree on a leader,
// measures them over the plan's window and stops them.
func scaleRun(ctx context.Context, o benchOpts, p scalePlan, n int, profile string) (res scaleResult, err error) {
	res = scaleResult{n: n}
	// A later -profile overrides the fast one startScaleCluster sets.
	c, err := startScaleCluster(o.usher, n, []string{"-profile", profile}, nil)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, c.close()) }()
	leader := c.form(ctx, p.Form, &res)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	c.measure(ctx, p.Window, leader, &res)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	res.exited = c.ExitedCount()
	res.logCounts, res.notes = c.scanLogs(res.notes)
	return res, nil
}

// scaleAgent is one agent process.
type scaleAgent = farm.Agent

// scaleCluster is a set of agent processes and their scratch directory.
type scaleCluster struct {
	*farm.Farm
	started time.Time // just before the first process started
}

// startScaleCluster starts n agents of exe on 127.0.0.1: the first
// scaleVoters (or all, if fewer) are voter-eligible and the seeds every
// agent joins, the rest non-voters; profile fast. extra adds arguments to
// every agent's command line, env to its environment.
func startScaleCluster(exe string, n int, extra, env []string) (*scaleCluster, error) {
	pick := farm.NewPortPicker()
	vip, err := pick.Take(1, func(p uint16) bool { return farm.UDPFree(farm.Loopback(p)) })
	if err != nil {
		return nil, err
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("s%03d", i+1)
	}
	addrs, err := pick.PickLoopback(names)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{Proxy: nil, MaxIdleConns: 4 * n, MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second}
	f, err := farm.New("usher-scale-", farm.Loopback(vip), addrs, scaleVoters, &http.Client{Transport: tr, Timeout: scaleHTTPTimeout})
	if err != nil {
		return nil, err
	}
	c := &scaleCluster{Farm: f, started: time.Now()}
	for i, a := range c.Agents {
		more := extra
		if i >= c.Voters {
			more = append([]string{"-voter=false"}, extra...)
		}
		args, err := c.Args(a, more...)
		if err == nil {
			err = c.Start(exe, a, args, env)
		}
		if err != nil {
			return nil, errors.Join(err, c.close())
		}
	}
	return c, nil
}

// close stops every agent by PID (SIGTERM, then SIGKILL after
// scaleStopGrace), reaps them and removes the scratch directory. It is
// idempotent.
func (c *scaleCluster) close() error { return c.Stop(scaleStopGrace) }

// getJSON fetches path from a's API into v.
func (c *scaleCluster) getJSON(ctx context.Context, a *scaleAgent, path string, v any) error {
	return c.GetJSON(ctx, a, path, v)
}

// get fetches path from a's API.
func (c *scaleCluster) get(ctx context.Context, a *scaleAgent, path string) ([]byte, error) {
	return c.Get(ctx, a, path, 4<<20)
}

// each runs fn for every agent, scaleWorkers at a time, and waits.
func (c *scaleCluster) each(fn func(i int, a *scaleAgent)) { c.Each(scaleWorkers, fn) }

// statuses polls every agent's /v1/status; ok[i] says agent i answered.
func (c *scaleCluster) statuses(ctx context.Context) (sts []node.Status, ok []bool) {
	sts, ok = make([]node.Status, len(c.Agents)), make([]bool, len(c.Agents))
	c.each(func(i int, a *scaleAgent) {
		ok[i] = c.getJSON(ctx, a, "/v1/status", &sts[i]) == nil
	})
	return sts, ok
}

// allJoined reports whether every agent answered and sees n alive members.
func allJoined(sts []node.Status, ok []bool, n int) bool {
	for i := range sts {
		if !ok[i] || sts[i].Members < n {
			return false
		}
	}
	return len(sts) > 0
}

// agreedLeader returns the leader every agent names, if all answered and
// name the same one and that one calls itself leader.
func agreedLeader(sts []node.Status, ok []bool) (idx int, term uint64, agreed bool) {
	if len(sts) == 0 {
		return -1, 0, false
	}
	name := sts[0].Leader
	idx = -1
	for i := range sts {
		if !ok[i] || name == "" || sts[i].Leader != name {
			return -1, 0, false
		}
		if sts[i].Node == name {
			idx = i
		}
	}
	if idx < 0 || sts[idx].Role != node.RoleLeader {
		return -1, 0, false
	}
	return idx, sts[idx].Term, true
}

// mostNamedLeader returns the agent most agents name as leader, or -1.
func mostNamedLeader(sts []node.Status, ok []bool) int {
	votes := map[string]int{}
	for i := range sts {
		if ok[i] && sts[i].Leader != "" {
			votes[sts[i].Leader]++
		}
	}
	best, bestVotes := -1, 0
	for i := range sts {
		if v := votes[sts[i].Node]; ok[i] && v > bestVotes {
			best, bestVotes = i, v
		}
	}
	return best
}

// form polls until every agent sees all n members alive and names the same
// leader, or for at most limit; it fills in res and returns the leader's
// index (-1 for none).
func (c *scaleCluster) form(ctx context.Context, limit time.Duration, res *scaleResult) int {
	n := len(c.Agents)
	deadline := c.started.Add(limit)
	tick := time.NewTicker(scalePoll)
	defer tick.Stop()
	leader := -1
	for {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		sts, ok := c.statuses(pctx)
		cancel()
		now := time.Now()
		if res.join == 0 && allJoined(sts, ok, n) {
			res.join = now.Sub(c.started)
		}
		if res.leaderAt == 0 {
			if i, term, agreed := agreedLeader(sts, ok); agreed {
				res.leaderAt, res.leader, res.term, leader = now.Sub(c.started), sts[i].Node, term, i
			}
		}
		if res.join > 0 && res.leaderAt > 0 {
			res.formed = true
			return leader
		}
		if ctx.Err() != nil || now.After(deadline) {
			answered, minMembers, names := 0, n, map[string]int{}
			for i := range sts {
				if ok[i] {
					answered++
					minMembers = min(minMembers, sts[i].Members)
					names[sts[i].Leader]++
				}
			}
			res.notes = append(res.notes, fmt.Sprintf("did not form within %v: %d of %d agents answered, the fewest members seen %d, leaders named %v",
				limit, answered, n, minMembers, names))
			if leader < 0 {
				leader = mostNamedLeader(sts, ok)
				if leader >= 0 {
					res.leader = sts[leader].Node
				}
			}
			return leader
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// scaleSnap is one agent's counters at one instant.
type scaleSnap struct {
	at    time.Time
	bytes float64 // memberlist bytes sent, UDP and TCP
	cpu   time.Duration
	ok    bool
}

// snapshot reads every agent's memberlist byte counters from /metrics and
// its CPU time from /proc.
func (c *scaleCluster) snapshot(ctx context.Context) []scaleSnap {
	out := make([]scaleSnap, len(c.Agents))
	c.each(func(i int, a *scaleAgent) {
		s := &out[i]
		s.cpu = procCPU(a.Cmd.Process.Pid)
		body, err := c.get(ctx, a, "/metrics")
		if err != nil {
			return
		}
		s.at = time.Now()
		udp, _ := promSum(body, "usher_memberlist_udp_sent_bytes_total")
		tcp, _ := promSum(body, "usher_memberlist_tcp_sent_bytes_total")
		s.bytes, s.ok = udp+tcp, true
	})
	return out
}

// viewAnswer is the part of GET /v1/view the staleness needs.
type viewAnswer struct {
	Nodes []struct {
		ID         string    `json:"id"`
		ReportedAt time.Time `json:"reported_at"`
	} `json:"nodes"`
}

// measure runs the window: it samples the leader's view every scalePoll,
// every agent's status every scaleStatusEvery, and the agents' counters at
// both ends, and fills in res.
func (c *scaleCluster) measure(ctx context.Context, window time.Duration, leader int, res *scaleResult) {
	began, self0 := time.Now(), procCPU(os.Getpid())
	before := c.snapshot(ctx)
	end := time.Now().Add(window)
	tick := time.NewTicker(scalePoll)
	defer tick.Stop()
	nextStatus := time.Now().Add(scaleStatusEvery)
	res.endTerm = res.term
	noteTerms := func(sts []node.Status, ok []bool) {
		for i := range sts {
			if ok[i] {
				res.endTerm = max(res.endTerm, sts[i].Term)
			}
		}
	}
	for time.Now().Before(end) && ctx.Err() == nil {
		if leader >= 0 {
			var v viewAnswer
			t1 := time.Now()
			vctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := c.getJSON(vctx, c.Agents[leader], "/v1/view", &v)
			cancel()
			t2 := time.Now()
			if err == nil {
				res.rtts = append(res.rtts, t2.Sub(t1))
				for _, nd := range v.Nodes {
					if nd.ID == res.leader || nd.ReportedAt.IsZero() {
						continue
					}
					age := max(t2.Sub(nd.ReportedAt), 0)
					res.ages = append(res.ages, age)
					res.staleMax = max(res.staleMax, age)
				}
			}
		}
		if time.Now().After(nextStatus) {
			nextStatus = nextStatus.Add(scaleStatusEvery)
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			noteTerms(c.statuses(sctx))
			cancel()
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	noteTerms(c.statuses(sctx))
	cancel()
	after := c.snapshot(ctx)
	if len(rates(before, after)) < len(c.Agents) {
		res.notes = append(res.notes, fmt.Sprintf("memberlist bytes from %d of %d agents (the others' /metrics did not answer within %v)",
			len(rates(before, after)), len(c.Agents), scaleHTTPTimeout))
	}

	var rss []float64
	span := time.Since(began).Seconds()
	res.cpu = (sumCPU(after) - sumCPU(before)).Seconds() / span
	res.selfCPU = (procCPU(os.Getpid()) - self0).Seconds() / span
	if leader >= 0 {
		res.leaderCPU = (after[leader].cpu - before[leader].cpu).Seconds() / span
	}
	for i, a := range c.Agents {
		if kb, ok := procStatusKB(a.Cmd.Process.Pid, "VmRSS"); ok {
			rss = append(rss, float64(kb)/1024)
			if float64(kb)/1024 > res.rssMax {
				res.rssMax, res.largest = float64(kb)/1024, a.Name+" ("+c.role(i, leader)+")"
			}
		}
	}
	rs := spread(rates(before, after))
	res.gossipMed, res.gossipMax = rs.median(), rs.max()
	res.rssMed = spread(rss).median()
}

// role names agent i's part: the leader (index leader), a voter-eligible
// seed, or a non-voter.
func (c *scaleCluster) role(i, leader int) string {
	switch {
	case i == leader:
		return "the leader"
	case i < scaleVoters:
		return "voter-eligible seed"
	}
	return "non-voter"
}

// sumCPU returns the CPU time of all agents in a snapshot.
func sumCPU(s []scaleSnap) time.Duration {
	var t time.Duration
	for _, x := range s {
		t += x.cpu
	}
	return t
}

// rates returns memberlist's bytes sent per second by each agent that
// answered both snapshots.
func rates(before, after []scaleSnap) []float64 {
	var out []float64
	for i := range before {
		if before[i].ok && after[i].ok {
			if dt := after[i].at.Sub(before[i].at).Seconds(); dt > 0 {
				out = append(out, (after[i].bytes-before[i].bytes)/dt)
			}
		}
	}
	return out
}

// promSum returns the sum of every sample of the metric name (any labels)
// in a Prometheus text exposition, and whether there was one.
func promSum(body []byte, name string) (float64, bool) {
	sum, found := 0.0, false
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		switch {
		case rest == "":
			continue
		case rest[0] == '{':
			i := strings.LastIndexByte(rest, '}')
			if i < 0 {
				continue
			}
			rest = rest[i+1:]
		case rest[0] != ' ' && rest[0] != '\t':
			continue // a longer name with this prefix
		}
		fs := strings.Fields(rest)
		if len(fs) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fs[0], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}

// procStatusKB returns a kB field of /proc/pid/status, such as VmRSS.
func procStatusKB(pid int, key string) (int64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	return statusField(b, key)
}

// statusField parses "key:   1234 kB" out of a /proc/pid/status text.
func statusField(b []byte, key string) (int64, bool) {
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != key {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			return 0, false
		}
		n, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// scaleLogPatterns are the agent log lines part 5 counts, to tell a
// quiet cluster from one that churns.
var scaleLogPatterns = []struct{ key, substr string }{
	{"leader changed", "leader changed"},
	{"election started", "entering candidate state"},
	{"heartbeat timeout", "heartbeat timeout reached"},
	{"quorum lost", "failed to contact quorum"},
	{"member suspected", "memberlist: Suspect "},
	{"suspicion refuted", "memberlist: Refuting a"},
	{"member marked failed", "as failed, suspect timeout"},
	{"raft config change failed", "raft configuration change failed"},
}

// scanLogs counts scaleLogPatterns over every agent's log and appends to
// notes the first lines of the kinds that show trouble.
func (c *scaleCluster) scanLogs(notes []string) (map[string]int, []string) {
	counts := map[string]int{}
	examples := map[string]string{}
	for _, a := range c.Agents {
		f, err := os.Open(a.LogPath)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			for _, p := range scaleLogPatterns {
				if strings.Contains(line, p.substr) {
					counts[p.key]++
					if _, ok := examples[p.key]; !ok {
						examples[p.key] = a.Name + ": " + line
					}
				}
			}
		}
		f.Close()
	}
	for _, key := range []string{"quorum lost", "heartbeat timeout", "member marked failed", "raft config change failed"} {
		if ex, ok := examples[key]; ok {
			notes = append(notes, fmt.Sprintf("%d %q lines, first: `%s`", counts[key], key, truncate(ex, 240)))
		}
	}
	for _, a := range c.Agents {
		select {
		case <-a.Exited():
			notes = append(notes, fmt.Sprintf("agent %s exited on its own (%v), its last log lines: `%s`", a.Name, a.WaitErr(), truncate(tail(a.LogPath, 3), 600)))
		default:
		}
	}
	return counts, notes
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// The session run's agent keeps its sessions for sessionTTL; its RSS is
// read sessionSettle after it leads itself and sessionAfter after it
// counts the sessions.
const (
	sessionTTL    = 30 * time.Minute
	sessionSettle = 3 * time.Second
	sessionAfter  = 2 * time.Second
)

// sessionRun starts one agent, reads its RSS, drives target sessions into
// its session endpoint from one socket, confirms the agent counts them and
// reads its RSS again; it appends to sf.
func sessionRun(ctx context.Context, o benchOpts, target int, sf *sessionFigures) (err error) {
	// The sessions are ticketless keepalives from one socket.
	extra := []string{"-session-ttl", sessionTTL.String(), "-capacity", strconv.Itoa(2 * target),
		"-require-ticket=false", "-max-sessions-per-source", strconv.Itoa(2 * target)}
	c, err := startScaleCluster(o.usher, 1, extra, []string{"GODEBUG=gctrace=1"})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, c.close()) }()
	a := c.Agents[0]
	pid := a.Cmd.Process.Pid
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st node.Status
		if err := c.getJSON(ctx, a, "/v1/status", &st); err == nil && st.Role == node.RoleLeader {
			break
		}
		if c.ExitedCount() > 0 {
			return fmt.Errorf("agent exited: %v (log: %s)", a.WaitErr(), tail(a.LogPath, 5))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("agent not leading itself after 30s (log: %s)", tail(a.LogPath, 5))
		}
		sleepCtx(ctx, scalePoll)
	}
	sleepCtx(ctx, sessionSettle)
	rss0, ok := procStatusKB(pid, "VmRSS")
	if !ok {
		return errors.New("cannot read the agent's VmRSS")
	}
	heap0, heapOK0 := lastLiveHeapMB(a.LogPath)

	began := time.Now()
	answered, err := driveSessions(ctx, a.Session, target)
	took := time.Since(began)
	if err != nil {
		return err
	}
	var st node.Status
	deadline = time.Now().Add(10 * time.Second)
	for {
		err := c.getJSON(ctx, a, "/v1/status", &st)
		if err == nil && st.Sessions >= target || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		sleepCtx(ctx, scalePoll)
	}
	sleepCtx(ctx, sessionAfter)
	rss, ok1 := procStatusKB(pid, "VmRSS")
	hwm, ok2 := procStatusKB(pid, "VmHWM")
	if !ok1 || !ok2 {
		return errors.New("cannot read the agent's VmRSS")
	}
	heap, heapOK := lastLiveHeapMB(a.LogPath)
	if err := c.getJSON(ctx, a, "/v1/status", &st); err != nil {
		return fmt.Errorf("status after the sessions: %w", err)
	}
	if st.Sessions < target {
		sf.Notes = append(sf.Notes, fmt.Sprintf("the agent counted %d of %d sessions (%d keepalives answered)", st.Sessions, target, answered))
	}
	sf.Counted = append(sf.Counted, float64(st.Sessions))
	sf.Drive = append(sf.Drive, took.Seconds())
	sf.RSS0 = append(sf.RSS0, float64(rss0)/1024)
	sf.RSS = append(sf.RSS, float64(rss)/1024)
	sf.HWM = append(sf.HWM, float64(hwm)/1024)
	if heapOK0 {
		sf.Heap0 = append(sf.Heap0, heap0)
	}
	if heapOK {
		sf.Heap = append(sf.Heap, heap)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// tail returns the last n lines of the file at path, joined by " | ".
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// gcLine matches the heap sizes of a gctrace line: "4->5->2 MB".
var gcLine = regexp.MustCompile(`(\d+)->(\d+)->(\d+) MB`)

// lastLiveHeapMB returns the live heap after the last garbage collection
// the Go runtime reported with GODEBUG=gctrace=1 in the log at path.
func lastLiveHeapMB(path string) (float64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	return liveHeapMB(b)
}

// liveHeapMB returns the live heap of the last gctrace line in b.
func liveHeapMB(b []byte) (float64, bool) {
	var last []byte
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("gc ")) {
			if m := gcLine.FindSubmatch(line); m != nil {
				last = m[3]
			}
		}
	}
	if last == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(last), 64)
	return v, err == nil
}

// sessionDriveWindow is how many keepalives may await their answer.
const sessionDriveWindow = 512

// driveSessions sends one keepalive for each of n new session IDs to addr
// from one socket, resending those unanswered, in up to five passes; it
// returns how many were answered.
func driveSessions(ctx context.Context, addr netip.AddrPort, n int) (int, error) {
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if err := setBuffers(conn, 4<<20); err != nil {
		return 0, err
	}
	// Random ids keep runs apart; they need not be unpredictable.
	nonce := rand.Uint32() //nolint:gosec // G404: see above
	base := rand.Uint64()  //nolint:gosec // G404: see above
	done := make([]atomic.Bool, n)
	var got atomic.Int64
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		buf := make([]byte, 2048)
		var dec wire.Decoder
		var r wire.Response
		for {
			k, err := conn.Read(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue // e.g. ECONNREFUSED before the endpoint is up
			}
			if dec.DecodeResponse(buf[:k], &r) != nil || !r.Success || binary.BigEndian.Uint32(r.TxID[8:]) != nonce {
				continue
			}
			if i := binary.BigEndian.Uint64(r.TxID[:8]); i < uint64(n) && !done[i].Swap(true) {
				got.Add(1)
			}
		}
	}()
	defer func() {
		conn.Close()
		<-readerDone
	}()

	var enc wire.Encoder
	pkt := make([]byte, 0, 256)
	for pass := 0; pass < 5 && int(got.Load()) < n && ctx.Err() == nil; pass++ {
		start, sent := got.Load(), int64(0)
		for i := 0; i < n && ctx.Err() == nil; i++ {
			if done[i].Load() {
				continue
			}
			k := wire.Keepalive{PadTo: wire.KeepaliveSize}
			binary.BigEndian.PutUint64(k.TxID[:8], uint64(i))
			binary.BigEndian.PutUint32(k.TxID[8:], nonce)
			binary.BigEndian.PutUint64(k.Session[:], base+uint64(i))
			pkt, err = enc.AppendKeepalive(pkt[:0], &k)
			if err != nil {
				return int(got.Load()), fmt.Errorf("encode keepalive: %w", err)
			}
			if _, err := conn.Write(pkt); err != nil {
				return int(got.Load()), fmt.Errorf("send keepalive: %w", err)
			}
			sent++
			// Keep at most sessionDriveWindow unanswered; give up waiting
			// after 20 ms (the rest were lost, the next pass resends them).
			for wait := time.Now(); sent-(got.Load()-start) > sessionDriveWindow && time.Since(wait) < 20*time.Millisecond; {
				time.Sleep(50 * time.Microsecond)
			}
		}
		for wait := time.Now(); int(got.Load()) < n && time.Since(wait) < 500*time.Millisecond; {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := ctx.Err(); err != nil {
		return int(got.Load()), err
	}
	return int(got.Load()), nil
}

// raiseNoFile lifts this process's open-file soft limit to its hard limit
// (the Go runtime does so too since Go 1.19; this keeps it explicit).
func raiseNoFile() error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return fmt.Errorf("setrlimit: %w", err)
		}
	}
	return nil
}

// write writes part 5 of the report, with links to the plots in plotDir
// (none if it is empty); cores is how many the machine has.
func (f *scaleFigures) write(b *strings.Builder, plotDir string, cores int) {
	p := f.Plan
	fast, lan := mustProfile(cluster.ProfileFast), mustProfile(cluster.ProfileLAN)
	b.WriteString("## 5. Scale\n\n")
	writeProse(b, "scale-method", map[string]any{
		"P": p, "Sizes": joinInts(p.Sizes), "LAN": lan, "Voters": scaleVoters, "Poll": scalePoll,
		"Workers": scaleWorkers, "StatusEvery": scaleStatusEvery, "SessionTTL": sessionTTL, "Settle": sessionSettle,
		"KeepaliveSize": wire.KeepaliveSize, "DriveWindow": sessionDriveWindow, "After": sessionAfter,
	})
	fmt.Fprintf(b, "Load average (1, 5, 15 min) at the start of part 5: %s; at the end: %s; highest 1-minute average sampled between runs: %.2f. The machine's cores are shared by all the agents and the benchmark itself.\n\n",
		f.LoadStart, f.LoadEnd, f.LoadPeak)

	f.writeGoals(b)

	b.WriteString("\n### Clusters\n\n| Agents | repeats formed | join (s) | leader agreed (s) | term at agreement | elections in window | leader's view staleness p50 (ms) | p99 (ms) | max (ms) | view API round trip p50 (ms) | memberlist bytes/s per agent, median agent | busiest agent | RSS per agent, median (MiB) | largest (MiB) | CPU, all agents (cores) | CPU, the leader (cores) | CPU, the poller (cores) | agents exited |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, sz := range f.Sizes {
		fmt.Fprintf(b, "| %s | %d of %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			sz.rowLabel(), sz.Runs-sz.FormFailed, sz.Runs, sz.Join.format("%.1f"), sz.Leader.format("%.1f"), sz.Term.format("%.0f"), sz.Elections.format("%.0f"),
			sz.StaleP50.format("%.0f"), sz.StaleP99.format("%.0f"), sz.StaleMax.format("%.0f"), sz.APIRTT.format("%.1f"),
			sz.GossipMed.format("%.0f"), sz.GossipMax.format("%.0f"), sz.RSSMed.format("%.1f"), sz.RSSMax.format("%.1f"),
			sz.CPU.format("%.2f"), sz.LeaderCPU.format("%.2f"), sz.SelfCPU.format("%.2f"), sz.Exited.format("%.0f"))
	}
	b.WriteString("\nAgent log lines over all agents of a repeat (median, min–max over the repeats):\n\n| Agents |")
	for _, lp := range scaleLogPatterns {
		fmt.Fprintf(b, " %s |", lp.key)
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(scaleLogPatterns)) + "\n")
	for _, sz := range f.Sizes {
		fmt.Fprintf(b, "| %s |", sz.rowLabel())
		for _, lp := range scaleLogPatterns {
			fmt.Fprintf(b, " %s |", sz.LogCounts[lp.key].format("%.0f"))
		}
		b.WriteString("\n")
	}

	if f.Sessions != nil {
		f.Sessions.write(b)
	}

	f.writeWhy(b, fast, cores)
	f.writeElections(b, fast, lan, cores)

	var notes []string
	for _, sz := range f.Sizes {
		if len(sz.Largest) > 0 {
			notes = append(notes, fmt.Sprintf("%s: the largest RSS in each repeat was %s", sz.label(), strings.Join(sz.Largest, ", ")))
		}
		for _, n := range sz.Notes {
			notes = append(notes, fmt.Sprintf("%s, %s", sz.label(), n))
		}
	}
	if f.Sessions != nil {
		for _, n := range f.Sessions.Notes {
			notes = append(notes, "sessions, "+n)
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n### What the runs reported\n\n")
		for _, n := range notes {
			b.WriteString("- " + n + "\n")
		}
	}
	b.WriteString("\n")
	if plotDir != "" {
		for _, p := range scalePlots {
			fmt.Fprintf(b, "![%s](%s)\n", p, filepath.ToSlash(filepath.Join(plotDir, p)))
		}
		b.WriteString("\n")
	}
}

func metVerdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	switch len(s) {
	case 0:
		return "no"
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// scalePlots are the charts plot draws, in order.
var scalePlots = []string{"scale_formation.png", "scale_staleness.png", "scale_gossip.png", "scale_rss.png"}

// plot draws part 5's charts into dir and returns their file names.
func (f *scaleFigures) plot(dir string) ([]string, error) {
	var cats []string
	var join, leader, p99, gMed, gMax, rMed, rMax []spread
	for _, sz := range f.Sizes {
		cats = append(cats, sz.label())
		join, leader = append(join, sz.Join), append(leader, sz.Leader)
		p99 = append(p99, sz.StaleP99)
		gMed, gMax = append(gMed, scale(sz.GossipMed, 1e-3)), append(gMax, scale(sz.GossipMax, 1e-3))
		rMed, rMax = append(rMed, sz.RSSMed), append(rMax, sz.RSSMax)
	}
	rssCats := slices.Clone(cats)
	rMedAll, rMaxAll := slices.Clone(rMed), slices.Clone(rMax)
	if sf := f.Sessions; sf != nil {
		rssCats = append(rssCats, "1 agent, 0 sessions", fmt.Sprintf("1 agent, %dk sessions", sf.Target/1000))
		rMedAll = append(rMedAll, sf.RSS0, sf.RSS)
		rMaxAll = append(rMaxAll, sf.RSS0, sf.RSS)
	}
	charts := []struct {
		file, title, ylabel string
		cats                []string
		series              []barSeries
	}{
		{scalePlots[0], "Start of the first agent to all agents agreeing (median, min–max)", "seconds", cats,
			[]barSeries{{"all see every member alive", join}, {"all name the same leader", leader}}},
		{scalePlots[1], "Leader's view staleness p99 (median, min–max)", "ms", cats, []barSeries{{"", p99}}},
		{scalePlots[2], "Memberlist bytes sent per agent (median, min–max)", "kB/s", cats,
			[]barSeries{{"median agent", gMed}, {"busiest agent", gMax}}},
		{scalePlots[3], "Agent RSS (median, min–max)", "MiB", rssCats,
			[]barSeries{{"median agent", rMedAll}, {"largest agent", rMaxAll}}},
	}
	var files []string
	for _, c := range charts {
		if len(c.cats) == 0 {
			continue
		}
		if err := barChart(filepath.Join(dir, c.file), c.title, c.ylabel, c.cats, c.series); err != nil {
			return files, err
		}
		files = append(files, c.file)
	}
	return files, nil
}

// writeGoals writes part 5's goals with their verdicts.
func (f *scaleFigures) writeGoals(b *strings.Builder) {
	p := f.Plan
	b.WriteString("### Goals\n\n| Goal | Bound | Measured (median, min–max) | |\n|---|---|---|---|\n")
	if sf := f.Sessions; sf != nil {
		verdict := "not measured"
		if len(sf.RSS) > 0 {
			verdict = metVerdict(sf.RSS.median() <= scaleRSSGoalMiB)
		}
		fmt.Fprintf(b, "| agent RSS with %d tracked sessions | ≤ %d MiB | %s MiB | %s |\n", sf.Target, scaleRSSGoalMiB, sf.RSS.format("%.1f"), verdict)
	}
	for _, sz := range f.Sizes {
		if sz.Runs == 0 {
			fmt.Fprintf(b, "| %s join and agree on a leader within %v | every repeat | not measured | not measured |\n", sz.label(), p.Form)
			continue
		}
		fmt.Fprintf(b, "| %s join and agree on a leader within %v | every repeat | %d of %d repeats | %s |\n",
			sz.label(), p.Form, sz.Runs-sz.FormFailed, sz.Runs, metVerdict(sz.FormFailed == 0))
		elect := "not measured"
		if len(sz.Elections) > 0 {
			elect = metVerdict(sz.Elections.max() == 0)
		}
		fmt.Fprintf(b, "| %s: no election during the window | 0 | %s | %s |\n", sz.label(), sz.Elections.format("%.0f"), elect)
	}
}

// write writes the session run's table.
func (sf *sessionFigures) write(b *strings.Builder) {
	b.WriteString("\n### One agent with many sessions\n\n| | 0 sessions | with the sessions |\n|---|---|---|\n")
	fmt.Fprintf(b, "| sessions counted by the agent | 0 | %s |\n", sf.Counted.format("%.0f"))
	fmt.Fprintf(b, "| VmRSS (MiB) | %s | %s |\n", sf.RSS0.format("%.1f"), sf.RSS.format("%.1f"))
	fmt.Fprintf(b, "| VmHWM, peak RSS (MiB) | | %s |\n", sf.HWM.format("%.1f"))
	fmt.Fprintf(b, "| Go live heap after the last GC (MiB, gctrace) | %s | %s |\n", sf.Heap0.format("%.0f"), sf.Heap.format("%.0f"))
	fmt.Fprintf(b, "| time to create them from one socket (s) | | %s |\n", sf.Drive.format("%.2f"))
	if len(sf.RSS) > 0 && len(sf.RSS0) > 0 && sf.Target > 0 {
		fmt.Fprintf(b, "\nRSS per session: %.0f bytes ((RSS with − RSS at 0) ÷ sessions, medians).\n", (sf.RSS.median()-sf.RSS0.median())*1024*1024/float64(sf.Target))
	}
}

// mustProfile returns the named timing profile, which exists.
func mustProfile(name string) cluster.Timing {
	t, err := cluster.Profile(name)
	if err != nil {
		panic(err)
	}
	return t
}

// writeElections explains elections inside the measurement window of a
// cluster that formed, with the CPU the agents used of the machine's
// cores.
func (f *scaleFigures) writeElections(b *strings.Builder, fast, lan cluster.Timing, cores int) {
	var held []string
	for _, sz := range f.Sizes {
		if sz.FormFailed < sz.Runs && len(sz.Elections) > 0 && sz.Elections.max() > 0 {
			used := ""
			if len(sz.CPU) > 0 {
				used = fmt.Sprintf(", while all agents together used %s cores", sz.CPU.format("%.2f"))
			}
			held = append(held, fmt.Sprintf("%s (up to %.0f in one repeat%s)", sz.label(), sz.Elections.max(), used))
		}
	}
	if len(held) == 0 {
		return
	}
	fmt.Fprintf(b, "\n### Elections inside the window\n\n%s held elections after they had formed, on a machine of %d cores. "+
		"A voter that is not scheduled for a raft heartbeat timeout (%v with `fast`, %v with `lan`) stands for election, and a cluster that keeps the machine's cores busy leaves voters unscheduled that long now and then. "+
		"docs/bench/history.md has runs of the same part with two builds back to back, which held elections alike.\n",
		strings.Join(held, " and "), cores, fast.RaftHeartbeat, lan.RaftHeartbeat)
}

// writeWhy explains a cluster size that did not form from the smallest
// size that did: what one agent costs in CPU, and what N of them would need
// from this machine's cores.
func (f *scaleFigures) writeWhy(b *strings.Builder, fast cluster.Timing, cores int) {
	var base *scaleSize
	var failed, lanFormed []string
	for _, sz := range f.Sizes {
		switch {
		case !sz.fast():
			if sz.Runs > 0 && sz.FormFailed == 0 {
				lanFormed = append(lanFormed, fmt.Sprintf("%d agents with profile %s formed in every repeat (leader agreed after %s s)", sz.N, sz.Profile, sz.Leader.format("%.1f")))
			}
		case sz.FormFailed == 0 && len(sz.CPU) > 0:
			if base == nil {
				base = sz
			}
		default:
			failed = append(failed, sz.label())
		}
	}
	if base == nil || len(failed) == 0 {
		return
	}
	per := base.CPU.median() / float64(base.N)
	var need []string
	for _, sz := range f.Sizes {
		if sz.fast() && sz.FormFailed > 0 {
			need = append(need, fmt.Sprintf("%d agents would need %.1f", sz.N, per*float64(sz.N)))
		}
	}
	fmt.Fprintf(b, "\n### Why %s do not always form here\n\n", strings.Join(failed, " and "))
	fmt.Fprintf(b, "At %d agents an idle `fast` agent costs %.3f cores (all agents' CPU ÷ agents; the leader alone %.2f cores), so %s cores of this machine's %d, before the benchmark's own polling. "+
		"What an agent does does not grow with N any more, except on the voters: each member sends its report straight to the voters (%d packets per %v), its gossiped metadata changes only with membership fields or every 30 s, and only the voters and two standbys are in Raft. "+
		"What is left is per agent and fixed: memberlist probes a member every %v with a %v timeout and gossips every %v, and the agent's own timers, each wake-up costing kernel time. "+
		"With more agents than the cores can serve, an agent that is not scheduled within memberlist's %v probe timeout is suspected and then marked failed (the log counts above), and every such change is gossiped to all, so the farm churns instead of settling. "+
		"On real hosts each agent has a machine of its own.", base.N, per, base.LeaderCPU.median(), strings.Join(need, ", "), cores,
		scaleVoters, fast.PublishInterval, fast.ProbeInterval, fast.ProbeTimeout, fast.GossipInterval, fast.ProbeTimeout)
	if len(lanFormed) > 0 {
		fmt.Fprintf(b, " The same count with a failure detector that tolerates such delays shows the limit is the scheduling, not the protocol: %s.", strings.Join(lanFormed, "; "))
	}
	b.WriteString("\n")
}
