package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/usherlb/usher/node"
)

// Options are the settings of a demo run.
type Options struct {
	Clients   int           // client sessions dialed through the balancer address
	Phase     time.Duration // how long each act of the demo lasts
	Keepalive time.Duration // keepalive interval the agents give clients
	DeadAfter time.Duration // silence after which a client declares its server dead
	VIP       string        // balancer address to try first, on loopback
	Bin       string        // the usher binary that runs the agents
	Verbose   bool          // write the tails of the agents' logs to stderr if the demo fails
	TTY       bool          // redraw the table in place
}

// Validate reports settings the demo cannot run with.
func (o Options) Validate() error {
	switch {
	case o.Clients < 1 || o.Phase <= 0 || o.Keepalive <= 0:
		return errors.New("clients, phase and keepalive must be positive")
	case o.DeadAfter <= o.Keepalive:
		return errors.New("dead-after must be above keepalive")
	case o.Bin == "":
		return errors.New("no usher binary to run the agents with")
	}
	return nil
}

// Run plays the demo with o: five agent processes of o.Bin on loopback,
// o.Clients client sessions in this process, the leader and then a server
// killed, and a summary, all written to stdout. It returns an error if the
// farm fails or any session on a server that stayed up was disturbed; the
// agents' logs are then kept and their directory named in the error, and
// with o.Verbose their tails are written to stderr. The agents are stopped
// by the time it returns.
func Run(ctx context.Context, o Options, stdout, stderr io.Writer) error {
	if err := o.Validate(); err != nil {
		return err
	}
	plan, err := planFarm(o.VIP)
	if err != nil {
		return err
	}
	f, err := startFarm(o.Bin, plan, o)
	if err != nil {
		return err
	}
	d := &demo{o: o, out: stdout, farm: f, start: time.Now(), killed: map[netip.AddrPort]bool{}}
	res, err := d.run(ctx)
	if d.fleet != nil {
		d.fleet.Close()
	}
	if err == nil && res.disturbed > 0 {
		err = fmt.Errorf("%d sessions disturbed on servers that stayed up", res.disturbed)
	}
	switch {
	case err != nil && ctx.Err() != nil:
		return errors.Join(fmt.Errorf("interrupted; agents stopped: %w", ctx.Err()), f.Close())
	case err != nil:
		f.Keep = true
		if o.Verbose {
			f.WriteLogTails(stderr, 30)
		}
		return errors.Join(fmt.Errorf("%w (agent logs kept in %s)", err, f.Dir), f.Close())
	}
	return f.Close()
}

// demo is one run of the demo.
type demo struct {
	o     Options
	out   io.Writer
	farm  *demoFarm
	fleet *fleet
	start time.Time

	status map[string]node.Status // the latest answers, by node name
	notes  []string               // the story so far
	killed map[netip.AddrPort]bool

	drawn    int       // lines of the last in-place table
	lastDraw time.Time // when the table was last printed (not a terminal)
}

// demoResult is what the summary reports.
type demoResult struct {
	dialed, dialFailed int
	dialTime           time.Duration

	oldLeader, newLeader string
	oldTerm, newTerm     uint64
	failover             time.Duration
	proberSent           uint64

	kills []killRecord

	disturbed int
	load      []int // sessions on each live server at the end
}

// killRecord is one SIGKILL and the clients it displaced.
type killRecord struct {
	node    string
	role    string
	clients int
	times   []time.Duration // kill to each client's reassignment
	pending int             // clients not reassigned
}

// run plays the demo's acts and prints the summary.
func (d *demo) run(ctx context.Context) (demoResult, error) {
	var res demoResult
	fmt.Fprintf(d.out, "usher demo: %d agents of %s, VIP %s\n  scratch dir %s\n",
		demoNodes, d.o.Bin, d.farm.VIP, d.farm.Dir)
	for _, act := range []func(context.Context, *demoResult) error{d.form, d.killLeader, d.killServer} {
		if err := act(ctx, &res); err != nil {
			return res, err
		}
	}
	res.disturbed = d.fleet.disturbed(d.killed)
	for _, n := range d.farm.nodes {
		if st, ok := d.status[n.Name]; ok && n.alive() {
			res.load = append(res.load, st.Sessions)
		}
	}
	d.draw(true)
	d.summary(res)
	for _, k := range res.kills {
		if k.pending > 0 {
			return res, fmt.Errorf("%d clients of %s were not reassigned", k.pending, k.node)
		}
	}
	return res, nil
}

