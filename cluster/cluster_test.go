package cluster

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestThreeNodesElectOneServer(t *testing.T) {
	ledger := newVIPLedger(t)
	nodes := startFarm(t, 3, 3, ledger)
	leader := waitSingleServer(t, nodes, 15*time.Second)

	name, term := leader.Leader()
	if name != leader.cfg.NodeName || term == 0 {
		t.Fatalf("serving node %s reports leader %q term %d", leader.cfg.NodeName, name, term)
	}
	for _, c := range nodes {
		eventually(t, 5*time.Second, "leader known everywhere", func() bool {
			n, _ := c.Leader()
			return n == name
		})
		st := c.Stats()
		if st.VIPHolder != (c == leader) {
			t.Errorf("%s: VIPHolder %v", c.cfg.NodeName, st.VIPHolder)
		}
	}
	eventually(t, 5*time.Second, "three voters", func() bool {
		return len(leader.Stats().Voters) == 3
	})
	eventually(t, 5*time.Second, "ticket key everywhere", func() bool {
		for _, c := range nodes {
			if len(c.State().TicketKey) != TicketKeySize {
				return false
			}
		}
		return true
	})
	// Hold steady for a while: still exactly one server.
	for range 10 {
		if s := servingNodes(nodes); len(s) != 1 || s[0] != leader {
			t.Fatalf("serving set changed: %d nodes", len(s))
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, m := range leader.Members() {
		if m.Status != Alive || !m.Voter || m.Leader != (m.Name == name) {
			t.Errorf("member %+v", m)
		}
	}
}

func TestSingleNodeDev(t *testing.T) {
	ledger := newVIPLedger(t)
	cfg := testConfig(t, "dev", ledger)
	cfg.BootstrapExpect = 1
	c := startNode(t, cfg)
	waitSingleServer(t, []*Cluster{c}, 10*time.Second)
	if err := c.SetCapacity("dev", 10); err != nil {
		t.Fatal(err)
	}
	if got := c.State().Capacity["dev"]; got != 10 {
		t.Fatalf("capacity override %d, want 10", got)
	}
	if err := c.ClearCapacity("dev"); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.State().Capacity["dev"]; ok {
		t.Fatal("capacity override not cleared")
	}
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Serving(); ok {
		t.Fatal("serving after shutdown")
	}
	if err := c.Shutdown(); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if err := c.SetDrain("dev", true); !errors.Is(err, ErrShutdown) {
		t.Fatalf("SetDrain after shutdown: %v, want ErrShutdown", err)
	}
}

func TestReportGossip(t *testing.T) {
	nodes := startFarm(t, 3, 3, nil)
	service := netip.MustParseAddrPort("192.0.2.7:3479")
	// The owner keeps reporting, as the agent does: the publisher stops
	// vouching for a node whose owner has gone quiet.
	keep := time.NewTicker(DefaultPublishInterval / 2)
	done := make(chan struct{})
	t.Cleanup(func() { keep.Stop(); close(done) })
	go func() {
		for {
			nodes[1].SetReport(Report{Service: service, Sessions: 7, Capacity: 100, Accepted: 42})
			select {
			case <-done:
				return
			case <-keep.C:
			}
		}
	}()

	for _, c := range nodes {
		eventually(t, 5*time.Second, "report on "+c.cfg.NodeName, func() bool {
			m, ok := member(c, "n2")
			return ok && m.Report.Sessions == 7 && m.Report.Service == service && m.Report.Accepted == 42 &&
				m.Report.Capacity == 100 && m.Report.Voter && m.Report.RaftAddr == nodes[1].RaftAddr()
		})
	}
	// The report is republished: Seq and ReportedAt keep moving.
	first, _ := member(nodes[0], "n2")
	eventually(t, 5*time.Second, "a newer report", func() bool {
		m, _ := member(nodes[0], "n2")
		return m.Report.Seq > first.Report.Seq && m.ReportedAt.After(first.ReportedAt)
	})
	if age := nodes[0].Stats().OldestReportAge; age > 5*time.Second {
		t.Errorf("oldest report age %v", age)
	}

	select {
	case <-nodes[0].Updates():
	case <-time.After(5 * time.Second):
		t.Fatal("no update notification")
	}
}

func TestDrainThroughRaft(t *testing.T) {
	nodes := startFarm(t, 3, 3, nil)
	leader := waitSingleServer(t, nodes, 15*time.Second)
	if err := leader.SetDrain("n2", true); err != nil {
		t.Fatalf("SetDrain on leader: %v", err)
	}
	for _, c := range nodes {
		eventually(t, 5*time.Second, "drain replicated to "+c.cfg.NodeName, func() bool {
			return c.State().Drained["n2"]
		})
	}
	follower := without(nodes, leader)[0]
	err := follower.SetDrain("n3", true)
	var nl *NotLeaderError
	if !errors.Is(err, ErrNotLeader) || !errors.As(err, &nl) || nl.Leader != leader.cfg.NodeName {
		t.Fatalf("SetDrain on follower: %v, want NotLeaderError naming %s", err, leader.cfg.NodeName)
	}
	if err := follower.SetCapacity("n3", 5); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("SetCapacity on follower: %v", err)
	}
	if err := leader.SetDrain("n2", false); err != nil {
		t.Fatal(err)
	}
	for _, c := range nodes {
		eventually(t, 5*time.Second, "undrain replicated", func() bool {
			return !c.State().Drained["n2"]
		})
	}
}

func TestTakeover(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(*Cluster)
	}{
		{"shutdown", func(c *Cluster) {
			if err := c.Shutdown(); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		}},
		{"crash", (*Cluster).crash},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ledger := newVIPLedger(t)
			nodes := startFarm(t, 3, 3, ledger)
			old := waitSingleServer(t, nodes, 15*time.Second)
			oldTerm, _ := old.Serving()
			tc.stop(old)
			end, ok := ledger.lastRelease(old.cfg.NodeName)
			if !ok {
				t.Fatal("old leader recorded no release")
			}
			rest := without(nodes, old)
			next := waitSingleServer(t, rest, 15*time.Second)
			term, _ := next.Serving()
			if term <= oldTerm {
				t.Errorf("new term %d is not above the old %d", term, oldTerm)
			}
			start, _ := ledger.servingSince(next.cfg.NodeName)
			t.Logf("%s: %s served term %d until %v; %s serves term %d from %v; gap %v",
				tc.name, old.cfg.NodeName, oldTerm, end, next.cfg.NodeName, term, start, start-end)
			if start < end {
				t.Errorf("overlap: new server started %v before the old one stopped", end-start)
			}
		})
	}
}

