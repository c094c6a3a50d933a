package cluster

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	"github.com/hashicorp/raft-wal/metadb"
)

// Cluster is one node's membership and leadership agent. Create it with New
// and stop it with Shutdown. All methods are safe for concurrent use.
type Cluster struct {
	cfg    Config
	timing Timing
	logger hclog.Logger
	vipLog hclog.Logger

	members *memberTable
	ml      *memberlist.Memberlist
	// auth signs and checks gossip (certdir.go), nil without Config.TLS;
	// addrs holds the checks of members' addresses (addrcheck.go).
	auth   *gossipAuth
	addrs  addrChecks
	gossip netip.AddrPort

	fsm      *fsm
	raft     *raft.Raft
	trans    *raft.NetworkTransport
	logStore *markedLog
	walMeta  *metadb.BoltMetaDB
	dirLock  io.Closer
	raftAddr string
	// secure is raft's TLS stream layer, nil without Config.TLS.
	secure *tlsStream
	// raftReady is raft once started, for the TLS stream's peer checks,
	// which run on goroutines of their own.
	raftReady atomic.Pointer[raft.Raft]
	observer  *raft.Observer
	obsCh     chan raft.Observation

	// pending is the report SetReport last stored; meta is the encoding
	// memberlist currently gossips.
	pending atomic.Pointer[Report]
	// reportedAt is the Monotonic instant of the last SetReport, 0 before
	// the first.
	reportedAt atomic.Int64
	meta       atomic.Pointer[[]byte]
	// lastSeq is the Seq of the last report published (gossiped or sent
	// to the voters), so the leave announcement can outrank it.
	lastSeq atomic.Uint64
	// delivered is the newest state message the leader sent this node
	// (nil before the first); see State.
	delivered atomic.Pointer[delivery]
	// reportsSent and reportsGossiped count the publisher's work (Stats).
	reportsSent, reportsGossiped atomic.Uint64

	vip vipOwner
	// lease is the evidence that renews the VIP owner's lease (lease.go).
	lease leaseAcks
	// otherLeader is the last node other than this one seen leading
	// (maintenance loop); former is the one this node took over from,
	// set by the VIP owner when it starts to lead and cleared when it no
	// longer leads (Member.AwaitingReport).
	otherLeader atomic.Pointer[string]
	former      atomic.Pointer[formerLeader]

	// voters caches the raft configuration (server ID to suffrage).
	voters       atomic.Pointer[map[string]raft.ServerSuffrage]
	timingWarnMu sync.Mutex
	timingWarned map[string]uint32
	bootstrapped atomic.Bool
	// verified says this node's raft state is its own: found on disk at
	// start, bootstrapped, or confirmed by the leader (wiped.go).
	verified          atomic.Bool
	joined            atomic.Bool
	leadershipChanges atomic.Uint64
	watchPrompts      atomic.Uint64 // leader-watch prompts to raft (watch.go)

	// barriers tracks the new leader's barrier in flight (see startBarrier).
	barriers sync.WaitGroup
	// watchDone is closed when the leader watch (watch.go) has stopped; it
	// calls into raft, so it must end before raft shuts down.
	watchDone chan struct{}

	// keyring is memberlist's gossip keyring, nil without EncryptKey;
	// runKeyring keeps it the farm's, woken by keyringWake.
	keyring     *memberlist.Keyring
	keyringWake chan struct{}

	updates chan struct{}
	wake    chan struct{}
	stop    chan struct{}
	wg      sync.WaitGroup

	// leaveMu serializes Leave with the publisher's UpdateNode: after
	// memberlist's Leave, an UpdateNode would announce the node alive again.
	leaveMu  sync.Mutex
	left     bool
	shutOnce sync.Once
	shutErr  error

	// failed is closed, with failErr set, when the node stops for good
	// (see Failed).
	failed   chan struct{}
	failOnce sync.Once
	// raftStop runs raft's Shutdown once: a second call of raft.Shutdown
	// returns at once, before raft's goroutines end, so every caller must
	// wait on this one (see stopRaft).
	raftStop    sync.Once
	raftStopErr error
	failErr     error
}