// form is the first act: the farm forms and elects a leader, the clients
// dial the VIP, and the farm runs steady for a phase.
func (d *demo) form(ctx context.Context, res *demoResult) error {
	d.note("started %d agents; waiting for a leader and all load reports", demoNodes)
	if err := d.waitUntil(ctx, 30*time.Second, d.formed); err != nil {
		if errors.Is(err, errTimeout) {
			err = d.formationTrouble()
		}
		return fmt.Errorf("farm did not form: %w", err)
	}
	leader := d.leader()
	d.note("%s leads (term %d) and holds %s", leader.Name, d.status[leader.Name].Term, d.farm.VIP)

	began := time.Now()
	d.fleet, res.dialFailed = dialFleet(ctx, d.farm.VIP, d.o.Clients)
	res.dialTime, res.dialed = time.Since(began), d.fleet.size()
	d.note("%d clients dialed %s in %v (%d failed)", res.dialed, d.farm.VIP, res.dialTime.Round(time.Millisecond), res.dialFailed)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case res.dialed == 0:
		return errors.New("no client could dial the balancer address")
	}
	return d.waitUntil(ctx, d.o.Phase, nil)
}

// killLeader is the second act: SIGKILL the leader, probe the VIP every
// 20ms until a leader of a later term answers, wait for the leader's own
// clients to move, and run for the rest of a phase.
func (d *demo) killLeader(ctx context.Context, res *demoResult) error {
	if err := d.waitUntil(ctx, 5*time.Second, func() bool { return d.leader() != nil }); err != nil {
		return fmt.Errorf("no leader before the first kill: %w", err)
	}
	leader := d.leader()
	res.oldLeader, res.oldTerm = leader.Name, d.status[leader.Name].Term
	prober, err := startProber(d.farm.VIP, res.oldTerm, 20*time.Millisecond)
	if err != nil {
		return fmt.Errorf("failover prober: %w", err)
	}
	defer prober.Close()
	k, at, displaced, err := d.kill(leader, "leader")
	if err != nil {
		return err
	}
	wait := time.NewTimer(15 * time.Second)
	defer wait.Stop()
	select {
	case <-prober.first:
	case <-wait.C:
		return fmt.Errorf("no new leader answered at %s within 15s of killing %s", d.farm.VIP, leader.Name)
	case <-ctx.Done():
		return ctx.Err()
	}
	prober.Close()
	res.proberSent = prober.sent.Load()
	res.failover, res.newTerm = prober.at.Sub(at), prober.term
	d.refresh(ctx)
	if l := d.leader(); l != nil {
		res.newLeader = l.Name
	}
	d.note("%s answers at %s after %v (term %d → %d)", orUnknown(res.newLeader), d.farm.VIP,
		res.failover.Round(time.Millisecond), res.oldTerm, res.newTerm)
	if err := d.waitMoved(ctx, &k, displaced, at); err != nil {
		return err
	}
	res.kills = append(res.kills, k)
	return d.waitUntil(ctx, time.Until(at.Add(d.o.Phase)), nil)
}

// killServer is the last act: SIGKILL a server with clients that does not
// lead, wait for its clients to move, and let the survivors' session
// tables settle.
func (d *demo) killServer(ctx context.Context, res *demoResult) error {
	victim := d.victim()
	if victim == nil {
		return errors.New("no live non-leader server with clients to kill")
	}
	k, at, displaced, err := d.kill(victim, d.roleOf(victim))
	if err != nil {
		return err
	}
	if err := d.waitMoved(ctx, &k, displaced, at); err != nil {
		return err
	}
	res.kills = append(res.kills, k)
	return d.waitUntil(ctx, max(d.o.Phase/2, 2*d.o.DeadAfter), nil)
}

