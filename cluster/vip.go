package cluster

import (
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-metrics"
	"github.com/hashicorp/raft"
)

// VIP is how the cluster holds the well-known balancer address; package
// node/vip implements it for every vip_mode. The cluster's VIP owner
// goroutine (runVIPOwner) is its only caller, and its serving state is the
// only record of whether the address is held: Acquire is called when this
// node becomes leader and does not hold the address, with the raft term as
// the fencing epoch, and must hold nothing if it fails; Release is called
// only after an Acquire that succeeded, when the node stops serving. An
// implementation therefore needs no lock and no "held" flag of its own.
// vipowner_test.go fails if anything else in the module calls either.
type VIP interface {
	Acquire(term uint64) error
	Release() error
}

// vipOwner is the state of the VIP-owner goroutine. Only serving and
// deadline are read elsewhere (by Serving, lock-free).
type vipOwner struct {
	// serving is the term this node serves in; 0 means not serving.
	serving atomic.Uint64
	// deadline is the lease deadline on the Monotonic scale, in nanoseconds.
	deadline atomic.Int64

	// stepAside asks the owner to release and never acquire again (Leave).
	stepAside chan chan struct{}
	// done is closed when the owner goroutine returns.
	done chan struct{}

	// Owner goroutine only: consecutive VIP.Acquire failures, and the
	// Monotonic instant before which no new acquisition is tried.
	acquireFailures int
	retryAt         time.Duration
}

// formerLeader is the node this one took the VIP over from, and when
// (Member.AwaitingReport).
type formerLeader struct {
	name  string
	since time.Time
}

// acquireRetry paces VIP.Acquire attempts after a failure.
const acquireRetry = time.Second

// maxAcquireFailures is how many consecutive VIP.Acquire failures make the
// leader hand raft leadership to another voter, which may be able to hold
// the address.
const maxAcquireFailures = 3

// barrierResult is the outcome of a new leader's raft barrier, issued at start
// (Monotonic) while this node was leader in term.
type barrierResult struct {
	term  uint64
	start time.Duration
	err   error
}

// Serving reports whether this node may answer probes on the VIP, and in
// which raft term. The probe path calls it for every probe: it reads atomics
// only. It is true only while this node holds the VIP, raft still says this
// node is leader in that term, and the leader lease has not expired.
func (c *Cluster) Serving() (term uint64, ok bool) {
	term = c.vip.serving.Load()
	if term == 0 {
		return 0, false
	}
	if int64(Monotonic()) >= c.vip.deadline.Load() {
		return term, false
	}
	if c.raft.State() != raft.Leader || c.raft.CurrentTerm() != term {
		return term, false
	}
	return term, true
}

// runVIPOwner is the one goroutine that owns the VIP. See the package
// documentation for the fencing argument it implements. While it holds
// the address, raft's heartbeats renew the lease (lease.go); the owner
// itself only commits one barrier per term, before acquiring, and acquires
// on the heartbeats' evidence alone if that barrier is slow (serveEarly).
func (c *Cluster) runVIPOwner() {
	defer close(c.vip.done)
	leaderCh := c.raft.LeaderCh()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	// While serving, the owner also renews from the acknowledgements at
	// hand every RaftLease/3 (renewLease); the ticker runs only then, so
	// that the other nodes do not wake for it.
	var renew *time.Ticker
	var renewC <-chan time.Time
	// early fires while a barrier is in flight: the leader then serves on
	// its heartbeats' evidence if it has it (serveEarly).
	early := time.NewTimer(time.Hour)
	early.Stop()
	defer func() {
		early.Stop()
		if renew != nil {
			renew.Stop()
		}
	}()

	results := make(chan barrierResult, 1)
	var inflight uint64 // the term of the barrier in flight, 0 if none
	leaving := false
	for {
		select {
		case <-c.stop:
			c.releaseVIP("shutdown")
			return
		case ack := <-c.vip.stepAside:
			leaving = true
			c.releaseVIP("leaving")
			close(ack)
		case <-leaderCh:
		case <-tick.C:
		case <-renewC:
			if term := c.vip.serving.Load(); term != 0 {
				c.renewLease(term)
			}
		case <-early.C:
			if inflight != 0 && !leaving && !c.serveEarly(inflight) {
				early.Reset(c.timing.RaftHeartbeat / 10)
			}
		case res := <-results:
			inflight = 0
			early.Stop()
			c.finishBarrier(res, leaving)
		}

		held := c.vip.serving.Load()
		switch {
		case held != 0 && renew == nil:
			renew = time.NewTicker(c.timing.RaftLease / 3)
			renewC = renew.C
		case held == 0 && renew != nil:
			renew.Stop()
			renew, renewC = nil, nil
		}
		isLeader := c.raft.State() == raft.Leader
		if !isLeader {
			c.vip.acquireFailures = 0
		}
		if held != 0 && (!isLeader || c.raft.CurrentTerm() != held) {
			c.releaseVIP("lost leadership")
			held = 0
		}
		if !isLeader && c.former.Load() != nil {
			c.former.Store(nil)
		}
		if held != 0 || inflight != 0 || leaving || !isLeader || Monotonic() < c.vip.retryAt {
			continue
		}
		c.noteFormerLeader()
		inflight = c.startBarrier(results)
		early.Reset(barrierWait(c.timing))
	}
}

// barrierWait is how long a new leader waits for its barrier before it
// serves on its heartbeats' evidence alone: on a quiet disk the barrier
// commits well within it and the FSM is current when serving starts; on a
// busy one, waiting for two fsyncs (the leader's and a follower's) would
// add their latency to every failover.
func barrierWait(t Timing) time.Duration { return t.RaftLease / 2 }