// Stats is a summary of the cluster as this node sees it.
type Stats struct {
	// Leader is the leader's node name, empty if none is known.
	Leader string
	// Term is this node's current raft term.
	Term uint64
	// VIPHolder says this node holds the VIP now.
	VIPHolder bool
	// LeadershipChanges counts leader changes this node has observed.
	LeadershipChanges uint64
	// OldestReportAge is the age of the oldest report among alive members.
	// Only voters hear every report; elsewhere it grows to metaEvery
	// publish intervals (30 s) between refreshes of the gossiped metadata.
	OldestReportAge time.Duration
	// Voters lists the voters of the raft configuration, sorted.
	Voters []string
	// Joined says the retry joiner has reached at least one seed.
	Joined bool
	// ReportsSent counts the reports this node sent straight to voters;
	// ReportsGossiped the ones it put in its gossiped metadata.
	ReportsSent, ReportsGossiped uint64
	// GossipUnauthenticated counts the reports, metadata, state and
	// certificate messages dropped because they were not signed by the
	// node they speak for (always 0 without Config.TLS).
	GossipUnauthenticated uint64
	// RaftRefused counts the connections to this node's Raft port that
	// were closed before Raft read a byte: no certificate of this farm,
	// a node outside the Raft configuration, or no handshake in time
	// (always 0 without Config.TLS).
	RaftRefused uint64
	// StoreWrites counts the writes to this node's raft log and stable
	// store (entries appended or deleted, term and vote records).
	StoreWrites uint64
	// LeaseRenewals counts the extensions of this node's leader lease, and
	// LeaseLapses those that came after the lease had run out (the node
	// answered nothing in between).
	LeaseRenewals, LeaseLapses uint64
}

// leaveTimeout bounds the graceful leave Shutdown performs.
const leaveTimeout = 5 * time.Second

// raftOpTimeout bounds how long raft operations wait to be enqueued.
const raftOpTimeout = 5 * time.Second

// New validates cfg, opens the raft store in cfg.DataDir, starts memberlist
// and raft, and starts the joiner, publisher, maintenance and VIP-owner
// goroutines. When DataDir already holds raft state, New first waits one
// RaftHeartbeat (see "VIP ownership and fencing" in the package
// documentation). A second agent on the same DataDir fails at once.
func New(cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	logger := cfg.Logger.Named("cluster")
	c := &Cluster{
		cfg:     cfg,
		timing:  cfg.Timing,
		logger:  logger,
		vipLog:  logger.Named("vip"),
		updates: make(chan struct{}, 1),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		obsCh:   make(chan raft.Observation, 16),
		failed:  make(chan struct{}),

		watchDone:   make(chan struct{}),
		keyringWake: make(chan struct{}, 1),

		timingWarned: map[string]uint32{},
	}
	c.vip.stepAside = make(chan chan struct{})
	c.vip.done = make(chan struct{})
	empty := map[string]raft.ServerSuffrage{}
	c.voters.Store(&empty)
	c.fsm = newFSM(c.stateChanged)
	if cfg.TLS != nil {
		auth, err := newGossipAuth(cfg.TLS, cfg.NodeName, logger.Named("gossip"))
		if err != nil {
			return nil, err
		}
		c.auth = auth
		auth.send = c.sendTo
	}

	if err := c.startRaft(); err != nil {
		return nil, errors.Join(err, c.closeRaft())
	}
	c.pending.Store(&Report{})
	// Seq starts from the wall clock so it keeps increasing across restarts.
	c.encodeMeta(Report{
		Seq:          uint64(time.Now().UnixNano()),
		RaftAddr:     c.raftAddr,
		Voter:        cfg.Voter,
		Bootstrapped: c.verifiedState(),
		Timing:       c.timing.Fingerprint(),
	})
	c.members = newMemberTable(logger.Named("members"), c.loadMeta, c.memberChanged)
	c.members.onState = c.takeState
	if c.auth != nil {
		c.members.auth = c.auth
		c.auth.learned = c.members.retryMeta
		c.auth.askForMeta = func() bool { return c.checkScope() != checkNone }
	}
	if err := c.startMemberlist(); err != nil {
		return nil, errors.Join(err, c.closeRaft())
	}

	c.startGoroutines()
	c.logger.Info("started", "node", cfg.NodeName, "gossip", c.gossip, "raft", c.raftAddr,
		"voter", cfg.Voter, "bootstrap_expect", cfg.BootstrapExpect)
	return c, nil
}