// kill sends SIGKILL to n; it returns the record to fill in, when the
// signal was sent and the clients n had then.
func (d *demo) kill(n *farmNode, role string) (killRecord, time.Time, []*member, error) {
	on := d.fleet.on(n.Session)
	k := killRecord{node: n.Name, role: role, clients: len(on)}
	d.killed[n.Session] = true
	at, err := d.farm.kill(n)
	if err != nil {
		return k, at, on, err
	}
	d.note("SIGKILL %s (%s, %d clients)", n.Name, role, k.clients)
	return k, at, on, nil
}

// waitMoved waits until the displaced clients have all been reassigned
// since at, or for at most a few declare-dead timeouts plus a full probe
// round, and fills in k. Clients still not reassigned are no error (the
// summary reports them); an agent that died or ctx ending is.
func (d *demo) waitMoved(ctx context.Context, k *killRecord, displaced []*member, at time.Time) error {
	deadline := at.Add(3*d.o.DeadAfter + 10*time.Second)
	moved := func() bool {
		_, pending := d.fleet.movedSince(displaced, at)
		return pending == 0
	}
	if err := d.waitUntil(ctx, time.Until(deadline), moved); err != nil && !errors.Is(err, errTimeout) {
		return err
	}
	k.times, k.pending = d.fleet.movedSince(displaced, at)
	if k.pending == 0 && len(k.times) > 0 {
		d.note("all %d clients of %s reassigned within %v", k.clients, k.node, slices.Max(k.times).Round(time.Millisecond))
	} else if k.pending > 0 {
		d.note("%d of %d clients of %s still not reassigned", k.pending, k.clients, k.node)
	}
	return nil
}

// errTimeout is returned by waitUntil when the condition did not hold in
// time.
var errTimeout = errors.New("timed out")

