package cluster

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestQuorumSince(t *testing.T) {
	voter := func(id string) raft.Server { return raft.Server{ID: raft.ServerID(id), Suffrage: raft.Voter} }
	standby := func(id string) raft.Server { return raft.Server{ID: raft.ServerID(id), Suffrage: raft.Nonvoter} }
	const now = 100 * time.Millisecond
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	tests := []struct {
		name    string
		servers []raft.Server
		sent    map[raft.ServerID]time.Duration
		want    time.Duration
		wantOK  bool
	}{
		{"single voter is its own majority", []raft.Server{voter("a")}, nil, now, true},
		{"three voters, no acknowledgement", []raft.Server{voter("a"), voter("b"), voter("c")}, nil, 0, false},
		{"three voters, the later of two", []raft.Server{voter("a"), voter("b"), voter("c")},
			map[raft.ServerID]time.Duration{"b": ms(40), "c": ms(70)}, ms(70), true},
		{"three voters, one acknowledgement", []raft.Server{voter("a"), voter("b"), voter("c")},
			map[raft.ServerID]time.Duration{"b": ms(40)}, ms(40), true},
		{"five voters need two others", []raft.Server{voter("a"), voter("b"), voter("c"), voter("d"), voter("e")},
			map[raft.ServerID]time.Duration{"b": ms(10), "c": ms(90), "d": ms(50)}, ms(50), true},
		{"five voters, one other is short", []raft.Server{voter("a"), voter("b"), voter("c"), voter("d"), voter("e")},
			map[raft.ServerID]time.Duration{"b": ms(10)}, 0, false},
		{"standbys do not count", []raft.Server{voter("a"), voter("b"), voter("c"), standby("s1"), standby("s2")},
			map[raft.ServerID]time.Duration{"s1": ms(90), "s2": ms(95)}, 0, false},
		{"a server outside the configuration does not count", []raft.Server{voter("a"), voter("b"), voter("c")},
			map[raft.ServerID]time.Duration{"x": ms(90), "y": ms(95)}, 0, false},
		{"a leader outside its configuration needs a majority of the others", []raft.Server{voter("b"), voter("c"), voter("d")},
			map[raft.ServerID]time.Duration{"b": ms(20), "c": ms(30)}, ms(20), true},
		{"four voters need three", []raft.Server{voter("a"), voter("b"), voter("c"), voter("d")},
			map[raft.ServerID]time.Duration{"b": ms(20), "c": ms(30), "d": ms(60)}, ms(30), true},
		{"no voters", []raft.Server{standby("a")}, nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := quorumSince(tt.servers, "a", tt.sent, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("quorumSince = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestLeaseRenewalWritesNothing holds a quiet three-voter farm while its
// leader's lease is renewed many times over and fails if anything was
// written to any node's raft log or stable store meanwhile: the lease rests
// on raft's heartbeats, which followers answer from memory, so a leader
// keeps serving when the voters' disks are slow (issue 17).
func TestLeaseRenewalWritesNothing(t *testing.T) {
	ledger := newVIPLedger(t)
	nodes := startFarm(t, 3, 3, ledger)
	leader := waitSingleServer(t, nodes, 15*time.Second)
	eventually(t, 5*time.Second, "three voters and a ticket key", func() bool {
		return len(leader.Stats().Voters) == 3 && len(leader.State().TicketKey) == TicketKeySize
	})
	term, _ := leader.Serving()
	// Let the farm's start-up writes (configuration, ticket key) settle.
	time.Sleep(10 * leader.timing.RaftLease)

	writes := func() (w []uint64) {
		for _, n := range nodes {
			w = append(w, n.Stats().StoreWrites)
		}
		return w
	}
	before, renewedBefore := writes(), leader.Stats().LeaseRenewals
	const renewals = 30
	eventually(t, 15*time.Second, fmt.Sprintf("%d lease renewals", renewals), func() bool {
		return leader.Stats().LeaseRenewals >= renewedBefore+renewals
	})
	after := writes()
	for i, n := range nodes {
		if after[i] != before[i] {
			t.Errorf("%s: %d writes to the raft store during %d lease renewals", n.Name(), after[i]-before[i], renewals)
		}
	}
	if got, ok := leader.Serving(); got != term {
		t.Errorf("leader serves term %d (%v), want the same term %d throughout", got, ok, term)
	}
	if lc := leader.Stats().LeadershipChanges; lc != 1 {
		t.Logf("leadership changes seen by %s: %d", leader.Name(), lc)
	}
}

// TestFormerLeaderAwaitsReport: the node that takes over from a leader
// that died keeps it out of good standing (AwaitingReport) although its
// last report is still fresh, while the one that takes over from a leader
// that handed over and lives on sees it report again at once.
func TestFormerLeaderAwaitsReport(t *testing.T) {
	ledger := newVIPLedger(t)
	nodes := startFarm(t, 3, 3, ledger)
	first := waitSingleServer(t, nodes, 15*time.Second)
	eventually(t, 5*time.Second, "three voters", func() bool { return len(first.Stats().Voters) == 3 })

	// A leader that dies: its report stays fresh, but it awaits a new one.
	first.crash()
	rest := without(nodes, first)
	second := waitSingleServer(t, rest, 15*time.Second)
	m, ok := member(second, first.Name())
	if !ok || !m.AwaitingReport {
		t.Fatalf("%s right after taking over from the dead %s: member %+v (found %v), want AwaitingReport", second.Name(), first.Name(), m, ok)
	}
	for _, other := range second.Members() {
		if other.Name != first.Name() && other.AwaitingReport {
			t.Errorf("%s awaits a report from %s, which never led", second.Name(), other.Name)
		}
	}

	// A graceful handover, as Leave makes it (the VIP released first, so
	// that the transfer, which bypasses the followers' known-leader rule,
	// cannot overlap a lease): the former leader lives on and reports.
	ack := make(chan struct{})
	second.vip.stepAside <- ack
	<-ack
	if err := second.raft.LeadershipTransfer().Error(); err != nil {
		t.Fatalf("leadership transfer: %v", err)
	}
	third := waitNewServer(t, rest, second)
	eventually(t, 5*time.Second, second.Name()+" reporting to "+third.Name()+" again", func() bool {
		m, ok := member(third, second.Name())
		return ok && !m.AwaitingReport
	})
}

// waitNewServer waits until a node other than old serves, and returns it.
func waitNewServer(t *testing.T, nodes []*Cluster, old *Cluster) *Cluster {
	t.Helper()
	var got *Cluster
	eventually(t, 15*time.Second, "a new serving node", func() bool {
		s := servingNodes(nodes)
		if len(s) == 1 && s[0] != old {
			got = s[0]
			return true
		}
		return false
	})
	return got
}

// slowLog delays every write of log entries by the delay in force (a busy
// disk's fsync), leaving the stable store alone.
type slowLog struct {
	raft.LogStore
	delay *atomic.Int64
}

func (l slowLog) StoreLogs(logs []*raft.Log) error {
	time.Sleep(time.Duration(l.delay.Load()))
	return l.LogStore.StoreLogs(logs)
}

func (l slowLog) StoreLog(log *raft.Log) error { return l.StoreLogs([]*raft.Log{log}) }

// diskStall is how long slowDiskFarm's log writes take once the farm is
// up: far longer than a failover.
const diskStall = 8 * time.Second

// slowDiskFarm starts three voters whose log writes, once the farm has a
// serving leader, three voters and a ticket key, each take diskStall (a busy
// disk's fsync), and returns them, the leader and the ledger of who
// served when.
func slowDiskFarm(t *testing.T) ([]*Cluster, *Cluster, *vipLedger) {
	t.Helper()
	var delay atomic.Int64
	useWrapLog(t, func(_ string, l raft.LogStore) raft.LogStore { return slowLog{l, &delay} })
	ledger := newVIPLedger(t)
	nodes := startFarm(t, 3, 3, ledger)
	leader := waitSingleServer(t, nodes, 15*time.Second)
	eventually(t, 5*time.Second, "three voters and a ticket key", func() bool {
		return len(leader.Stats().Voters) == 3 && len(leader.State().TicketKey) == TicketKeySize
	})
	time.Sleep(10 * leader.timing.RaftLease)
	delay.Store(int64(diskStall))
	t.Cleanup(func() { delay.Store(0) })
	return nodes, leader, ledger
}

// TestFailoverBesideSlowDisk: when the log writes of every voter take far
// longer than a failover, a new leader still serves, on its heartbeats'
// evidence, long before its barrier commits; never two at once.
func TestFailoverBesideSlowDisk(t *testing.T) {
	nodes, leader, ledger := slowDiskFarm(t)
	leader.crash()
	rest := without(nodes, leader)
	crashed := time.Now()
	next := waitSingleServer(t, rest, diskStall/4)
	if took := time.Since(crashed); took >= diskStall/2 {
		t.Fatalf("%s serves %v after the crash, not before its barrier could commit", next.Name(), took)
	}
	ledger.check()
}

// TestSlowBarrierWithoutEvidenceWaits: a new leader whose barrier is slow
// serves early only on its own term's acknowledgements. With its peers'
// acknowledgements withheld from the lease, it does not serve while the
// disk holds its barrier, however long past barrierWait; once they reach
// the lease again, it serves on them, still before the barrier commits.
func TestSlowBarrierWithoutEvidenceWaits(t *testing.T) {
	var withheld atomic.Bool
	useWrapLeaseAck(t, func(_ string, ack func(raft.ServerID, uint64, time.Duration)) func(raft.ServerID, uint64, time.Duration) {
		return func(id raft.ServerID, term uint64, sent time.Duration) {
			if !withheld.Load() {
				ack(id, term, sent)
			}
		}
	})
	nodes, leader, ledger := slowDiskFarm(t)
	withheld.Store(true)
	leader.crash()
	rest := without(nodes, leader)
	crashed := time.Now()
	var elected *Cluster
	eventually(t, diskStall/4, "a new raft leader", func() bool {
		for _, c := range rest {
			if c.raft.State() == raft.Leader {
				elected = c
				return true
			}
		}
		return len(servingNodes(rest)) > 0
	})
	// Many times barrierWait, yet well inside the disk stall: only the
	// acknowledgements could let the new leader serve.
	hold := max(10*barrierWait(leader.timing), 500*time.Millisecond)
	for start := time.Now(); time.Since(start) < hold; time.Sleep(5 * time.Millisecond) {
		if s := servingNodes(rest); len(s) > 0 {
			t.Fatalf("%s serves %v after the crash with no acknowledgement of its term counted, before its barrier could commit",
				s[0].Name(), time.Since(crashed).Round(time.Millisecond))
		}
	}
	if elected.raft.State() != raft.Leader {
		t.Fatalf("%s lost its leadership while it waited: the test proved nothing", elected.Name())
	}
	withheld.Store(false)
	next := waitSingleServer(t, rest, diskStall/4)
	if took := time.Since(crashed); took >= diskStall/2 {
		t.Fatalf("%s serves %v after the crash, not on the acknowledgements before its barrier could commit", next.Name(), took)
	}
	ledger.check()
}