// startGoroutines registers the raft observer and starts the cluster's
// goroutines: the publisher, maintenance, keyring, VIP owner, leader watch
// and joiner, each only when its configuration asks for it.
func (c *Cluster) startGoroutines() {
	c.observer = raft.NewObserver(c.obsCh, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.PeerObservation:
			return true
		}
		return false
	})
	c.raft.RegisterObserver(c.observer)

	c.wg.Add(2)
	if c.auth != nil {
		c.wg.Add(1)
		go func() { defer c.wg.Done(); c.auth.run(c.stop) }()
	}
	go func() { defer c.wg.Done(); c.runPublisher() }()
	go func() { defer c.wg.Done(); c.runMaintenance() }()
	if c.keyring != nil {
		c.wg.Add(1)
		go func() { defer c.wg.Done(); c.runKeyring() }()
	}
	go c.runVIPOwner()
	if c.timing.RaftWatch > 0 && c.cfg.Voter {
		go c.runLeaderWatch(rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))) //nolint:gosec // probe jitter, not a secret
	} else {
		close(c.watchDone)
	}
	if len(c.cfg.Join) > 0 {
		c.wg.Add(1)
		go func() { defer c.wg.Done(); c.runJoiner() }()
	}
}

// startRaft opens the write-ahead log and snapshot store and starts raft.
func (c *Cluster) startRaft() error {
	dir := filepath.Join(c.cfg.DataDir, "raft")
	raftLog := c.cfg.Logger.Named("raft")
	snaps, err := c.openStore(dir, raftLog)
	if err != nil {
		return err
	}
	logStore := c.logStore
	existing, err := raft.HasExistingState(logStore, logStore, snaps)
	if err != nil {
		return fmt.Errorf("read raft state: %w", err)
	}
	c.bootstrapped.Store(existing)
	c.verified.Store(existing)
	if existing {
		// A restarted voter has forgotten the leader it followed, so it
		// would grant votes at once; sitting out one heartbeat timeout keeps
		// the fencing argument (see the package documentation) intact.
		c.logger.Debug("raft state found, waiting one heartbeat timeout before starting raft", "wait", c.timing.RaftHeartbeat)
		time.Sleep(c.timing.RaftHeartbeat)
	}

	advertise := c.raftAdvertise()
	timeout := min(max(10*c.timing.RaftHeartbeat, time.Second), 10*time.Second)
	trans, secure, err := newRaftTransport(transportConfig{
		bind:      c.cfg.RaftBindAddr.String(),
		advertise: advertise,
		timeout:   timeout,
		logger:    raftLog.Named("transport"),
		tls:       c.cfg.TLS,
		peers:     c,
		wrap:      wrapStream(c.cfg.NodeName),
	})
	if err != nil {
		return fmt.Errorf("raft_bind_addr: %s: %w", c.cfg.RaftBindAddr, err)
	}
	c.trans = trans
	c.secure = secure
	c.raftAddr = string(trans.LocalAddr())

	rc := c.raftConfig(raftLog)
	if err := c.recoverFromPeersFile(dir, rc, logStore, logStore, snaps, trans); err != nil {
		return err
	}
	leased := &leaseTransport{NetworkTransport: trans, ack: c.leaseAck}
	if hook := testHookWrapLeaseAck; hook != nil {
		leased.ack = hook(c.cfg.NodeName, c.leaseAck)
	}
	var logs raft.LogStore = logStore
	if hook := testHookWrapLog; hook != nil {
		logs = hook(c.cfg.NodeName, logStore)
	}
	r, err := raft.NewRaft(rc, c.fsm, logs, logStore, snaps, leased)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	c.raft = r
	c.raftReady.Store(r)
	return nil
}

