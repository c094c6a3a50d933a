//go:build linux

package e2e

import (
	"bufio"
	"cmp"
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
// violations in res: no two VIP holders at once, no answer from an older
// term after a newer one, no answer larger than its request, no assignment
// to a dead server past the exclusion bound, no agent exit the test did
// not cause. It marks the cluster finished, so the kills of the cleanup do
// not count as unexpected exits.
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
	fail := func(kind, format string, args ...any) {
		c.t.Helper()
		res.violation(kind)
		c.t.Errorf(kind+": "+format, args...)
	}
	for _, u := range unexpected {
		fail("unexpected-exit", "%s", u)
	}

	// Never two VIP holders at once.
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
		fail("vip-overlap", "%s held [%v, %v) while %s held [%v, %v)",
			p[0].Holder, p[0].From, p[0].To, p[1].Holder, p[1].From, p[1].To)
	}

	if pr == nil {
		return
	}
	pr.close()
	answers := pr.snapshot()
	res.Answers += len(answers)
	for i, a := range answers {
		if a.size > a.req {
			fail("amplification", "answer %d: %d bytes to a %d-byte probe", i, a.size, a.req)
		}
		if !a.redirect {
			fail("not-redirect", "answer %d is not a 300 redirect", i)
		}
	}
	bad, late := termInterleavings(answers)
	for _, p := range bad {
		fail("term-interleave", "a probe sent at %v was answered in term %d, after a probe was answered in term %d at %v",
			p[1].sent, p[1].term, p[0].term, p[0].recv)
	}
	if late > 0 {
		res.note("%d answers of an older term arrived after a newer term had answered, all to probes sent before that (delivered late, not served late)", late)
	}
	// No assignment to a server after it died plus the exclusion bound,
	// until it was started again.
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
					fail("dead-assignment", "probe sent %v after %s died was assigned to it", a.sent-l.to, ag.name)
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
		if how, bad := s.disturbedIn(from, to); bad {
			res.violation("session-disturbed")
			c.t.Errorf("session-disturbed: session %d (on %v): %s; window [%v, %v); events %s; stats %+v", i, s.s.Server(), how, from, to, s.describeEvents(), s.s.Stats())
		}
	}
}

// termInterleavings finds the answers that prove two terms served at once:
// an answer in term T to a probe sent after an answer in a newer term had
// already arrived. For each it returns the newer answer that preceded it
// and the offending one. An older-term answer to a probe sent before any
// newer term answered is not a violation: the old holder may have answered
// while still holding, and the packet arrived late (a dead host's kernel
// flushes the answers it queued while resolving the client's address once
// its link is back). late counts those.
func termInterleavings(answers []answer) (bad [][2]answer, late int) {
	byRecv := slices.Clone(answers)
	slices.SortFunc(byRecv, func(a, b answer) int { return cmp.Compare(a.recv, b.recv) })
	// best[i] is the answer with the highest term among byRecv[:i+1].
	best := make([]answer, len(byRecv))
	for i, a := range byRecv {
		best[i] = a
		if i > 0 && best[i-1].term >= a.term {
			best[i] = best[i-1]
		}
	}
	for _, a := range byRecv {
		// Newest answer received strictly before a's probe was sent.
		i, _ := slices.BinarySearchFunc(byRecv, a.sent, func(x answer, t time.Duration) int { return cmp.Compare(x.recv, t) })
		if i > 0 && best[i-1].term > a.term {
			bad = append(bad, [2]answer{best[i-1], a})
			continue
		}
		// Newest answer received before a itself arrived.
		j, _ := slices.BinarySearchFunc(byRecv, a.recv, func(x answer, t time.Duration) int { return cmp.Compare(x.recv, t) })
		if j > 0 && best[j-1].term > a.term {
			late++
		}
	}
	return bad, late
}
