package cluster

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// cuttable wraps a raft stream layer so a test can cut the node off from
// every raft peer (and heal it) while memberlist keeps running.
type cuttable struct {
	raft.StreamLayer
	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

func newCuttable(s raft.StreamLayer) *cuttable {
	return &cuttable{StreamLayer: s, conns: map[net.Conn]struct{}{}}
}

var errCut = errors.New("cut off by the test")

// track registers c unless the node is cut off, in which case it closes c.
func (s *cuttable) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cut {
		c.Close()
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *cuttable) Accept() (net.Conn, error) {
	for {
		c, err := s.StreamLayer.Accept()
		if err != nil {
			return nil, err
		}
		if s.track(c) {
			return c, nil
		}
	}
}

func (s *cuttable) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	s.mu.Lock()
	cut := s.cut
	s.mu.Unlock()
	if cut {
		return nil, errCut
	}
	c, err := s.StreamLayer.Dial(address, timeout)
	if err != nil {
		return nil, err
	}
	if !s.track(c) {
		return nil, errCut
	}
	return c, nil
}

// setCut cuts the node off (closing every raft connection) or heals it.
func (s *cuttable) setCut(cut bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cut = cut
	if cut {
		for c := range s.conns {
			c.Close()
		}
		clear(s.conns)
	}
}

// slowLink wraps a raft stream layer so a test can delay every byte the
// node reads on its raft connections, dialed or accepted; what it writes
// leaves at once. Each byte is held for the delay in force when it arrived.
type slowLink struct {
	raft.StreamLayer
	delay atomic.Int64 // nanoseconds
}

// setDelay sets the delay for the bytes that arrive from now on.
func (l *slowLink) setDelay(d time.Duration) { l.delay.Store(int64(d)) }

func (l *slowLink) Accept() (net.Conn, error) {
	c, err := l.StreamLayer.Accept()
	if err != nil {
		return nil, err
	}
	return newSlowConn(c, l), nil
}

func (l *slowLink) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := l.StreamLayer.Dial(address, timeout)
	if err != nil {
		return nil, err
	}
	return newSlowConn(c, l), nil
}

// slowConn is one connection of a slowLink. A pump goroutine reads the
// underlying connection as fast as bytes arrive and stamps each chunk with
// the instant it may be handed to Read.
type slowConn struct {
	net.Conn
	link   *slowLink
	ready  chan struct{} // capacity 1: the queue, err or deadline changed
	closed chan struct{}
	once   sync.Once

	mu       sync.Mutex
	queue    []slowChunk
	err      error // the pump's last error, returned once the queue is empty
	deadline time.Time
}

type slowChunk struct {
	data []byte
	due  time.Time
}

func newSlowConn(c net.Conn, l *slowLink) *slowConn {
	s := &slowConn{Conn: c, link: l, ready: make(chan struct{}, 1), closed: make(chan struct{})}
	go s.pump()
	return s
}

// pump ends when the underlying connection is closed, by either side.
func (s *slowConn) pump() {
	for {
		buf := make([]byte, 16<<10)
		n, err := s.Conn.Read(buf)
		// The delay is read after the bytes arrived: a chunk is held for
		// at least the delay in force at some instant after its arrival.
		d := time.Duration(s.link.delay.Load())
		due := time.Now().Add(d)
		s.mu.Lock()
		if n > 0 {
			s.queue = append(s.queue, slowChunk{data: buf[:n:n], due: due})
		}
		if err != nil {
			s.err = err
		}
		s.mu.Unlock()
		s.wake()
		if err != nil {
			return
		}
	}
}

func (s *slowConn) wake() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// next returns the bytes Read may hand out now, or how long to wait.
func (s *slowConn) next(p []byte) (n int, wait time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wait = -1
	if len(s.queue) > 0 {
		head := &s.queue[0]
		if wait = time.Until(head.due); wait <= 0 {
			n = copy(p, head.data)
			if head.data = head.data[n:]; len(head.data) == 0 {
				s.queue = s.queue[1:]
			}
			return n, 0, nil
		}
	} else if s.err != nil {
		return 0, 0, s.err
	}
	if !s.deadline.IsZero() {
		left := time.Until(s.deadline)
		if left <= 0 {
			return 0, 0, os.ErrDeadlineExceeded
		}
		if wait < 0 || left < wait {
			wait = left
		}
	}
	return 0, wait, nil
}