// wrapStream returns testHookWrapStream's wrapper for the node named name,
// or nil when no test set the hook.
func wrapStream(name string) func(raft.StreamLayer) raft.StreamLayer {
	hook := testHookWrapStream
	if hook == nil {
		return nil
	}
	return func(s raft.StreamLayer) raft.StreamLayer { return hook(name, s) }
}

// openStore locks the raft directory dir and opens its snapshot store and
// write-ahead log (c.logStore, c.walMeta); closeStore closes them.
func (c *Cluster) openStore(dir string, raftLog hclog.Logger) (*raft.FileSnapshotStore, error) {
	walDir := filepath.Join(dir, "wal")
	if err := os.MkdirAll(walDir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	c.dirLock = lock
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, raftLog.Named("snapshots"))
	if err != nil {
		return nil, fmt.Errorf("open raft snapshots in %s: %w", dir, err)
	}
	// WAL.Close leaves its metadata database open, so the cluster owns it.
	c.walMeta = &metadb.BoltMetaDB{}
	logStore, err := openLog(dir, walDir, c.walMeta, snaps, raftLog.Named("wal"), testHookWALSegmentSize)
	if err != nil {
		return nil, err
	}
	c.logStore = logStore
	return snaps, nil
}

// raftConfig is raft's configuration for this node's timing.
func (c *Cluster) raftConfig(raftLog hclog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.cfg.NodeName)
	rc.HeartbeatTimeout = c.timing.RaftHeartbeat
	rc.ElectionTimeout = c.timing.RaftElection
	// Serving is fenced by Usher's own lease (see the package
	// documentation), not by raft's own lease, so raft may keep leading
	// through a stall as long as followers would still follow it: a
	// leader that steps down after a short CPU stall is a spurious
	// leadership change, which costs every new session a failover gap.
	// It sits a millisecond below the heartbeat timeout: raft requires
	// lease <= heartbeat, and the leader watch (watch.go) briefly lowers
	// the heartbeat timeout.
	rc.LeaderLeaseTimeout = c.timing.RaftHeartbeat - time.Millisecond
	rc.CommitTimeout = c.timing.RaftCommit
	// A member wrongly declared dead and removed must be able to come back
	// as a non-voter without restarting its agent.
	rc.ShutdownOnRemove = false
	rc.Logger = raftLog
	return rc
}

// raftAdvertise returns the address other voters dial, or nil to let the
// transport advertise its bound address.
func (c *Cluster) raftAdvertise() net.Addr {
	if c.cfg.RaftAdvertiseAddr.IsValid() {
		return net.TCPAddrFromAddrPort(c.cfg.RaftAdvertiseAddr)
	}
	return nil
}

