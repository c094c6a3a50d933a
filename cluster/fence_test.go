package cluster

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"
)

// The checks in this file see serving from the outside. A node's own
// records (Config.OnVIP) clamp the end of a serving interval to the lease
// deadline the node computed itself, so they cannot show a node that serves
// past its lease; a servingWatch instead calls every node's Serving in a
// tight loop, as the probe path does, and keeps what it saw.

// servingPoll is how often a servingWatch polls each node.
const servingPoll = 500 * time.Microsecond

// sighting is one call of Serving that returned true: t0 is the Monotonic
// instant read just before the call, t1 the one read just after it
// returned. It proves that the node served in term at some instant in
// [t0, t1]: in particular at or after t0, and at or before t1.
type sighting struct {
	term   uint64
	t0, t1 time.Duration
}

// servingWatch polls the Serving method of every node added to it, from
// its own goroutine, until close. It fails nothing by itself: overlaps
// reports what it saw.
type servingWatch struct {
	mu    sync.Mutex
	nodes []*Cluster
	seen  map[string]*nodeSightings // by node name: a restarted node is the same node
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// nodeSightings is what a servingWatch saw of one node.
type nodeSightings struct {
	serving  []sighting    // every true answer, in order
	lastPoll time.Duration // t0 of the latest call, whatever it answered
}

func newServingWatch() *servingWatch {
	w := &servingWatch{
		seen: map[string]*nodeSightings{},
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go w.run()
	return w
}

// add starts polling c. Nodes are never removed: Serving is false on a node
// that was shut down.
func (w *servingWatch) add(c *Cluster) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nodes = append(w.nodes, c)
	if w.seen[c.Name()] == nil {
		w.seen[c.Name()] = &nodeSightings{}
	}
}

// close stops the poller and waits for it; it is idempotent.
func (w *servingWatch) close() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

func (w *servingWatch) run() {
	defer close(w.done)
	var nodes []*Cluster
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		w.mu.Lock()
		nodes = append(nodes[:0], w.nodes...)
		w.mu.Unlock()
		for _, c := range nodes {
			// The clock is read before the call: a true answer then proves
			// serving at or after t0, however late the call ran.
			t0 := Monotonic()
			term, ok := c.Serving()
			t1 := Monotonic()
			w.record(c.Name(), sighting{term: term, t0: t0, t1: t1}, ok)
		}
		time.Sleep(servingPoll)
	}
}

func (w *servingWatch) record(name string, s sighting, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.seen[name]
	n.lastPoll = max(n.lastPoll, s.t0)
	if ok {
		n.serving = append(n.serving, s)
	}
}

// polledSince reports whether the watch has called name's Serving at or
// after at (an instant on the Monotonic scale).
func (w *servingWatch) polledSince(name string, at time.Duration) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.seen[name]
	return n != nil && n.lastPoll >= at
}

// waitPolled waits until the watch has called name's Serving at or after at,
// so that a check over the sightings up to at is not vacuous.
func (w *servingWatch) waitPolled(t testing.TB, name string, at time.Duration) {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("%s polled after %v", name, at), func() bool {
		return w.polledSince(name, at)
	})
}

// last returns name's latest sighting in term (any term if term is 0).
func (w *servingWatch) last(name string, term uint64) (sighting, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.seen[name]
	if n == nil {
		return sighting{}, false
	}
	for i := len(n.serving) - 1; i >= 0; i-- {
		if s := n.serving[i]; term == 0 || s.term == term {
			return s, true
		}
	}
	return sighting{}, false
}

// within returns the first of name's sightings that prove serving at an
// instant in [from, to) (t0 >= from and t1 < to), and how many there are.
func (w *servingWatch) within(name string, from, to time.Duration) (first sighting, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := w.seen[name]
	if seen == nil {
		return sighting{}, 0
	}
	for _, s := range seen.serving {
		if s.t0 >= from && s.t1 < to {
			if n == 0 {
				first = s
			}
			n++
		}
	}
	return first, n
}