// noteFormerLeader records, as this node starts to lead, the node it takes
// over from (Member.AwaitingReport) and has the views rebuilt while the
// barrier commits, so that the first answers already skip that node.
func (c *Cluster) noteFormerLeader() {
	name := c.otherLeader.Load()
	if name == nil {
		return
	}
	if f := c.former.Load(); f != nil && f.name == *name {
		return
	}
	c.former.Store(&formerLeader{name: *name, since: time.Now()})
	c.notifyUpdate()
}

// startBarrier issues a raft barrier in a helper goroutine, sends the
// outcome on results (buffered; at most one barrier is in flight) and
// returns the term it was issued in.
func (c *Cluster) startBarrier(results chan<- barrierResult) uint64 {
	term := c.raft.CurrentTerm()
	start := Monotonic()
	c.barriers.Add(1)
	go func() {
		defer c.barriers.Done()
		err := c.raft.Barrier(c.timing.RaftLease).Error()
		results <- barrierResult{term: term, start: start, err: err}
	}()
	return term
}

// finishBarrier acts on the barrier that a new leader commits before it
// acquires the VIP: once it has committed, the FSM is current and a
// majority of the voters accepted this leader after start, so the lease
// runs until start + RaftLease; the VIP is acquired and raft's heartbeats
// extend the lease from then on. A failed barrier is retried at the
// owner's next wake-up (its one-second tick at the latest). A leader that
// already serves (serveEarly) has its FSM current from now on.
func (c *Cluster) finishBarrier(res barrierResult, leaving bool) {
	stillLeader := c.raft.State() == raft.Leader && c.raft.CurrentTerm() == res.term
	if res.err != nil || !stillLeader {
		metrics.IncrCounter([]string{"cluster", "lease", "barrier_failed"}, 1)
		if res.err != nil {
			c.vipLog.Debug("leader barrier failed", "term", res.term, "error", res.err)
		}
		return
	}
	if leaving || c.vip.serving.Load() != 0 {
		return
	}
	c.takeVIP(res.term, res.start+c.timing.RaftLease)
}

// serveEarly runs when a new leader's barrier of term has not committed
// within barrierWait: if a majority of the voters accepted heartbeats of
// term (the evidence that renews a lease, lease.go), the leader acquires
// the VIP with the deadline they vouch for, and its FSM catches up when
// the barrier commits. It reports false when the evidence is not there yet
// (the owner asks again a tenth of a heartbeat timeout later), true when
// it served or has nothing left to do.
func (c *Cluster) serveEarly(term uint64) bool {
	if c.raft.State() != raft.Leader || c.raft.CurrentTerm() != term || c.vip.serving.Load() != 0 {
		return true
	}
	deadline, ok := c.leaseDeadline(term)
	if !ok || deadline <= Monotonic() {
		return false
	}
	metrics.IncrCounter([]string{"cluster", "lease", "early"}, 1)
	c.vipLog.Debug("barrier slow, serving on the heartbeats' evidence", "term", term, "waited", barrierWait(c.timing))
	c.takeVIP(term, deadline)
	return true
}

// takeVIP acquires the VIP in term under a lease running until deadline
// and starts serving.
func (c *Cluster) takeVIP(term uint64, deadline time.Duration) {
	c.vip.deadline.Store(int64(deadline))
	if c.cfg.VIP != nil {
		if err := c.cfg.VIP.Acquire(term); err != nil {
			c.acquireFailed(term, err)
			return
		}
	}
	c.vip.acquireFailures = 0
	c.vip.serving.Store(term)
	c.renewLease(term)
	metrics.IncrCounter([]string{"cluster", "vip", "acquire"}, 1)
	c.vipLog.Info("holding the vip", "term", term)
	if c.cfg.OnVIP != nil {
		c.cfg.OnVIP(true, term, Monotonic())
	}
	c.notifyUpdate()
}

// acquireFailed records a failed VIP.Acquire (which holds nothing), paces
// the retries and, after maxAcquireFailures in a row, hands leadership to
// another voter.
func (c *Cluster) acquireFailed(term uint64, err error) {
	metrics.IncrCounter([]string{"cluster", "vip", "acquire_failed"}, 1)
	c.vipLog.Error("acquiring the vip failed", "term", term, "error", err)
	c.vip.deadline.Store(0)
	c.vip.retryAt = Monotonic() + acquireRetry
	c.vip.acquireFailures++
	if c.vip.acquireFailures < maxAcquireFailures {
		return
	}
	c.vip.acquireFailures = 0
	if c.countVoters() < 2 {
		return
	}
	c.vipLog.Warn("cannot hold the vip, handing leadership over", "failures", maxAcquireFailures)
	metrics.IncrCounter([]string{"cluster", "vip", "handover"}, 1)
	if err := c.raft.LeadershipTransfer().Error(); err != nil {
		c.vipLog.Warn("leadership transfer failed", "error", err)
	}
}

// releaseVIP stops serving first (atomics), then releases the address.
func (c *Cluster) releaseVIP(reason string) {
	term := c.vip.serving.Swap(0)
	deadline := time.Duration(c.vip.deadline.Swap(0))
	if term == 0 {
		return
	}
	end := min(Monotonic(), deadline)
	if c.cfg.VIP != nil {
		if err := c.cfg.VIP.Release(); err != nil {
			metrics.IncrCounter([]string{"cluster", "vip", "release_failed"}, 1)
			c.vipLog.Error("releasing the vip failed", "term", term, "error", err)
		}
	}
	metrics.IncrCounter([]string{"cluster", "vip", "release"}, 1)
	c.vipLog.Info("released the vip", "term", term, "reason", reason)
	if c.cfg.OnVIP != nil {
		c.cfg.OnVIP(false, term, end)
	}
	c.notifyUpdate()
}