// closeRaft stops raft and closes its transport and store; any may be nil.
func (c *Cluster) closeRaft() error {
	var errs []error
	if c.raft != nil {
		if err := c.stopRaft(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.trans != nil {
		c.trans.CloseStreams()
		if err := c.trans.Close(); err != nil {
			errs = append(errs, fmt.Errorf("raft transport close: %w", err))
		}
	}
	errs = append(errs, c.closeStore())
	return errors.Join(errs...)
}

// stopRaft shuts raft down and waits until its goroutines have ended, however
// many callers race (Shutdown and a storage failure's fail): only then may
// the store close, or raft panics writing its term to a closed log.
func (c *Cluster) stopRaft() error {
	c.raftStop.Do(func() {
		if err := c.raft.Shutdown().Error(); err != nil {
			c.raftStopErr = fmt.Errorf("raft shutdown: %w", err)
		}
	})
	return c.raftStopErr
}

// closeStore closes the write-ahead log, its metadata database and the data
// directory lock; any may be nil.
func (c *Cluster) closeStore() error {
	var errs []error
	if c.logStore != nil {
		if err := c.logStore.Close(); err != nil {
			errs = append(errs, fmt.Errorf("raft log close: %w", err))
		}
	}
	if c.walMeta != nil {
		if err := c.walMeta.Close(); err != nil {
			errs = append(errs, fmt.Errorf("raft log metadata close: %w", err))
		}
	}
	if c.dirLock != nil {
		if err := c.dirLock.Close(); err != nil {
			errs = append(errs, fmt.Errorf("data_dir unlock: %w", err))
		}
	}
	return errors.Join(errs...)
}

// startMemberlist creates the memberlist with the configured timing.
func (c *Cluster) startMemberlist() error {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.cfg.NodeName
	mc.BindAddr = c.cfg.BindAddr.Addr().String()
	mc.BindPort = int(c.cfg.BindAddr.Port())
	mc.AdvertiseAddr = c.cfg.AdvertiseAddr.Addr().String()
	mc.AdvertisePort = int(c.cfg.AdvertiseAddr.Port())
	mc.Label = c.cfg.Label
	// The keyring, not SecretKey, so that memberlist does not put the
	// configured key back when the farm's keyring has dropped it.
	ring, err := c.newKeyring()
	if err != nil {
		return err
	}
	c.keyring, mc.Keyring = ring, ring
	mc.ProbeInterval = c.timing.ProbeInterval
	mc.ProbeTimeout = c.timing.ProbeTimeout
	mc.SuspicionMult = c.timing.SuspicionMult
	mc.GossipInterval = c.timing.GossipInterval
	mc.TCPTimeout = min(max(20*c.timing.ProbeTimeout, time.Second), 10*time.Second)
	// Gossip packets are small and frequent: compressing each costs more
	// CPU than the bytes it saves on a LAN (it was a tenth of an idle
	// 64-agent farm's CPU).
	mc.EnableCompression = false
	mc.Delegate = c.members
	mc.Events = c.members
	mc.Logger = c.cfg.Logger.Named("memberlist").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})
	ml, err := memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("start memberlist on %s: %w", c.cfg.BindAddr, err)
	}
	c.ml = ml
	local := ml.LocalNode()
	if a, ok := netip.AddrFromSlice(local.Addr); ok {
		c.gossip = netip.AddrPortFrom(a.Unmap(), local.Port)
	}
	return nil
}

// Name returns this node's name (Config.NodeName).
func (c *Cluster) Name() string { return c.cfg.NodeName }

// GossipAddr returns the memberlist address other nodes join (the advertised
// address, with the port chosen when BindAddr's port was 0).
func (c *Cluster) GossipAddr() netip.AddrPort { return c.gossip }

// RaftAddr returns the raft transport address other voters dial.
func (c *Cluster) RaftAddr() string { return c.raftAddr }

// Leave leaves the cluster gracefully: this node stops serving and releases
// the VIP, hands raft leadership to another voter if it is the leader, then
// tells the other members it is leaving (memberlist Leave, waiting up to
// timeout). The leader removes a left node from the raft configuration and
// promotes a replacement voter. Leave is idempotent.
func (c *Cluster) Leave(timeout time.Duration) error {
	c.leaveMu.Lock()
	defer c.leaveMu.Unlock()
	if c.left {
		return nil
	}
	c.left = true
	c.stepAside()

	var errs []error
	// Announce the leave in a last report, so the others record Left.
	r := c.loadReport()
	r.Seq = max(r.Seq, c.lastSeq.Load()) + 1
	r.Leaving = true
	if c.encodeMeta(r) {
		if err := c.ml.UpdateNode(timeout / 2); err != nil {
			c.logger.Debug("announcing the leave", "error", err)
		}
	}
	if err := c.ml.Leave(timeout); err != nil {
		errs = append(errs, fmt.Errorf("memberlist leave: %w", err))
	}
	c.logger.Info("left the cluster")
	return errors.Join(errs...)
}