// span is the hull of one node's sightings in one term: the node served
// in term at some instant in [first.t0, first.t1] and at some instant in
// [last.t0, last.t1].
type span struct {
	node        string
	term        uint64
	first, last sighting
}

// spans returns every node's spans, one per node and term.
func (w *servingWatch) spans() []span {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []span
	for name, n := range w.seen {
		byTerm := map[uint64]int{}
		for _, s := range n.serving {
			i, ok := byTerm[s.term]
			if !ok {
				byTerm[s.term] = len(out)
				out = append(out, span{node: name, term: s.term, first: s, last: s})
				continue
			}
			out[i].last = s
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].first.t0 < out[j].first.t0 })
	return out
}

// overlaps returns a description of every pair of spans of two nodes that
// proves two holders. Raft elects at most one leader per term, so two
// nodes serving in one term is one. For two terms, the fencing argument
// (doc.go) says more than "never at the same instant": a node that serves
// in a newer term was elected after the older term's holder last served,
// so every instant at which the older term is served precedes every instant
// at which the newer one is. The sightings prove the opposite order when
// the older term's last sighting began (t0) after the newer term's first
// sighting ended (t1): the older term was then served at an instant after
// one at which the newer term was served. Neither check can fail because
// the poller ran late: a late call only widens [t0, t1].
func (w *servingWatch) overlaps() []string {
	all := w.spans()
	var out []string
	for i := range all {
		for j := i + 1; j < len(all); j++ {
			a, b := all[i], all[j]
			if a.node == b.node {
				continue
			}
			if a.term == b.term {
				out = append(out, fmt.Sprintf("%s and %s both served in term %d (%v and %v)",
					a.node, b.node, a.term, a.first.t0, b.first.t0))
				continue
			}
			older, newer := a, b
			if older.term > newer.term {
				older, newer = b, a
			}
			if older.last.t0 > newer.first.t1 {
				out = append(out, fmt.Sprintf("%s served term %d at or after %v, %v after %s had served term %d (by %v)",
					older.node, older.term, older.last.t0, older.last.t0-newer.first.t1,
					newer.node, newer.term, newer.first.t1))
			}
		}
	}
	return out
}

// TestServingWatchOverlaps feeds a servingWatch made-up sightings: it must
// report exactly the pairs whose order the sightings prove wrong.
func TestServingWatchOverlaps(t *testing.T) {
	type seen struct {
		node   string
		term   uint64
		t0, t1 time.Duration
	}
	ms := time.Millisecond
	tests := []struct {
		name  string
		seen  []seen
		wants int
	}{
		{"handover with a gap", []seen{{"a", 2, 10 * ms, 11 * ms}, {"a", 2, 20 * ms, 21 * ms}, {"b", 3, 30 * ms, 31 * ms}}, 0},
		{"one node over terms", []seen{{"a", 2, 10 * ms, 11 * ms}, {"a", 3, 5 * ms, 6 * ms}}, 0},
		// a's last call began before b's first returned: either order is possible.
		{"calls that overlap prove nothing", []seen{{"a", 2, 10 * ms, 30 * ms}, {"b", 3, 20 * ms, 21 * ms}}, 0},
		{"older term served after newer", []seen{{"b", 3, 10 * ms, 11 * ms}, {"a", 2, 5 * ms, 6 * ms}, {"a", 2, 12 * ms, 13 * ms}}, 1},
		{"two nodes in one term", []seen{{"a", 2, 10 * ms, 11 * ms}, {"b", 2, 50 * ms, 51 * ms}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &servingWatch{seen: map[string]*nodeSightings{}}
			for _, s := range tt.seen {
				if w.seen[s.node] == nil {
					w.seen[s.node] = &nodeSightings{}
				}
				w.record(s.node, sighting{term: s.term, t0: s.t0, t1: s.t1}, true)
			}
			if got := w.overlaps(); len(got) != tt.wants {
				t.Errorf("overlaps %q, want %d", got, tt.wants)
			}
		})
	}
}
