package cluster

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
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

// TestLeaseCountsFromRoundStart makes every acknowledgement the leader
// receives arrive late, by more than RaftLease: a lease counted from the
// sending of each heartbeat then renews nothing, and the leader, still
// raft's leader throughout, must not be seen serving. A lease counted from
// the answer's arrival would let it serve RaftLease past each slow answer,
// longer than the followers promised to stay loyal.
//
// The bound is exact. The slowLink holds every byte the leader reads on its
// raft connections for the delay in force just after the byte arrived.
// Take an AppendEntries sent at s whose Success answer the leader reads
// after it arrived at a; the answer was produced after the request was
// sent, so s < a. If the delay was in force at a, the answer is read after
// a + delay > s + RaftLease: the deadline it brings has passed before it is
// set, and lets no instant be served. If not, either a came before the
// delay was set, before delayOn (read after setDelay returned), so the
// deadline is below delayOn + RaftLease; or a came after it was lifted,
// after delayOff (read before setDelay(0)), and so did the renewal.
// Hence no instant in [delayOn + RaftLease, delayOff) is served, and no call
// of Serving that began at or after the first and returned before the
// second can answer true.
func TestLeaseCountsFromRoundStart(t *testing.T) {
	const delay, hold = 200 * time.Millisecond, 1500 * time.Millisecond
	ledger := newVIPLedger(t)
	links := map[string]*slowLink{}
	useWrapStream(t, func(name string, s raft.StreamLayer) raft.StreamLayer {
		l := &slowLink{StreamLayer: s}
		links[name] = l
		return l
	})
	nodes := startFarm(t, 3, 3, ledger)
	leader := waitSingleServer(t, nodes, 15*time.Second)
	term, _ := leader.Serving()
	lease := leader.timing.RaftLease
	if delay <= lease {
		t.Fatalf("delay %v must exceed RaftLease %v", delay, lease)
	}

	links[leader.Name()].setDelay(delay)
	delayOn := Monotonic()
	time.Sleep(hold)
	delayOff := Monotonic()
	links[leader.Name()].setDelay(0)
	ledger.watch.waitPolled(t, leader.Name(), delayOff)
	if s, n := ledger.watch.within(leader.Name(), delayOn+lease, delayOff); n > 0 {
		t.Errorf("%s seen serving term %d at or after %v, %v after its replies slowed to %v (lease %v), and %d times more",
			leader.Name(), s.term, s.t0, s.t0-delayOn, delay, lease, n-1)
	}
	// The check above is not vacuous: the leader led throughout, and
	// serves again in the same term once its replies are fast.
	eventually(t, 5*time.Second, fmt.Sprintf("%s serving term %d again", leader.Name(), term), func() bool {
		got, ok := leader.Serving()
		return ok && got == term
	})
	back, _ := ledger.watch.last(leader.Name(), term)
	t.Logf("%s served term %d again %v after the delay was lifted", leader.Name(), term, back.t0-delayOff)
}

// connClock wraps a raft stream layer and records the Monotonic instant,
// read after the fact, at which the first connection was accepted or dialed.
type connClock struct {
	raft.StreamLayer
	first atomic.Int64 // 0 before the first connection
}

func (c *connClock) mark() { c.first.CompareAndSwap(0, int64(Monotonic())) }

func (c *connClock) Accept() (net.Conn, error) {
	conn, err := c.StreamLayer.Accept()
	if err == nil {
		c.mark()
	}
	return conn, err
}

func (c *connClock) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	conn, err := c.StreamLayer.Dial(address, timeout)
	if err == nil {
		c.mark()
	}
	return conn, err
}

// preVoter asks one raft address, over and over, for a pre-vote on behalf of
// a voter of its configuration, with a log and term no voter can beat; a
// voter grants it exactly when it would grant that candidate its vote.
// Unlike a vote, a pre-vote changes nothing on the voter.
type preVoter struct {
	trans     *raft.NetworkTransport
	stop      chan struct{}
	done      chan struct{}
	mu        sync.Mutex
	answered  time.Duration // Monotonic, read after the first answer; 0 before
	granted   time.Duration // likewise for the first pre-vote granted
	attempted int
}