// stepAside makes this node stop serving for good: its VIP owner lets the
// address go and never takes it again, and a leader hands leadership to
// another voter, so that the farm's next leader follows at once rather
// than after an election timeout.
func (c *Cluster) stepAside() {
	ack := make(chan struct{})
	select {
	case c.vip.stepAside <- ack:
		<-ack
	case <-c.vip.done:
	}
	if c.raft.State() == raft.Leader && c.countVoters() > 1 {
		if err := c.raft.LeadershipTransfer().Error(); err != nil {
			c.logger.Warn("leadership transfer before stopping failed", "error", err)
		} else {
			c.logger.Info("handed leadership over before stopping")
		}
	}
}

// Stop stops the node without leaving the cluster: as Shutdown, except
// that the others are not told it leaves, so they find it dead, and a
// voter keeps its seat in the Raft configuration for its restart (unless
// the leader's maintenance replaces it by a standby first, as it replaces
// any voter dead for three probe intervals). A leader still lets the VIP
// go and hands leadership on first, so stopping it costs a handover, not
// an election. Stop and Shutdown are idempotent, and whichever runs first
// decides.
func (c *Cluster) Stop() error {
	c.shutOnce.Do(func() {
		c.leaveMu.Lock()
		if !c.left {
			c.stepAside()
		}
		c.leaveMu.Unlock()
		c.shutErr = c.shutdown()
	})
	return c.shutErr
}

// Shutdown stops the agent: it leaves gracefully if Leave was not called,
// stops every goroutine, releases the VIP and closes raft and memberlist.
// It is idempotent and returns the first call's error.
func (c *Cluster) Shutdown() error {
	c.shutOnce.Do(func() {
		if err := c.Leave(leaveTimeout); err != nil {
			c.logger.Warn("leave during shutdown", "error", err)
		}
		c.shutErr = c.shutdown()
	})
	return c.shutErr
}

// shutdown stops everything without leaving: the VIP owner first (it
// releases the VIP), then raft, the other goroutines and memberlist. Tests
// call it directly to simulate a crash.
func (c *Cluster) shutdown() error {
	close(c.stop)
	<-c.vip.done
	<-c.watchDone
	// A barrier still queued when raft shuts down is never answered, so the
	// barrier in flight must end while raft still runs.
	c.barriers.Wait()
	c.raft.DeregisterObserver(c.observer)
	var errs []error
	if err := c.stopRaft(); err != nil {
		errs = append(errs, err)
	}
	c.wg.Wait()
	if err := c.ml.Shutdown(); err != nil {
		errs = append(errs, fmt.Errorf("memberlist shutdown: %w", err))
	}
	// Close drops the listener only; CloseStreams also closes the pooled
	// outbound connections, so the peers' connection handlers end.
	c.trans.CloseStreams()
	if err := c.trans.Close(); err != nil {
		errs = append(errs, fmt.Errorf("raft transport close: %w", err))
	}
	errs = append(errs, c.closeStore())
	c.logger.Info("shut down")
	return errors.Join(errs...)
}

// SetReport stores r as this node's load report. It never blocks: the
// publisher goroutine gossips the latest report every PublishInterval.
// RaftAddr, Voter, Bootstrapped, Timing, Leaving and Seq are filled in by
// the cluster.
func (c *Cluster) SetReport(r Report) {
	c.pending.Store(&r)
	c.reportedAt.Store(int64(Monotonic()))
}

