package node

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/assign"
	"github.com/usherlb/usher/client"
	"github.com/usherlb/usher/cluster"
	"github.com/usherlb/usher/internal/testutil"
	"github.com/usherlb/usher/wire"
)

// testFarm is several agents in this process on loopback, sharing one
// balancer address in bind mode, with a record of every serving interval.
type testFarm struct {
	t      *testing.T
	vip    netip.AddrPort
	seed   string
	agents []*Agent

	mu        sync.Mutex
	open      map[string]time.Duration
	intervals []testutil.Interval
}

// newTestFarm starts n agents with bootstrap_expect voters, adjusted by
// tweak, and waits until one of them serves.
func newTestFarm(t *testing.T, n, voters int, tweak func(i int, c *Config)) *testFarm {
	t.Helper()
	return newLoggedFarm(t, n, voters, tweak, hclog.NewNullLogger())
}

// newLoggedFarm is newTestFarm with every agent logging to logger.
func newLoggedFarm(t *testing.T, n, voters int, tweak func(i int, c *Config), logger hclog.Logger) *testFarm {
	t.Helper()
	f := &testFarm{t: t, open: map[string]time.Duration{}}
	f.vip = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), testutil.FreeUDPPort(t))
	for i := range n {
		c := DevConfig()
		c.NodeName = fmt.Sprintf("n%d", i+1)
		c.DataDir = t.TempDir()
		c.Bind = "127.0.0.1:0"
		c.SessionAddr = "127.0.0.1:0"
		c.HTTP = "127.0.0.1:0"
		c.VIP = f.vip.String()
		c.BootstrapExpect = voters
		c.Insecure = true // Raft over TLS is tested in package cluster
		c.KeepaliveInterval = "100ms"
		c.DeadAfter = "600ms"
		if f.seed != "" {
			c.Join = []string{f.seed}
		}
		if tweak != nil {
			tweak(i, &c)
		}
		rt, err := c.Build()
		if err != nil {
			t.Fatal(err)
		}
		testHookOnVIP = f.record(c.NodeName)
		a, err := newAgent(rt, logger.Named(c.NodeName))
		testHookOnVIP = nil
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		f.agents = append(f.agents, a)
		if f.seed == "" {
			f.seed = a.cl.Load().GossipAddr().String()
		}
	}
	t.Cleanup(f.checkIntervals)
	f.leader()
	return f
}

// record returns the VIP hook for node: it keeps the serving intervals.
func (f *testFarm) record(node string) func(bool, uint64, time.Duration) {
	return func(acquired bool, _ uint64, at time.Duration) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if acquired {
			f.open[node] = at
			return
		}
		if from, ok := f.open[node]; ok {
			delete(f.open, node)
			f.intervals = append(f.intervals, testutil.Interval{Holder: node, From: from, To: at})
		}
	}
}

// checkIntervals fails the test if two nodes ever served at once.
func (f *testFarm) checkIntervals() {
	f.mu.Lock()
	defer f.mu.Unlock()
	all := append([]testutil.Interval(nil), f.intervals...)
	for node, from := range f.open {
		all = append(all, testutil.Interval{Holder: node, From: from})
	}
	for _, p := range testutil.Overlaps(all) {
		f.t.Errorf("%s and %s served at once: %v-%v and %v-%v", p[0].Holder, p[1].Holder, p[0].From, p[0].To, p[1].From, p[1].To)
	}
}