func startPreVoter(t testing.TB, target string, as *Cluster) *preVoter {
	trans, err := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 1, time.Second, testLogger("prevoter"))
	if err != nil {
		t.Fatal(err)
	}
	p := &preVoter{trans: trans, stop: make(chan struct{}), done: make(chan struct{})}
	const unbeatable = 1 << 40
	req := raft.RequestPreVoteRequest{
		RPCHeader: raft.RPCHeader{
			ProtocolVersion: raft.ProtocolVersionMax,
			ID:              []byte(as.Name()),
			Addr:            trans.EncodePeer(raft.ServerID(as.Name()), raft.ServerAddress(as.RaftAddr())),
		},
		Term: unbeatable, LastLogIndex: unbeatable, LastLogTerm: unbeatable,
	}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			var resp raft.RequestPreVoteResponse
			err := trans.RequestPreVote("target", raft.ServerAddress(target), &req, &resp)
			at := Monotonic()
			p.mu.Lock()
			p.attempted++
			if err == nil && p.answered == 0 {
				p.answered = at
			}
			if err == nil && resp.Granted && p.granted == 0 {
				p.granted = at
			}
			p.mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()
	return p
}

// results returns the first answer and first grant instants (0 if none).
func (p *preVoter) results() (answered, granted time.Duration, attempted int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.answered, p.granted, p.attempted
}

func (p *preVoter) close() {
	close(p.stop)
	<-p.done
	p.trans.CloseStreams()
	p.trans.Close()
}

// TestRestartedVoterWaitsBeforeVoting restarts a follower on its raft state
// while a prober asks it, from the moment it crashed, for a pre-vote on
// behalf of another voter. A restarted voter has forgotten its leader and
// would grant at once (the prober sees that without the wait), possibly
// inside a lease it acknowledged just before it died; the package
// documentation makes New sit out one RaftHeartbeat first. Seen from
// outside, the restarted node must neither take a raft connection nor
// answer, let alone grant, before RaftHeartbeat has passed since New was
// called. Both instants are read after the fact, and the raft transport
// only exists once the wait is over, so the check holds under any load.
//
// The test checks the rule rather than an overlap: an overlap needs more
// than the early vote (another candidate standing inside the lease, and
// winning a majority with it), so a test that waited for one would rarely
// see the rule broken even where it is.
func TestRestartedVoterWaitsBeforeVoting(t *testing.T) {
	ledger := newVIPLedger(t)
	nodes := startFarm(t, 3, 3, ledger)
	leader := waitSingleServer(t, nodes, 15*time.Second)
	eventually(t, 5*time.Second, "three voters", func() bool { return len(leader.Stats().Voters) == 3 })
	followers := without(nodes, leader)
	victim, candidate := followers[0], followers[1]

	cfg := victim.cfg
	cfg.BindAddr = victim.GossipAddr()
	cfg.AdvertiseAddr = netip.AddrPort{}
	cfg.RaftBindAddr = netip.MustParseAddrPort(victim.RaftAddr())
	cfg.Join = []string{leader.GossipAddr().String()}
	clock := &connClock{}
	useWrapStream(t, func(name string, s raft.StreamLayer) raft.StreamLayer {
		if name != cfg.NodeName {
			return s
		}
		clock.StreamLayer = s
		return clock
	})
	victim.crash()
	p := startPreVoter(t, victim.RaftAddr(), candidate)
	defer p.close()
	called := Monotonic()
	restarted := startNode(t, cfg)
	wait := restarted.timing.RaftHeartbeat
	eventually(t, 10*time.Second, "an answer from the restarted node", func() bool {
		answered, _, _ := p.results()
		return answered != 0
	})
	answered, granted, attempted := p.results()
	first := time.Duration(clock.first.Load())
	t.Logf("New called at %v: first raft connection %v after, first answer %v, first pre-vote granted %v (0: none), %d attempts",
		called, first-called, answered-called, max(granted-called, 0), attempted)
	if first == 0 || first-called < wait {
		t.Errorf("the restarted node had a raft connection %v after New was called, before RaftHeartbeat %v", first-called, wait)
	}
	if answered-called < wait {
		t.Errorf("the restarted node answered a pre-vote %v after New was called, before RaftHeartbeat %v", answered-called, wait)
	}
	if granted != 0 && granted-called < wait {
		t.Errorf("the restarted node granted a pre-vote %v after New was called, before RaftHeartbeat %v", granted-called, wait)
	}
}