// Members returns a snapshot of every member this node knows, sorted by
// name, including dead and left ones until they are forgotten. With
// Config.TLS a member's Report.Service is zero until its addresses are
// checked (see addrcheck.go).
func (c *Cluster) Members() []Member {
	entries := c.members.snapshot()
	voters := c.suffrages()
	leader, _ := c.Leader()
	former := c.former.Load()
	out := make([]Member, len(entries))
	for i, e := range entries {
		suffrage, inConfig := voters[e.name]
		if !c.serviceChecked(e) {
			// Not checked yet (addrcheck.go): no client is sent to
			// the node's session endpoint nor to its services.
			e.report.Service = netip.AddrPort{}
			e.report.Services = nil
		}
		out[i] = Member{
			Name:       e.name,
			Gossip:     e.gossip,
			Status:     e.status,
			Report:     e.report,
			ReportedAt: e.reportedAt,
			Voter:      inConfig && suffrage == raft.Voter,
			Leader:     string(leader) == e.name,
			// The report time is the local receipt time, as former.since.
			AwaitingReport: former != nil && former.name == e.name && e.reportedAt.Before(former.since),
		}
	}
	return out
}

// Updates returns a channel that receives a value (coalesced, capacity 1)
// whenever Members, Leader or State may have changed.
func (c *Cluster) Updates() <-chan struct{} { return c.updates }

// Leader returns the leader's node name (empty if none is known) and this
// node's current raft term.
//
// A member outside the raft configuration learns both from the leader's
// state messages (statemsg.go).
func (c *Cluster) Leader() (name string, term uint64) {
	_, id := c.raft.LeaderWithID()
	if id == "" {
		if d := c.freshDelivery(); d != nil {
			return d.leader, d.term
		}
	}
	return string(id), c.raft.CurrentTerm()
}

// LeaderRaftAddr returns the leader's raft address as raft on this node
// knows it, from the leader's own messages; empty on a node outside the
// raft configuration or while no leader is known.
func (c *Cluster) LeaderRaftAddr() string {
	addr, _ := c.raft.LeaderWithID()
	return string(addr)
}

// State returns the farm's agreed state as this node knows it: the state
// machine as last applied here or, on a member outside the raft
// configuration, what the leader last sent it (see statemsg.go), whichever
// is newer. What the leader sends holds the ticket key and only this node's
// own drain and capacity override. The returned maps are shared and must
// not be modified.
func (c *Cluster) State() State {
	own := c.fsm.state.Load()
	if d := c.delivered.Load(); d != nil && d.state.Index > own.Index {
		return d.state
	}
	return *own
}

// stateChanged is the state machine's callback: Updates fires, and the
// leader's maintenance wakes to send members outside raft their new state.
func (c *Cluster) stateChanged() {
	c.notifyUpdate()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	select {
	case c.keyringWake <- struct{}{}:
	default:
	}
}

// SetDrain drains (or undrains) a node through raft. On a node that is not
// the leader it returns a *NotLeaderError wrapping ErrNotLeader.
func (c *Cluster) SetDrain(node string, drain bool) error {
	if node == "" {
		return fmt.Errorf("drain: node name must be set")
	}
	return c.apply(command{Op: opDrain, Node: node, Drain: drain})
}

// SetCapacity sets an operator capacity override for a node through raft.
// On a node that is not the leader it returns a *NotLeaderError.
func (c *Cluster) SetCapacity(node string, capacity uint32) error {
	if node == "" {
		return fmt.Errorf("capacity: node name must be set")
	}
	return c.apply(command{Op: opCapacity, Node: node, Capacity: capacity})
}

// ClearCapacity removes a node's capacity override through raft. On a node
// that is not the leader it returns a *NotLeaderError.
func (c *Cluster) ClearCapacity(node string) error {
	if node == "" {
		return fmt.Errorf("capacity: node name must be set")
	}
	return c.apply(command{Op: opClearCapacity, Node: node})
}