// waitUntil refreshes the table every quarter second until cond holds (nil:
// until the time is up, which is then no error), the time is up, an agent
// dies on its own or ctx is done.
func (d *demo) waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) error {
	end := time.Now().Add(timeout)
	for {
		d.refresh(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if n := d.farm.exitedEarly(); n != nil {
			return fmt.Errorf("%w: %s (%v; log: %s)", errAgentExited, n.Name, n.WaitErr(), n.LogPath)
		}
		if cond != nil && cond() {
			return nil
		}
		if !time.Now().Before(end) {
			if cond == nil {
				return nil
			}
			return errTimeout
		}
		t := time.NewTimer(min(250*time.Millisecond, time.Until(end)))
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// refresh polls the agents and redraws the table.
func (d *demo) refresh(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	d.status = d.farm.statuses(pctx)
	cancel()
	d.draw(false)
}

// formed reports whether one agent serves the balancer address and sees
// every member alive with a load report.
func (d *demo) formed() bool {
	l := d.leader()
	if l == nil || len(d.status) < demoNodes {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ms, err := d.farm.Members(ctx, l.Agent)
	if err != nil {
		return false
	}
	ready := 0
	for _, m := range ms {
		// A node reports draining until it holds the farm's ticket key:
		// clients dialed before then would all miss it.
		if m.Status == "alive" && m.SessionAddr != "" && m.Capacity > 0 && !m.Draining {
			ready++
		}
	}
	return ready == demoNodes
}

// formationTrouble says why the farm has not formed in time.
func (d *demo) formationTrouble() error {
	switch {
	case len(d.status) < demoNodes:
		return fmt.Errorf("only %d of %d agents answer on their API after 30s", len(d.status), demoNodes)
	case d.leader() == nil:
		for name, st := range d.status {
			if st.Role == node.RoleLeader {
				return fmt.Errorf("%s leads but cannot take the balancer address %s: does another agent or demo hold it? (try -vip)", name, d.farm.VIP)
			}
		}
		return errors.New("no leader elected after 30s")
	}
	return errors.New("the leader does not see every member alive with a load report after 30s")
}

// leader returns the live node serving the balancer address, if one does.
func (d *demo) leader() *farmNode {
	for _, n := range d.farm.nodes {
		if st, ok := d.status[n.Name]; ok && n.alive() && st.Serving {
			return n
		}
	}
	return nil
}

// roleOf returns n's role as it last reported it.
func (d *demo) roleOf(n *farmNode) string {
	if !n.alive() {
		return "dead"
	}
	if st, ok := d.status[n.Name]; ok {
		return st.Role
	}
	return "?"
}

// victim picks the server to kill in the second act: a live node that does
// not lead and has clients, a non-voter first (so the voters keep their
// quorum whatever autopilot has done yet), then the one with most clients.
func (d *demo) victim() *farmNode {
	on, _ := d.fleet.placement()
	var best *farmNode
	better := func(n *farmNode) bool {
		if best == nil {
			return true
		}
		nv, bv := d.roleOf(n) == node.RoleNonVoter, d.roleOf(best) == node.RoleNonVoter
		if nv != bv {
			return nv
		}
		return on[n.Session] > on[best.Session]
	}
	for _, n := range d.farm.nodes {
		if !n.alive() || on[n.Session] == 0 || d.roleOf(n) == node.RoleLeader {
			continue
		}
		if better(n) {
			best = n
		}
	}
	return best
}

// note adds a line to the story, time-stamped since the start.
func (d *demo) note(format string, args ...any) {
	line := fmt.Sprintf("[%5.1fs] ", time.Since(d.start).Seconds()) + fmt.Sprintf(format, args...)
	d.notes = append(d.notes, line)
	if !d.o.TTY {
		fmt.Fprintln(d.out, line)
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "a new leader"
	}
	return s
}

// table returns the node table's lines.
func (d *demo) table() []string {
	placement, moving := map[netip.AddrPort]int{}, 0
	clients := 0
	if d.fleet != nil {
		placement, moving = d.fleet.placement()
		clients = d.fleet.size()
	}
	holder, term := "nobody", uint64(0)
	if l := d.leader(); l != nil {
		holder, term = l.Name, d.status[l.Name].Term
	}
	var b strings.Builder
	lines := []string{
		fmt.Sprintf("t=%5.1fs  VIP %s: %s (term %d)  clients %d settled, %d moving",
			time.Since(d.start).Seconds(), d.farm.VIP, holder, term, clients-moving, moving),
		fmt.Sprintf("  %-4s  %-17s  %-9s  %-8s  %8s  %7s", "NODE", "SESSION ADDR", "ROLE", "STATE", "SESSIONS", "CLIENTS"),
	}
	for _, n := range d.farm.nodes {
		b.Reset()
		role, state, sessions := "?", "no answer", "-"
		st, ok := d.status[n.Name]
		switch {
		case !n.alive():
			role, state = "dead", "killed"
		case ok:
			role, state, sessions = st.Role, "alive", fmt.Sprint(st.Sessions)
			if st.Draining {
				state = "draining"
			}
			if st.Serving {
				role += "*"
			}
		}
		lines = append(lines, fmt.Sprintf("  %-4s  %-17s  %-9s  %-8s  %8s  %7d", n.Name, n.Session, role, state, sessions, placement[n.Session]))
	}
	lines = append(lines, "  * holds the VIP; SESSIONS: server's table; CLIENTS: clients' view")
	return lines
}

// draw prints the table: in place on a terminal, else every few seconds
// (or now, if force). Lines stay under 80 columns, so that moving the
// cursor up by the line count lands on the table's first line.
func (d *demo) draw(force bool) {
	if !d.o.TTY {
		if !force && time.Since(d.lastDraw) < max(2*time.Second, d.o.Phase/2) {
			return
		}
		d.lastDraw = time.Now()
		fmt.Fprintln(d.out, strings.Join(d.table(), "\n"))
		return
	}
	lines := d.table()
	lines = append(lines, "")
	lines = append(lines, d.notes[max(0, len(d.notes)-8):]...)
	var b strings.Builder
	if d.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA\r\x1b[J", d.drawn)
	}
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\n")
	}
	d.drawn = len(lines)
	fmt.Fprint(d.out, b.String())
}