func TestVoterReplacement(t *testing.T) {
	ledger := newVIPLedger(t)
	nodes := startFarm(t, 4, 3, ledger)
	leader := waitSingleServer(t, nodes, 15*time.Second)
	eventually(t, 10*time.Second, "3 voters and n4 as non-voter", func() bool {
		st := leader.Stats()
		_, inConfig := (*leader.voters.Load())["n4"]
		return len(st.Voters) == 3 && inConfig && !slices.Contains(st.Voters, "n4")
	})

	// Crash a voter that is not the leader.
	var victim *Cluster
	for _, c := range nodes {
		if c != leader && c.cfg.NodeName != "n4" {
			victim = c
			break
		}
	}
	victim.crash()
	rest := without(nodes, victim)
	eventually(t, 20*time.Second, "n4 promoted, victim removed", func() bool {
		l := waitSingleServer(t, rest, 15*time.Second)
		v := l.Stats().Voters
		return len(v) == 3 && slices.Contains(v, "n4") && !slices.Contains(v, victim.cfg.NodeName)
	})
	for _, c := range rest {
		eventually(t, 5*time.Second, "victim dead in "+c.cfg.NodeName, func() bool {
			m, ok := member(c, victim.cfg.NodeName)
			return !ok || m.Status == Dead
		})
	}
}

func TestLabelMismatchNeverJoins(t *testing.T) {
	a := testConfig(t, "a", nil)
	a.Label = "farm-a"
	ca := startNode(t, a)
	b := testConfig(t, "b", nil)
	b.Label = "farm-b"
	b.Join = []string{ca.GossipAddr().String()}
	cb := startNode(t, b)

	time.Sleep(1500 * time.Millisecond)
	if n := len(ca.Members()); n != 1 {
		t.Errorf("farm-a sees %d members, want 1", n)
	}
	if n := len(cb.Members()); n != 1 {
		t.Errorf("farm-b sees %d members, want 1", n)
	}
	if cb.Stats().Joined {
		t.Error("farm-b node reports joined")
	}
}

