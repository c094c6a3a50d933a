package cluster

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestAddressCheckHandshake checks both ends of an address check: any node
// of the farm completes it, the connection never reaches raft, and the
// checker accepts only a certificate naming the node it expects there.
func TestAddressCheckHandshake(t *testing.T) {
	p := newTestPKI(t, testFarm)
	server := listenTLS(t, p.store("n1"), &fakePolicy{}) // admits no raft peer
	handed := make(chan struct{}, 1)
	go func() {
		if c, err := server.Accept(); err == nil {
			c.Close()
			handed <- struct{}{}
		}
	}()
	addr := server.Addr().String()
	tests := []struct {
		name string
		src  TLS
		want string
		ok   bool
	}{
		{"a farm node outside raft checks n1", p.store("n9"), "n1", true},
		{"the certificate names another node", p.store("n9"), "n2", false},
		{"a checker of another CA", newTestPKI(t, testFarm).store("n9"), "n1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := dialVerify(ctx, tt.src, addr, tt.want); (err == nil) != tt.ok {
				t.Fatalf("dialVerify = %v, want success %v", err, tt.ok)
			}
		})
	}
	select {
	case <-handed:
		t.Fatal("an address check reached raft")
	case <-time.After(200 * time.Millisecond):
	}
}

// TestServiceAddressChecked runs a TLS farm in which n3 announces a
// session address on another IP than its raft address's: no node names it
// until n3's certificate lists that IP, while n2's address on its raft IP
// is named.
func TestServiceAddressChecked(t *testing.T) {
	p := newTestPKI(t, testFarm)
	nodes, stores := startTLSFarm(t, p)
	waitSingleServer(t, nodes, 20*time.Second)
	own := netip.MustParseAddrPort("127.0.0.1:3478")
	other := netip.MustParseAddrPort("127.0.0.2:3479")
	n2, n3 := nodeNamed(nodes, "n2"), nodeNamed(nodes, "n3")
	report := func() {
		n2.SetReport(Report{Service: own, Capacity: 10})
		n3.SetReport(Report{Service: other, Capacity: 10, Sessions: 3})
	}
	n1 := nodeNamed(nodes, "n1")
	eventually(t, 10*time.Second, "n2's session address on n1", func() bool {
		report()
		m, _ := member(n1, "n2")
		return m.Report.Service == own
	})
	// n3's report arrives, signed, but its address stays unnamed.
	for range 8 {
		report()
		time.Sleep(DefaultPublishInterval)
		for _, c := range without(nodes, n3) {
			if m, _ := member(c, "n3"); m.Report.Service.IsValid() {
				t.Fatalf("%s names n3's session address %s on an IP not its own", c.Name(), m.Report.Service)
			}
		}
	}
	if m, _ := member(n1, "n3"); m.Report.Sessions != 3 {
		t.Fatalf("n3's report did not arrive: %+v", m.Report)
	}
	stores["n3"].Set(p.bundle("n3", p.ca, other.Addr()))
	for _, c := range without(nodes, n3) {
		eventually(t, 10*time.Second, "n3's session address on "+c.Name(), func() bool {
			report()
			m, _ := member(c, "n3")
			return m.Report.Service == other
		})
	}
}

// TestRaftAddressElsewhereNotAdded starts, next to a TLS farm, a node that
// advertises another node's raft address and a node that advertises its
// own: the leader adds the second as a standby, never the first.
func TestRaftAddressElsewhereNotAdded(t *testing.T) {
	p := newTestPKI(t, testFarm)
	nodes := startFarmWith(t, 3, 3, nil, p.withTLS)
	leader := waitSingleServer(t, nodes, 20*time.Second)
	seed := nodeNamed(nodes, "n1").GossipAddr().String()
	liar := testConfig(t, "n4", nil)
	p.withTLS(&liar)
	liar.Join = []string{seed}
	liar.RaftAdvertiseAddr = netip.MustParseAddrPort(nodeNamed(nodes, "n2").RaftAddr())
	startNode(t, liar)
	eventually(t, 10*time.Second, "n4 known to the leader", func() bool {
		e, ok := leader.members.lookup("n4")
		return ok && e.report.RaftAddr == liar.RaftAdvertiseAddr.String()
	})
	honest := testConfig(t, "n5", nil)
	p.withTLS(&honest)
	honest.Join = []string{seed}
	startNode(t, honest)
	eventually(t, 15*time.Second, "n5 added as a standby", func() bool {
		return leader.suffrages()["n5"] == raft.Nonvoter
	})
	time.Sleep(2 * time.Second)
	if _, in := leader.suffrages()["n4"]; in {
		t.Fatal("n4, whose raft address is n2's, was added to raft")
	}
	if ok, done := leader.raftAddrChecked(mustEntry(t, leader, "n4")); ok || !done {
		t.Fatalf("n4's raft address check: ok %v done %v, want a finished failure", ok, done)
	}
}

func mustEntry(t *testing.T, c *Cluster, name string) memberEntry {
	t.Helper()
	e, ok := c.members.lookup(name)
	if !ok {
		t.Fatalf("%s does not know %s", c.Name(), name)
	}
	return e
}

// TestOutsideRaftChecksNobody runs a TLS farm of one voter and two
// members outside raft: the voter checks both members' addresses and
// fetches their certificates; a member outside raft checks no address,
// fetches no other member's certificate and, knowing the voter from the
// leader's state messages, sends its reports there instead of gossiping
// them. That keeps a large farm's start O(members), not O(members²).
func TestOutsideRaftChecksNobody(t *testing.T) {
	nodes, leader := startOneVoterTLSFarm(t)
	n2, n3 := nodeNamed(nodes, "n2"), nodeNamed(nodes, "n3")
	for _, c := range []*Cluster{n2, n3} {
		eventually(t, 20*time.Second, c.Name()+" knows the leader", func() bool {
			name, _ := c.Leader()
			return name == leader.Name()
		})
		eventually(t, 10*time.Second, "the leader checked "+c.Name(), func() bool {
			e, _ := leader.members.lookup(c.Name())
			ok, _ := leader.raftAddrChecked(e)
			_, known := leader.auth.lookup(c.Name(), e.key)
			return ok && known
		})
	}
	if got := [3]addrScope{leader.checkScope(), n2.checkScope(), n3.checkScope()}; got != [3]addrScope{checkAll, checkNone, checkNone} {
		t.Fatalf("scopes %v, want all, none, none", got)
	}
	before := n3.Stats()
	time.Sleep(8 * DefaultPublishInterval)
	after := n3.Stats()
	if sent := after.ReportsSent - before.ReportsSent; sent < 4 {
		t.Errorf("n3 sent %d reports to the voter in 8 intervals", sent)
	}
	if g := after.ReportsGossiped - before.ReportsGossiped; g > 1 {
		t.Errorf("n3 gossiped %d of 8 reports", g)
	}
	n3.addrs.mu.Lock()
	checks := len(n3.addrs.m)
	n3.addrs.mu.Unlock()
	if checks != 0 {
		t.Errorf("n3, outside raft, made %d address checks", checks)
	}
	e, ok := n3.members.lookup("n2")
	if !ok {
		t.Fatal("n3 does not list n2")
	}
	if _, known := n3.auth.lookup("n2", e.key); known || !e.reportedAt.IsZero() {
		t.Error("n3, outside raft, fetched n2's certificate and took its metadata")
	}
}