func (s *slowConn) Read(p []byte) (int, error) {
	for {
		n, wait, err := s.next(p)
		if n > 0 || err != nil {
			return n, err
		}
		if !s.await(wait) {
			return 0, net.ErrClosed
		}
	}
}

// await waits for wait (for ever if negative) or until woken; it reports
// false once the connection is closed.
func (s *slowConn) await(wait time.Duration) bool {
	var timer <-chan time.Time
	if wait >= 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-s.ready:
	case <-timer:
	case <-s.closed:
		return false
	}
	return true
}

func (s *slowConn) Close() error {
	s.once.Do(func() { close(s.closed) })
	return s.Conn.Close()
}

// SetDeadline sets the write deadline on the connection and keeps the read
// deadline for Read: the pump itself reads without one.
func (s *slowConn) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.Conn.SetWriteDeadline(t)
}

func (s *slowConn) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	s.deadline = t
	s.mu.Unlock()
	s.wake()
	return nil
}

// TestPartitionedLeaderStopsBeforeTakeover cuts the leader off from raft
// while it keeps running: seen from outside, it must stop serving by
// cutDone + RaftLease, before anyone else can be elected, and the serving
// intervals must not overlap.
//
// The bound is exact. setCut closes every raft connection of the leader
// and refuses new ones before it returns, and cutDone is read after it
// returns: from cutDone on, no byte crosses between the leader and a
// follower. An AppendEntries sent at s extends the deadline to at most
// s + RaftLease, and in a farm of three only once a follower answered it
// (the first deadline of a term, from the barrier, likewise needs a
// follower's acknowledgement of an entry created after s); that answer
// cannot cross the cut, so it was read before cutDone, and s < cutDone. Hence no deadline of
// the cut leader reaches cutDone + RaftLease, and since the watch reads the
// clock before each call of Serving, no true answer can come from a call
// that began at or after that instant.
func TestPartitionedLeaderStopsBeforeTakeover(t *testing.T) {
	ledger := newVIPLedger(t)
	streams := map[string]*cuttable{}
	var nodes []*Cluster
	var seed string
	useWrapStream(t, func(name string, s raft.StreamLayer) raft.StreamLayer {
		c := newCuttable(s)
		streams[name] = c
		return c
	})
	for _, name := range []string{"n1", "n2", "n3"} {
		cfg := testConfig(t, name, ledger)
		if seed != "" {
			cfg.Join = []string{seed}
		}
		c := startNode(t, cfg)
		if seed == "" {
			seed = c.GossipAddr().String()
		}
		nodes = append(nodes, c)
	}
	old := waitSingleServer(t, nodes, 15*time.Second)
	oldTerm, _ := old.Serving()
	streams[old.cfg.NodeName].setCut(true)
	cutDone := Monotonic()
	bound := cutDone + old.timing.RaftLease

	var next *Cluster
	eventually(t, 15*time.Second, "a new server", func() bool {
		s := servingNodes(nodes)
		if len(s) > 1 {
			t.Fatalf("%d nodes serve at once", len(s))
		}
		if len(s) == 1 && s[0] != old {
			next = s[0]
			return true
		}
		return false
	})
	start, _ := ledger.servingSince(next.cfg.NodeName)
	term, _ := next.Serving()
	ledger.watch.waitPolled(t, old.Name(), bound)
	last, ok := ledger.watch.last(old.Name(), oldTerm)
	if !ok {
		t.Fatal("the watch never saw the old leader serve")
	}
	t.Logf("cut done at %v; %s (term %d) last seen serving %v after; %s (term %d) serves from %v",
		cutDone, old.Name(), oldTerm, last.t0-cutDone, next.Name(), term, start)
	if last.t0 >= bound {
		t.Errorf("%s seen serving term %d at or after %v, %v past cutDone + RaftLease",
			old.Name(), oldTerm, last.t0, last.t0-bound)
	}

	// Heal: the old leader comes back as a follower of the new term.
	streams[old.cfg.NodeName].setCut(false)
	eventually(t, 15*time.Second, "old leader follows the new one", func() bool {
		name, _ := old.Leader()
		_, serving := old.Serving()
		return name == next.cfg.NodeName && !serving
	})
	if s := servingNodes(nodes); len(s) != 1 {
		t.Fatalf("%d nodes serve after healing", len(s))
	}
}