func TestEncryptedGossip(t *testing.T) {
	key := bytes.Repeat([]byte{0x42}, 32)
	a := testConfig(t, "a", nil)
	a.EncryptKey = key
	ca := startNode(t, a)
	b := testConfig(t, "b", nil)
	b.EncryptKey = key
	b.Join = []string{ca.GossipAddr().String()}
	cb := startNode(t, b)
	other := testConfig(t, "c", nil)
	other.EncryptKey = bytes.Repeat([]byte{0x43}, 16)
	other.Join = []string{ca.GossipAddr().String()}
	cc := startNode(t, other)

	for _, c := range []*Cluster{ca, cb} {
		eventually(t, 5*time.Second, "two encrypted members", func() bool {
			m, ok := member(c, map[*Cluster]string{ca: "b", cb: "a"}[c])
			return ok && m.Status == Alive && len(c.Members()) == 2
		})
	}
	time.Sleep(time.Second) // the joiner retries every 100ms meanwhile
	if cc.Stats().Joined || len(cc.Members()) != 1 {
		t.Errorf("node with another key joined: %d members", len(cc.Members()))
	}
}

// TestQuorumLossStopsServing crashes both followers of a three-voter farm:
// the leader must stop serving by its lease deadline, as seen from outside.
//
// The bound is exact. An AppendEntries sent at s extends the deadline to
// at most s + RaftLease, and only once a follower has answered it, which
// it did after s. Once crash has returned for both followers (lost, read
// after), no follower answers anything, so every request that can still
// extend the lease was sent before lost, and no deadline reaches past
// lost + RaftLease. Serving
// compares the clock with the deadline, and the watch reads the clock
// before each call: a true answer whose call began at or after
// lost + RaftLease is impossible, however loaded the machine.
func TestQuorumLossStopsServing(t *testing.T) {
	ledger := newVIPLedger(t)
	nodes := startFarm(t, 3, 3, ledger)
	leader := waitSingleServer(t, nodes, 15*time.Second)
	term, _ := leader.Serving()
	for _, c := range without(nodes, leader) {
		c.crash()
	}
	lost := Monotonic()
	bound := lost + leader.timing.RaftLease
	eventually(t, 5*time.Second, "leader stops serving", func() bool {
		_, ok := leader.Serving()
		return !ok
	})
	eventually(t, 5*time.Second, "vip released", func() bool { return !leader.Stats().VIPHolder })
	for range 10 {
		if _, ok := leader.Serving(); ok {
			t.Fatal("serving again without a quorum")
		}
		time.Sleep(30 * time.Millisecond)
	}
	ledger.watch.waitPolled(t, leader.Name(), bound+leader.timing.RaftHeartbeat)
	last, ok := ledger.watch.last(leader.Name(), 0)
	if !ok {
		t.Fatal("the watch never saw the leader serve")
	}
	t.Logf("last seen serving (term %d) %v after the majority was gone (lease %v)",
		last.term, last.t0-lost, leader.timing.RaftLease)
	if last.term != term || last.t0 >= bound {
		t.Errorf("%s seen serving term %d at or after %v, %v past lost + RaftLease; it led term %d when the majority went",
			leader.Name(), last.term, last.t0, last.t0-bound, term)
	}
}

func TestLeaveRemovesVoter(t *testing.T) {
	nodes := startFarm(t, 3, 3, nil)
	leader := waitSingleServer(t, nodes, 15*time.Second)
	eventually(t, 5*time.Second, "three voters", func() bool { return len(leader.Stats().Voters) == 3 })
	follower := without(nodes, leader)[0]
	if err := follower.Leave(2 * time.Second); err != nil {
		t.Fatalf("leave: %v", err)
	}
	if err := follower.Leave(time.Second); err != nil {
		t.Fatalf("second leave: %v", err)
	}
	eventually(t, 10*time.Second, "left voter removed", func() bool {
		v := leader.Stats().Voters
		m, _ := member(leader, follower.cfg.NodeName)
		return len(v) == 2 && !slices.Contains(v, follower.cfg.NodeName) && m.Status == Left
	})
	if n := leader.Stats().LeadershipChanges; n < 1 {
		t.Errorf("leadership changes %d", n)
	}
}