// leader waits until exactly one live agent serves, and returns it.
func (f *testFarm) leader() *Agent {
	f.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		var serving []*Agent
		for _, a := range f.agents {
			if a.closed() {
				continue
			}
			if _, ok := a.serving(); ok && a.resp.Serving() {
				serving = append(serving, a)
			}
		}
		if len(serving) > 1 {
			f.t.Fatalf("%d agents serve at once", len(serving))
		}
		if len(serving) == 1 {
			return serving[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.t.Fatal("no agent serves within 15s")
	return nil
}

// followers returns the live agents other than the one serving.
func (f *testFarm) followers() []*Agent {
	leader := f.leader()
	var out []*Agent
	for _, a := range f.agents {
		if a != leader && !a.closed() {
			out = append(out, a)
		}
	}
	return out
}

// viewed waits until the leader's view has every live agent in it, with a
// report, so assignments can reach them all.
func (f *testFarm) viewed(want int) {
	f.t.Helper()
	waitFor(f.t, func() bool {
		n := 0
		// A node offers itself once it holds the farm's ticket key
		// (until then it reports draining: the leader sees it starting).
		for _, node := range f.leader().view.Load().Nodes() {
			if !node.Suspect && !node.Draining && !node.Starting {
				n++
			}
		}
		return n == want
	})
}

func dialMany(t *testing.T, vip netip.AddrPort, n int) []*client.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var out []*client.Session
	for range n {
		s, err := client.Dial(ctx, vip, client.Options{Events: 64, RTO: 50 * time.Millisecond, ReprobeBackoff: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out = append(out, s)
	}
	return out
}

func TestFarmAssignsAcrossNodesAndFailsOver(t *testing.T) {
	f := newTestFarm(t, 3, 3, nil)
	f.viewed(3)
	sessions := dialMany(t, f.vip, 30)
	per := map[netip.AddrPort]int{}
	for _, s := range sessions {
		per[s.Server()]++
	}
	if len(per) != 3 {
		t.Fatalf("30 sessions went to %d servers: %v", len(per), per)
	}
	for addr, n := range per {
		if n < 5 {
			t.Errorf("server %v got only %d of 30 sessions: %v", addr, n, per)
		}
	}

	// Stop the leader: another node takes the balancer address, clients of
	// the old leader move, and nobody else notices.
	old := f.leader()
	oldAddr := old.SessionAddr()
	before := make([]netip.AddrPort, len(sessions))
	for i, s := range sessions {
		before[i] = s.Server()
	}
	start := time.Now()
	old.Close()
	next := f.leader()
	first := probeUntilAnswered(t, f.vip)
	t.Logf("takeover after a stop: %v to the first answered probe (%s to %s)", time.Since(start), old.cfg.NodeName, next.cfg.NodeName)
	// The old leader's last report is still fresh for a while, but the
	// node that took over from it sends no one there until it reports
	// again (cluster.Member.AwaitingReport), which it never will.
	for i := 0; i < 20; i++ {
		r := first
		if i > 0 {
			r = probeUntilAnswered(t, f.vip)
		}
		if r.Server == oldAddr {
			t.Fatalf("answer %d after the takeover, %v after the stop, names the stopped leader %s", i+1, time.Since(start), oldAddr)
		}
	}
	for _, s := range sessions {
		if s.Server() == oldAddr {
			waitFor(t, func() bool { return s.Server() != oldAddr && s.Stats().Reassignments > 0 })
		}
	}
	// A session of the old leader may have moved to one of its backups
	// rather than through a new redirect; what must not happen is a
	// session on a server that stayed up losing it.
	for i, s := range sessions {
		if before[i] != oldAddr && s.Stats().Lost > 0 {
			t.Errorf("a session on %v, which stayed up, lost its server", before[i])
		}
	}
}

// probeUntilAnswered probes vip until a redirect comes back.
func probeUntilAnswered(t *testing.T, vip netip.AddrPort) wire.Response {
	t.Helper()
	return probeNaming(t, vip, netip.AddrPort{})
}

func TestFarmDrainThroughFollower(t *testing.T) {
	f := newTestFarm(t, 3, 3, nil)
	f.viewed(3)
	fs := f.followers()
	follower, target := fs[0], fs[1]
	sessions := dialMany(t, f.vip, 20)
	// Drain through a follower's API: it forwards to the leader, Raft
	// replicates it, the drained node tells its clients.
	req, _ := http.NewRequest(http.MethodPut, "http://"+follower.HTTPAddr()+"/v1/drain?node="+target.cfg.NodeName, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("drain through a follower: %s", resp.Status)
	}
	waitFor(t, func() bool { return target.ep.Draining() })
	for _, s := range sessions {
		waitFor(t, func() bool { return s.Server() != target.SessionAddr() })
	}
	for _, s := range dialMany(t, f.vip, 10) {
		if s.Server() == target.SessionAddr() {
			t.Errorf("a new session went to the drained node")
		}
	}
}

func TestFarmExcludesStaleReports(t *testing.T) {
	f := newTestFarm(t, 3, 3, nil)
	f.viewed(3)
	quiet := f.followers()[0]
	// The node stays a live member but stops reporting its load: after
	// three publish intervals the leader assigns nothing to it.
	setQuiet(quiet, true)
	stale := staleReports * cluster.DefaultPublishInterval
	waitFor(t, func() bool {
		for _, n := range f.leader().view.Load().Nodes() {
			if n.ID == quiet.cfg.NodeName {
				return time.Since(n.ReportedAt) > stale+100*time.Millisecond
			}
		}
		return false
	})
	for _, s := range dialMany(t, f.vip, 20) {
		if s.Server() == quiet.SessionAddr() {
			t.Fatal("assigned to a node whose load report is stale")
		}
	}
	setQuiet(quiet, false)
	f.viewed(3)
}

func TestFarmLostServerVerification(t *testing.T) {
	f := newTestFarm(t, 3, 3, nil)
	f.viewed(3)
	leader := f.leader()
	fs := f.followers()
	healthy, doomed := fs[0], fs[1]

	// A lying client names a healthy server: the leader checks it, keeps
	// it in service, and sends that client elsewhere.
	for range 5 {
		r := probeNaming(t, f.vip, healthy.SessionAddr())
		if r.Server == healthy.SessionAddr() {
			t.Fatal("a client was sent back to the server it reported lost")
		}
	}
	waitFor(t, func() bool { return leader.verify.refuted.Load() > 0 })
	time.Sleep(100 * time.Millisecond)
	for _, n := range leader.view.Load().Nodes() {
		if n.Addr == healthy.SessionAddr() && n.Suspect {
			t.Fatal("a healthy server was excluded on a client's word")
		}
	}

	// A dead server named by its clients: the leader confirms the silence
	// and excludes it, before gossip has said anything.
	addr := doomed.SessionAddr()
	doomed.ep.Close()
	probeNaming(t, f.vip, addr)
	waitFor(t, func() bool { return leader.verify.confirmed.Load() > 0 })
	waitFor(t, func() bool {
		for _, n := range leader.view.Load().Nodes() {
			if n.Addr == addr {
				return n.Suspect
			}
		}
		return true
	})
	if m := memberStatus(leader, doomed.cfg.NodeName); m != cluster.Alive {
		t.Logf("note: gossip already said %v", m)
	}
	for range 10 {
		if r := probeUntilAnswered(t, f.vip); r.Server == addr {
			t.Fatal("assigned to a server confirmed dead")
		}
	}
}

func memberStatus(a *Agent, name string) cluster.MemberStatus {
	for _, m := range a.cl.Load().Members() {
		if m.Name == name {
			return m.Status
		}
	}
	return 0
}

// probeNaming probes vip, reporting lost as lost unless it is zero, with a
// fresh transaction each time, until a redirect comes back (10 s at most).
func probeNaming(t *testing.T, vip, lost netip.AddrPort) wire.Response {
	t.Helper()
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(vip))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var enc wire.Encoder
	var dec wire.Decoder
	buf := make([]byte, 1500)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		p := wire.Probe{Session: wire.SessionID{2}, LostServer: lost, PadTo: wire.ProbeSize}
		fillTx(&p.TxID)
		pkt, _ := enc.AppendProbe(nil, &p)
		conn.Write(pkt)
		conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := conn.Read(buf)
		if err != nil {
			continue
		}
		var r wire.Response
		if dec.DecodeResponse(buf[:n], &r) == nil && r.TxID == p.TxID {
			return r
		}
	}
	t.Fatal("balancer address silent for 10s")
	return wire.Response{}
}

func TestFarmRespondFromServer(t *testing.T) {
	f := newTestFarm(t, 3, 3, func(_ int, c *Config) { c.RespondFrom = "server" })
	f.viewed(3)
	// Wait until the farm's ticket key reached every node: handoffs are
	// sealed with it.
	waitFor(t, func() bool {
		for _, a := range f.agents {
			if len(a.cl.Load().State().TicketKey) == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(2 * viewInterval)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var enc wire.Encoder
	var dec wire.Decoder
	buf := make([]byte, 1500)
	seen := map[netip.AddrPort]bool{}
	for i := range 12 {
		p := wire.Probe{Session: wire.SessionID{3, byte(i)}, PadTo: wire.ProbeSize}
		fillTx(&p.TxID)
		pkt, _ := enc.AppendProbe(nil, &p)
		conn.WriteToUDPAddrPort(pkt, f.vip)
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		var r wire.Response
		if err := dec.DecodeResponse(buf[:n], &r); err != nil || r.TxID != p.TxID || r.Code != stun.CodeTryAlternate {
			t.Fatalf("answer %v %+v", err, r)
		}
		from = unmapAddrPort(from)
		if from != r.Server {
			t.Fatalf("the answer naming %v came from %v, not from the server itself", r.Server, from)
		}
		if n > len(pkt) {
			t.Fatalf("answer of %d bytes to a probe of %d", n, len(pkt))
		}
		seen[from] = true
	}
	if len(seen) < 2 {
		t.Errorf("every answer came from one server: %v", seen)
	}
	relayed := uint64(0)
	for _, a := range f.agents {
		relayed += a.ep.Stats().Relayed
	}
	if relayed != 12 {
		t.Errorf("%d handoffs relayed, want 12", relayed)
	}
}

func TestFarmHandoffFromStrangerIgnored(t *testing.T) {
	f := newTestFarm(t, 1, 1, nil)
	a := f.agents[0]
	// A handoff sealed with a key other than the farm's is not relayed:
	// nobody else can make a server send datagrams where they like.
	s := wire.NewSealer([]byte("not the farm key, not the farm ke"))
	victim := netip.MustParseAddrPort("127.0.0.1:9")
	ans := []byte{0x01, 0x11, 0, 0}
	pkt, _ := s.AppendHandoff(nil, &wire.Handoff{Client: victim, Sent: uint32(time.Now().Unix()), Answer: ans})
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(a.SessionAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write(pkt)
	waitFor(t, func() bool { return a.ep.Stats().Drops["handoff_invalid"] == 1 })
	if a.ep.Stats().Relayed != 0 {
		t.Fatal("relayed a handoff from a stranger")
	}
}

// TestFarmLedgerStopsHerding checks design invariant 5's "no herding onto
// one node from a stale view" through a real leader. Two of three nodes
// report 40 sessions each, the third none; then a burst of probes comes in
// whose clients never arrive, so no load report ever counts them: the view
// stays stale about every redirect of the burst. Only the leader's pending
// ledger knows where they went. With it, least-loaded's band sends the
// first redirects to the empty node until the others are back within the
// band (assign.DefaultSpread above the mean), then takes turns, so no node
// ends more than the band above the mean (the loads end 36, 67 and 67, the
// mean 56.7); without it, the empty node looks emptiest for the whole burst
// and takes all of it.
func TestFarmLedgerStopsHerding(t *testing.T) {
	// The busy nodes' load is ticketless sessions from one socket.
	f := newTestFarm(t, 3, 3, func(_ int, c *Config) {
		c.SessionTTL, c.RequireTicket, c.MaxSessionsPerSource = "1m", false, 1000
	})
	f.viewed(3)
	// Reports produced from now on are younger than every agent's
	// Assigner, so the view below ends the leader's warm-up: its
	// least-loaded is the band, not the warm-up's p2c.
	t0 := time.Now()
	leader := f.leader()
	fs := f.followers()
	empty := fs[0]
	const busyLoad, burst = 40, 90
	c := listenUDP(t, "127.0.0.1:0")
	for j, a := range []*Agent{leader, fs[1]} {
		for i := range busyLoad {
			ka := keepalive(t, wire.SessionID{0x1e, byte(j), byte(i)}, nil, wire.KeepaliveSize)
			if r := roundTrip(t, c, a.SessionAddr(), ka); !r.Success {
				t.Fatalf("keepalive refused: %+v", r)
			}
		}
	}
	reported := map[netip.AddrPort]int{}
	waitFor(t, func() bool {
		clear(reported)
		for _, n := range leader.view.Load().Nodes() {
			want := busyLoad
			if n.ID == empty.cfg.NodeName {
				want = 0
			}
			if n.Suspect || n.Sessions != want || !n.ReportedAt.After(t0) {
				return false
			}
			reported[n.Addr] = n.Sessions
		}
		return len(reported) == 3
	})

	got := map[netip.AddrPort]int{}
	start := time.Now()
	for i := range burst {
		r := roundTrip(t, c, f.vip, probe(t, wire.Probe{Session: wire.SessionID{0x1f, byte(i)}, PadTo: wire.ProbeSize}))
		got[r.Server]++
	}
	t.Logf("burst of %d probes in %v: %v on top of %v", burst, time.Since(start), got, reported)
	if took, ttl := time.Since(start), leader.resp.cfg.Assign.PendingTTL; took >= ttl {
		t.Fatalf("the burst took %v, longer than a ledger entry lives (%v)", took, ttl)
	}
	mean := float64(2*busyLoad+burst) / 3
	for addr, n := range reported {
		if got[addr] == 0 {
			t.Errorf("%v got none of the burst: %v", addr, got)
		}
		if load := float64(n + got[addr]); load > mean+assign.DefaultSpread+1 {
			t.Errorf("%v ends with %.0f sessions, the mean is %.1f: the burst herded onto it (%v)", addr, load, mean, got)
		}
	}
}

// TestFarmLeaveOnTerminate closes a follower of each setting: with
// leave_on_terminate (the default) the others record it left, without it
// dead, still a voter of the Raft configuration.
func TestFarmLeaveOnTerminate(t *testing.T) {
	f := newTestFarm(t, 3, 3, nil)
	l := f.leader()
	f.viewed(3)
	fs := f.followers()
	stays, leaves := fs[0], fs[1]
	stays.cfg.LeaveOnTerminate = false
	for _, tt := range []struct {
		a    *Agent
		want cluster.MemberStatus
	}{{stays, cluster.Dead}, {leaves, cluster.Left}} {
		if err := tt.a.Close(); err != nil {
			t.Fatal(err)
		}
		name := tt.a.cfg.NodeName
		testutil.Eventually(t, 10*time.Second, name+" "+tt.want.String(), func() bool { return memberStatus(l, name) == tt.want })
	}
	peers, err := l.cl.Load().RaftPeers()
	name := stays.cfg.NodeName
	if err != nil || !slices.ContainsFunc(peers, func(p cluster.Peer) bool { return p.ID == name }) {
		t.Errorf("%s stopped without leaving but left the raft configuration: %+v, %v", name, peers, err)
	}
}
