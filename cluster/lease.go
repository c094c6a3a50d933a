package cluster

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-metrics"
	"github.com/hashicorp/raft"
)

// The leader lease is renewed by raft's own heartbeats, which write
// nothing to disk (see "VIP ownership and fencing" in the package
// documentation for the argument). leaseTransport sees each AppendEntries
// this node sends and its answer; leaseAcks keeps, for the term this node
// leads, the send instant of the latest AppendEntries each server accepted,
// and extends the lease to the instant a majority of the voters had all
// accepted one, plus RaftLease.

// leaseTransport is raft's network transport with an eye on AppendEntries:
// every request a peer accepted (Success in the request's own term) is
// reported to ack with the Monotonic instant read before it was sent.
// Pipelined AppendEntries are not counted; raft's heartbeats, which are
// synchronous, renew the lease. Every other method, including the
// optional interfaces raft looks for (WithClose, WithPeers, WithPreVote),
// is the embedded transport's.
type leaseTransport struct {
	*raft.NetworkTransport
	ack func(id raft.ServerID, term uint64, sent time.Duration)
}

// AppendEntries implements raft.Transport.
func (t *leaseTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	sent := Monotonic()
	term := args.Term
	err := t.NetworkTransport.AppendEntries(id, target, args, resp)
	if err == nil && resp.Success && resp.Term == term {
		t.ack(id, term, sent)
	}
	return err
}

// leaseAcks is the lease's evidence for one term. Its methods are called
// from raft's replication goroutines; the probe path never takes its lock
// (Serving reads vipOwner's atomics).
type leaseAcks struct {
	mu   sync.Mutex
	term uint64
	// sent holds, per server, the latest send instant (Monotonic) of an
	// AppendEntries of term that the server accepted.
	sent map[raft.ServerID]time.Duration
	// renewals and lapses count lease extensions and the extensions that
	// came after the lease had already run out (Stats).
	renewals, lapses atomic.Uint64
}

// follow moves the evidence to term if it is newer, forgetting the older
// term's acknowledgements, and reports whether term is the current one
// (false for an older term). l.mu is held.
func (l *leaseAcks) follow(term uint64) bool {
	if term < l.term {
		return false
	}
	if term > l.term || l.sent == nil {
		l.term = term
		l.sent = map[raft.ServerID]time.Duration{}
	}
	return true
}

// leaseAck records that server id accepted an AppendEntries of term sent at
// sent, and extends the lease if a majority of the voters now vouch for a
// later instant.
func (c *Cluster) leaseAck(id raft.ServerID, term uint64, sent time.Duration) {
	l := &c.lease
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.follow(term) {
		return
	}
	if sent <= l.sent[id] {
		return
	}
	l.sent[id] = sent
	c.renewLeaseLocked(term)
}

// renewLease extends the lease of term from the acknowledgements recorded
// so far. The VIP owner calls it when it starts serving, so that the
// acknowledgements that came in while VIP.Acquire ran count at once, and
// every RaftLease/3 while it serves: a single voter has no follower to
// acknowledge anything and is a majority by itself.
func (c *Cluster) renewLease(term uint64) {
	l := &c.lease
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.follow(term) {
		c.renewLeaseLocked(term)
	}
}

// renewLeaseLocked extends the lease of term (c.lease.term) to the instant
// a majority of the voters vouch for, plus RaftLease. c.lease.mu is held.
func (c *Cluster) renewLeaseLocked(term uint64) {
	if deadline, ok := c.quorumDeadlineLocked(); ok {
		c.extendLease(term, deadline)
	}
}

// leaseDeadline returns the lease deadline that the acknowledgements of
// term vouch for, as renewLease would set it (serveEarly).
func (c *Cluster) leaseDeadline(term uint64) (time.Duration, bool) {
	l := &c.lease
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.follow(term) {
		return 0, false
	}
	return c.quorumDeadlineLocked()
}

// quorumDeadlineLocked returns the instant a majority of the voters vouch
// for in c.lease's term, plus RaftLease. c.lease.mu is held.
func (c *Cluster) quorumDeadlineLocked() (time.Duration, bool) {
	r := c.raftReady.Load()
	if r == nil {
		return 0, false
	}
	// GetConfiguration reads raft's latest configuration without waiting
	// for raft's main loop, which may be busy with the disk.
	f := r.GetConfiguration()
	if f.Error() != nil {
		return 0, false
	}
	since, ok := quorumSince(f.Configuration().Servers, raft.ServerID(c.cfg.NodeName), c.lease.sent, Monotonic())
	if !ok {
		return 0, false
	}
	return since + c.timing.RaftLease, true
}

// quorumSince returns the latest instant t such that a majority of the
// voters among servers accepted an AppendEntries sent at or after t, given
// each server's latest accepted send instant in sent. The local node, self,
// counts as having accepted at now: a leader votes for no one while it
// leads, and Serving checks that it still leads. ok is false when fewer
// than a majority of the voters have accepted anything.
func quorumSince(servers []raft.Server, self raft.ServerID, sent map[raft.ServerID]time.Duration, now time.Duration) (t time.Duration, ok bool) {
	var voters int
	times := make([]time.Duration, 0, len(servers))
	for _, s := range servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		if s.ID == self {
			times = append(times, now)
		} else if at, acked := sent[s.ID]; acked {
			times = append(times, at)
		}
	}
	quorum := voters/2 + 1
	if voters == 0 || len(times) < quorum {
		return 0, false
	}
	slices.Sort(times)
	slices.Reverse(times)
	return times[quorum-1], true
}

// extendLease moves the lease deadline of term forward to deadline, if this
// node serves in term and the deadline is later than the current one. A
// deadline computed for an older term never lands in a newer one's lease
// (it is raised only, and a newer term's first deadline comes from a
// barrier or from acknowledgements of that term, each sent after the older
// term's last AppendEntries).
func (c *Cluster) extendLease(term uint64, deadline time.Duration) {
	if c.vip.serving.Load() != term {
		return
	}
	for {
		old := c.vip.deadline.Load()
		if int64(deadline) <= old {
			return
		}
		if c.vip.deadline.CompareAndSwap(old, int64(deadline)) {
			c.lease.renewals.Add(1)
			if now := Monotonic(); int64(now) >= old && old != 0 {
				c.lease.lapses.Add(1)
				metrics.IncrCounter([]string{"cluster", "lease", "lapsed"}, 1)
				c.vipLog.Debug("leader lease had lapsed", "term", term, "for", (now - time.Duration(old)).Round(time.Millisecond))
			}
			return
		}
	}
}
