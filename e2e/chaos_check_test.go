//go:build linux

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"
)

// exclusionBound is how long after a server dies the leader may still
// assign to it: its load report goes stale after three publish intervals
// (750 ms) and gossip needs a few rounds to carry that, with margin for a
// loaded 2-core machine.
const exclusionBound = 2 * time.Second

// vipEventLine is one line of an agent's -vip-events file.
type vipEventLine struct {
	Node   string `json:"node"`
	Event  string `json:"event"`
	Term   uint64 `json:"term"`
	MonoNs int64  `json:"mono_ns"`
}

// readVIPEvents parses an agent's vip_events file; a missing file is empty.
func readVIPEvents(path string) ([]vipEventLine, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []vipEventLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var ev vipEventLine
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("%s: %q: %w", path, sc.Text(), err)
		}
		out = append(out, ev)
	}
	return out, sc.Err()
}

// holdIntervals turns one agent's events into holding intervals. An
// interval still open when the process that opened it was killed ends at
// the kill; one still open at the end of the history stays open.
func holdIntervals(name string, evs []vipEventLine, lives []life) []Interval {
	// deathAfter returns the end of the life running at instant at.
	deathAfter := func(at time.Duration) time.Duration {
		for _, l := range lives {
			if at >= l.from && (l.to == 0 || at < l.to) {
				return l.to
			}
		}
		return 0
	}
	var out []Interval
	open := false
	var cur Interval
	for _, ev := range evs {
		at := time.Duration(ev.MonoNs)
		switch ev.Event {
		case "acquire":
			if open {
				// Two acquires in a row: the first process died
				// holding, or the release line was lost with it.
				cur.To = deathAfter(cur.From)
				if cur.To == 0 || cur.To > at {
					cur.To = at
				}
				out = append(out, cur)
			}
			cur, open = Interval{Holder: name, From: at}, true
		case "release":
			if open {
				cur.To = at
				out = append(out, cur)
				open = false
			}
		}
	}
	if open {
		cur.To = deathAfter(cur.From)
		out = append(out, cur)
	}
	return out
}

// verify checks the invariants every scenario must keep and records the
// violations in res. It stops the probers and the status poller, and marks
// the cluster finished, so the kills of the cleanup do not count as
// unexpected exits. Each check says what it proves and from whose record:
//
//   - unexpected-exit: no agent exited unless the test ended it.
//   - vip-overlap: the agents' own -vip-events records (checkHoldRecords).
//   - amplification, not-redirect, not-binding-success, size-unanswered:
//     what the client host received (checkSizes).
//   - term-interleave, term-shared: who was seen serving, by the prober's
//     answers and the status polls (checkFencing).
//   - dead-assignment: the prober's answers against the kills the test
//     made (checkDeadAssignments).
func (c *chaosCluster) verify(pr *prober, res *chaosResult) {
	c.t.Helper()
	c.mu.Lock()
	c.finished = true
	unexpected := slices.Clone(c.unexpected)
	c.mu.Unlock()
	for _, a := range c.agents {
		a.mu.Lock()
		a.expected = true
		a.mu.Unlock()
	}
	for _, u := range unexpected {
		c.fail(res, "unexpected-exit", "%s", u)
	}
	c.checkHoldRecords(res)
	pr.close()
	c.sizes.close()
	c.polls.close()
	answers := append(pr.snapshot(), c.sizes.snapshot()...)
	res.Answers += len(answers)
	c.checkSizes(answers, res)
	c.checkFencing(pr, res)
	c.checkDeadAssignments(answers, res)
}

// fail records a violation of the given kind and fails the test.
func (c *chaosCluster) fail(res *chaosResult, kind, format string, args ...any) {
	c.t.Helper()
	res.violation(kind)
	c.t.Errorf(kind+": "+format, args...)
}

// reporter records violations of many kinds, failing the test with the
// first few of each kind only.
type reporter struct {
	c     *chaosCluster
	res   *chaosResult
	shown map[string]int
}

// reporterShows is how many violations of one kind a reporter shows.
const reporterShows = 3

func (c *chaosCluster) reporter(res *chaosResult) *reporter {
	return &reporter{c: c, res: res, shown: map[string]int{}}
}

// add records one violation of kind, and fails the test with it if it is
// among the first of its kind.
func (r *reporter) add(kind, format string, args ...any) {
	r.c.t.Helper()
	if r.shown[kind]++; r.shown[kind] <= reporterShows {
		r.c.fail(r.res, kind, format, args...)
		return
	}
	r.res.violation(kind)
}

// done says how many violations of each kind were not shown.
func (r *reporter) done() {
	r.c.t.Helper()
	for kind, n := range r.shown {
		if n > reporterShows {
			r.c.t.Errorf("%s: %d violations in all", kind, n)
		}
	}
}

// checkHoldRecords checks that no two agents' holding intervals, as each
// agent recorded them in its -vip-events file (ended at the kill for a
// holder killed while holding), overlap. This trusts the holders: it
// proves that the VIP owner's own bookkeeping never let two nodes believe
// they held at once (an acquire before the last holder's release, a
// restart that kept an old hold), but an agent records a release at its
// lease deadline at the latest, so one that served past its lease looks
// clean here; checkFencing and the scenarios' lease checks do not trust
// that record.
func (c *chaosCluster) checkHoldRecords(res *chaosResult) {
	c.t.Helper()
	var all []Interval
	for _, a := range c.agents {
		evs, err := readVIPEvents(a.eventsPath())
		if err != nil {
			c.t.Errorf("vip events of %s: %v", a.name, err)
			continue
		}
		all = append(all, holdIntervals(a.name, evs, a.history())...)
	}
	res.Holds += len(all)
	for _, p := range Overlaps(all) {
		c.fail(res, "vip-overlap", "%s recorded holding [%v, %v) while %s recorded holding [%v, %v)",
			p[0].Holder, p[0].From, p[0].To, p[1].Holder, p[1].From, p[1].To)
	}
}