// apply commits cmd through raft on the leader.
func (c *Cluster) apply(cmd command) error {
	select {
	case <-c.stop:
		return ErrShutdown
	default:
	}
	if c.raft.State() != raft.Leader {
		return c.notLeader()
	}
	f := c.raft.Apply(encodeCommand(cmd), raftOpTimeout)
	if err := f.Error(); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader):
			return c.notLeader()
		case errors.Is(err, raft.ErrLeadershipLost):
			return fmt.Errorf("%w: leadership lost while applying, outcome unknown: %w", c.notLeader(), err)
		case errors.Is(err, raft.ErrRaftShutdown):
			return ErrShutdown
		}
		return fmt.Errorf("raft apply %s: %w", cmd.Op, err)
	}
	if err, ok := f.Response().(error); ok {
		return err
	}
	return nil
}

func (c *Cluster) notLeader() error {
	leader, _ := c.Leader()
	return &NotLeaderError{Leader: leader}
}

// Stats returns a summary of the cluster as this node sees it.
func (c *Cluster) Stats() Stats {
	name, term := c.Leader()
	s := Stats{
		Leader:            name,
		Term:              term,
		VIPHolder:         c.vip.serving.Load() != 0,
		LeadershipChanges: c.leadershipChanges.Load(),
		Joined:            c.joined.Load(),
		ReportsSent:       c.reportsSent.Load(),
		ReportsGossiped:   c.reportsGossiped.Load(),
		LeaseRenewals:     c.lease.renewals.Load(),
		LeaseLapses:       c.lease.lapses.Load(),
	}
	if c.logStore != nil {
		s.StoreWrites = c.logStore.writes.Load()
	}
	if c.secure != nil {
		s.RaftRefused = c.secure.rejected.Load()
	}
	if c.auth != nil {
		s.GossipUnauthenticated = c.auth.unauthenticated.Load()
	}
	now := time.Now()
	for _, e := range c.members.snapshot() {
		if e.status == Alive && !e.reportedAt.IsZero() {
			s.OldestReportAge = max(s.OldestReportAge, now.Sub(e.reportedAt))
		}
	}
	for id, suffrage := range c.suffrages() {
		if suffrage == raft.Voter {
			s.Voters = append(s.Voters, id)
		}
	}
	sort.Strings(s.Voters)
	return s
}

// suffrages returns the raft configuration as this node knows it: its own
// or, on a member outside it, the voters the leader's state messages name.
func (c *Cluster) suffrages() map[string]raft.ServerSuffrage {
	d := c.freshDelivery()
	if d == nil {
		return *c.voters.Load()
	}
	m := make(map[string]raft.ServerSuffrage, len(d.voters))
	for _, n := range d.voters {
		m[n] = raft.Voter
	}
	return m
}

func (c *Cluster) countVoters() int {
	n := 0
	for _, suffrage := range *c.voters.Load() {
		if suffrage == raft.Voter {
			n++
		}
	}
	return n
}

// notifyUpdate signals Updates without blocking.
func (c *Cluster) notifyUpdate() {
	select {
	case c.updates <- struct{}{}:
	default:
	}
}

// sendTo sends msg to the member named to, over memberlist's stream when
// reliable, else in one packet.
func (c *Cluster) sendTo(to string, msg []byte, reliable bool) error {
	e, ok := c.members.lookup(to)
	if !ok || !e.gossip.IsValid() {
		return fmt.Errorf("no member %q", to)
	}
	n := memberlist.Node{Name: e.name, Addr: e.gossip.Addr().AsSlice(), Port: e.gossip.Port()}
	if reliable {
		return c.ml.SendReliable(&n, msg)
	}
	return c.ml.SendBestEffort(&n, msg)
}

// memberChanged is the member table's callback; membership changes also wake
// the maintenance goroutine.
func (c *Cluster) memberChanged(membership bool) {
	c.notifyUpdate()
	if membership {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}