func TestRestartKeepsRaftState(t *testing.T) {
	ledger := newVIPLedger(t)
	nodes := startFarm(t, 3, 3, ledger)
	leader := waitSingleServer(t, nodes, 15*time.Second)
	if err := leader.SetDrain("n1", true); err != nil {
		t.Fatal(err)
	}
	var victim *Cluster
	for _, c := range nodes {
		if c != leader {
			victim = c
		}
	}
	eventually(t, 5*time.Second, "drain replicated", func() bool { return victim.State().Drained["n1"] })
	key := victim.State().TicketKey
	// Snapshot first, so the restart goes through the FSM's Restore.
	if err := victim.raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}

	// Crash it and start it again on the same addresses and data directory.
	cfg := victim.cfg
	cfg.BindAddr = victim.GossipAddr()
	cfg.AdvertiseAddr = netip.AddrPort{}
	cfg.RaftBindAddr = netip.MustParseAddrPort(victim.RaftAddr())
	cfg.Join = []string{leader.GossipAddr().String()}
	victim.crash()
	restarted := startNode(t, cfg)
	if !restarted.bootstrapped.Load() {
		t.Fatal("restarted node has no raft state")
	}
	if !restarted.State().Drained["n1"] {
		t.Fatal("the FSM was not restored from the snapshot at start")
	}
	rest := append(without(nodes, victim), restarted)
	eventually(t, 15*time.Second, "restarted node caught up", func() bool {
		st := restarted.State()
		return st.Drained["n1"] && bytes.Equal(st.TicketKey, key)
	})
	l := waitSingleServer(t, rest, 15*time.Second)
	eventually(t, 10*time.Second, "three voters including the restarted node", func() bool {
		v := l.Stats().Voters
		return len(v) == 3 && slices.Contains(v, cfg.NodeName)
	})
}

func TestDataDirInUse(t *testing.T) {
	cfg := testConfig(t, "a", nil)
	startNode(t, cfg)
	second := testConfig(t, "b", nil)
	second.DataDir = cfg.DataDir
	c, err := New(second)
	if err == nil {
		c.Shutdown()
		t.Fatal("a second agent opened the same data_dir")
	}
	if !strings.Contains(err.Error(), "in use by another agent") {
		t.Fatalf("error %v", err)
	}
}

func TestTimingMismatchKeptOutOfRaft(t *testing.T) {
	nodes := startFarm(t, 3, 3, nil)
	leader := waitSingleServer(t, nodes, 15*time.Second)
	cfg := testConfig(t, "odd", nil)
	cfg.Timing, _ = Profile(ProfileRapid)
	cfg.Join = []string{leader.GossipAddr().String()}
	odd := startNode(t, cfg)
	eventually(t, 5*time.Second, "odd member alive on the leader", func() bool {
		m, ok := member(leader, "odd")
		return ok && m.Status == Alive && m.Report.Timing == odd.timing.Fingerprint()
	})
	time.Sleep(1500 * time.Millisecond) // a reconcile round or more
	if _, in := (*leader.voters.Load())["odd"]; in {
		t.Fatal("a member with another timing profile was added to raft")
	}
}

func TestLeaderThatCannotHoldVIPHandsOver(t *testing.T) {
	ledger := newVIPLedger(t)
	ledger.failFirst = true
	nodes := startFarm(t, 3, 3, ledger)
	next := waitSingleServer(t, nodes, 20*time.Second)
	ledger.mu.Lock()
	failing, failures := ledger.failing, ledger.failures
	ledger.mu.Unlock()
	if failing == "" || next.cfg.NodeName == failing {
		t.Fatalf("server %s, failing node %q", next.cfg.NodeName, failing)
	}
	if failures < maxAcquireFailures {
		t.Errorf("%d failures before the handover, want %d", failures, maxAcquireFailures)
	}
	t.Logf("%s failed %d times, %s took over", failing, failures, next.cfg.NodeName)
}