// checkSizes checks every answer the client host received against the
// size rule (an Usher request's answer no larger than the request, a stock
// request's at most stockAmplification times it), that every answer at the
// VIP is a 300 redirect of the request's method, but a stock Binding's, a
// Binding success (stock_binding = "answer"), and that every kind of
// request the probers sent was answered at least once, so that no size
// check passed for want of answers.
func (c *chaosCluster) checkSizes(answers []answer, res *chaosResult) {
	c.t.Helper()
	kinds := map[string]int{}
	for _, tg := range c.sizes.targets {
		kinds[tg.kind.name] += 0
	}
	r := c.reporter(res)
	for i, a := range answers {
		kinds[a.kind.name]++
		if lim := a.kind.limit(a.req); a.size > lim {
			r.add("amplification", "answer %d: %d bytes to a %d-byte %s (limit %d)", i, a.size, a.req, a.kind.name, lim)
		}
		switch {
		case a.vip && a.kind == stockBinding && !a.success:
			r.add("not-binding-success", "answer %d at the VIP to a %s is not a Binding success (stock_binding = answer; code %d)", i, a.kind.name, a.code)
		case a.vip && a.kind != stockBinding && !a.redirect:
			r.add("not-redirect", "answer %d at the VIP to a %s sent at %v is not a 300 redirect of its method (code %d)", i, a.kind.name, a.sent, a.code)
		}
	}
	r.done()
	for k, n := range kinds {
		if n == 0 {
			c.fail(res, "size-unanswered", "no %s was answered: its size rule went unchecked", k)
		}
	}
	c.t.Logf("answers checked against the size rule, by kind of request: %v", kinds)
}

// checkFencing checks, from evidence gathered outside the serving nodes
// (the answers at the VIP and the status polls, see Sighting), that no
// node served in an older term after a newer term had served
// (term-interleave: StaleServing), and that no two nodes served in one
// term (term-shared: SharedTerms). Unlike checkHoldRecords it sees a node
// that serves past its lease, as soon as a newer term has been seen
// serving first. It fails if the polls never saw anyone serve, which
// would leave it checking the prober alone.
func (c *chaosCluster) checkFencing(pr *prober, res *chaosResult) {
	c.t.Helper()
	s := c.sightings(pr)
	polled, answered := c.polls.snapshot()
	res.Polls += answered
	if len(polled) == 0 {
		c.fail(res, "no-sightings", "%d status polls answered, none found a node serving", answered)
	}
	c.t.Logf("fencing checked on %d sightings, %d of them from %d status polls answered", len(s), len(polled), answered)
	r := c.reporter(res)
	defer r.done()
	bad, late := StaleServing(s)
	for _, p := range bad {
		r.add("term-interleave", "%s served term %d within [%v, %v], after %s had served term %d within [%v, %v]",
			who(p[1]), p[1].Term, p[1].Sent, p[1].Recv, who(p[0]), p[0].Term, p[0].Sent, p[0].Recv)
	}
	for _, p := range SharedTerms(s) {
		r.add("term-shared", "%s and %s both served term %d (within [%v, %v] and [%v, %v])",
			p[0].Node, p[1].Node, p[0].Term, p[0].Sent, p[0].Recv, p[1].Sent, p[1].Recv)
	}
	if late > 0 {
		res.note("%d sightings of an older term arrived after a newer term had been seen serving, all asked for before that (delivered late, not served late)", late)
	}
}

// who names the node of a sighting.
func who(s Sighting) string {
	if s.Node == "" {
		return "the VIP"
	}
	return s.Node
}

// checkDeadAssignments checks that no probe sent more than exclusionBound
// after a server died was assigned to it, until it was started again.
func (c *chaosCluster) checkDeadAssignments(answers []answer, res *chaosResult) {
	c.t.Helper()
	for _, ag := range c.agents {
		lives := ag.history()
		for i, l := range lives {
			if l.to == 0 {
				continue
			}
			until := time.Duration(1<<63 - 1)
			if i+1 < len(lives) {
				until = lives[i+1].from
			}
			for _, a := range answers {
				if a.server == ag.sessionAddr() && a.sent >= l.to+exclusionBound && a.sent < until {
					c.fail(res, "dead-assignment", "probe sent %v after %s died was assigned to it", a.sent-l.to, ag.name)
					break
				}
			}
		}
	}
}

// checkUndisturbed fails for every session in ss that lost its server or
// went longer than one keepalive interval plus slack without an answer
// within [from, to).
func (c *chaosCluster) checkUndisturbed(ss []*chaosSession, from, to time.Duration, res *chaosResult) {
	c.t.Helper()
	for i, s := range ss {
		c.checkSession(fmt.Sprintf("session %d", i), s, from, to, res)
	}
}

// checkSession is checkUndisturbed for one session, named name.
func (c *chaosCluster) checkSession(name string, s *chaosSession, from, to time.Duration, res *chaosResult) {
	c.t.Helper()
	if how, bad := s.disturbedIn(from, to); bad {
		res.violation("session-disturbed")
		c.t.Errorf("session-disturbed: %s (on %v): %s; window [%v, %v); events %s; stats %+v", name, s.s.Server(), how, from, to, s.describeEvents(), s.s.Stats())
	}
}
