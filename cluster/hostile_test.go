package cluster

import (
	"crypto/tls"
	"math"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/usherlb/usher/internal/pki"
)

// rogueStream is the stream layer of a hostile Raft peer: plain TCP, or
// TLS presenting cert and trusting any server.
type rogueStream struct {
	net.Listener
	cert *tls.Certificate
}

func (r *rogueStream) Dial(a raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if r.cert == nil {
		return net.DialTimeout("tcp", string(a), timeout)
	}
	return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", string(a), &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{*r.cert},
		InsecureSkipVerify: true,
	})
}

// rogue is a hostile Raft peer speaking hashicorp/raft's own wire format
// (its NetworkTransport: a type byte, then msgpack).
type rogue struct {
	trans *raft.NetworkTransport
	addr  raft.ServerAddress
}

func newRogue(t *testing.T, cert *tls.Certificate) *rogue {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &rogueStream{Listener: ln, cert: cert},
		Timeout: 2 * time.Second,
		Logger:  testLogger("rogue"),
	})
	t.Cleanup(func() { trans.Close() })
	return &rogue{trans: trans, addr: raft.ServerAddress(ln.Addr().String())}
}

// claimLeadership sends target an AppendEntries of the next term naming
// the rogue as leader.
func (r *rogue) claimLeadership(target *Cluster) (uint64, error) {
	term := target.raft.CurrentTerm() + 1
	var resp raft.AppendEntriesResponse
	err := r.trans.AppendEntries("rogue", raft.ServerAddress(target.RaftAddr()), &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("rogue"), Addr: []byte(r.addr)},
		Term:      term,
	}, &resp)
	return term, err
}

// maxTermVote sends target a RequestVote of the largest term, flagged as
// a leadership transfer so that a follower with a leader hears it: today's
// code persists that term, and the next election wraps it to 0.
func (r *rogue) maxTermVote(target *Cluster) error {
	var resp raft.RequestVoteResponse
	return r.trans.RequestVote("", raft.ServerAddress(target.RaftAddr()), &raft.RequestVoteRequest{
		RPCHeader:          raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax},
		Term:               math.MaxUint64,
		LastLogIndex:       math.MaxUint64,
		LastLogTerm:        math.MaxUint64,
		LeadershipTransfer: true,
	}, &resp)
}

// TestHostileRaftPeerWithoutTLS shows the attacks the TLS test below
// defends against: with Raft on plain TCP, one AppendEntries makes a rogue
// the leader of a voter's term, and one RequestVote gives it the largest
// term there is.
func TestHostileRaftPeerWithoutTLS(t *testing.T) {
	nodes := startFarm(t, 3, 3, newVIPLedger(t))
	leader := waitSingleServer(t, nodes, 20*time.Second)
	target := without(nodes, leader)[0]
	r := newRogue(t, nil)
	term, err := r.claimLeadership(target)
	if err != nil {
		t.Fatalf("AppendEntries refused: %v", err)
	}
	if got := target.raft.CurrentTerm(); got < term {
		t.Fatalf("%s's term is %d after the rogue's AppendEntries of term %d", target.Name(), got, term)
	}
	if err := r.maxTermVote(target); err != nil {
		t.Fatalf("RequestVote refused: %v", err)
	}
	if got := target.raft.CurrentTerm(); got != math.MaxUint64 {
		t.Fatalf("%s's term is %d after the rogue's vote request, want the largest", target.Name(), got)
	}
}

// TestHostileRaftPeerWithTLS sends every voter of a farm under mutual TLS
// the attacks above from peers without this farm's credentials: none gets
// a byte to Raft, no voter's term moves, leadership stays, and the farm
// goes on serving and committing.
func TestHostileRaftPeerWithTLS(t *testing.T) {
	p := newTestPKI(t, testFarm)
	nodes := startFarmWith(t, 3, 3, newVIPLedger(t), p.withTLS)
	leader := waitSingleServer(t, nodes, 20*time.Second)
	leaderName := leader.Name()
	terms := map[string]uint64{}
	for _, c := range nodes {
		eventually(t, 5*time.Second, "leader known everywhere", func() bool {
			n, _ := c.Leader()
			return n == leaderName
		})
		terms[c.Name()] = c.raft.CurrentTerm()
	}
	otherFarm := newTestPKI(t, "other-farm")
	crossed := &testPKI{t: t, ca: &pki.CA{Cert: p.ca.Cert, Key: p.ca.Key, Farm: "other-farm"}}
	rogues := []struct {
		name string
		cert *tls.Certificate
	}{
		{"no certificate", nil},
		{"another CA, same farm name and a voter's name", newTestPKI(t, testFarm).clientCert("n2")},
		{"another farm's CA", otherFarm.clientCert("n2")},
		{"this CA, another farm", crossed.clientCert("n2")},
		{"this farm, a node outside raft", p.clientCert("n9")},
	}
	for _, rg := range rogues {
		r := newRogue(t, rg.cert)
		for _, target := range nodes {
			if _, err := r.claimLeadership(target); err == nil {
				t.Errorf("%s: %s accepted an AppendEntries", rg.name, target.Name())
			}
			if err := r.maxTermVote(target); err == nil {
				t.Errorf("%s: %s answered a RequestVote", rg.name, target.Name())
			}
		}
	}
	for _, c := range nodes {
		// The rogue sees its handshake fail before the node's accept
		// goroutine counts the refusal: wait for the count.
		want := uint64(2 * len(rogues))
		eventually(t, 5*time.Second, c.Name()+" counting the refused raft connections", func() bool {
			return c.Stats().RaftRefused >= want
		})
		// A legitimate election under load may add a term or two; the
		// attack's terms are far larger.
		if got := c.raft.CurrentTerm(); got > terms[c.Name()]+2 {
			t.Errorf("%s: term %d, was %d", c.Name(), got, terms[c.Name()])
		}
		if n, _ := c.Leader(); !slices.Contains([]string{"n1", "n2", "n3"}, n) {
			t.Errorf("%s names leader %q", c.Name(), n)
		}
	}
	leader = waitSingleServer(t, nodes, 10*time.Second)
	if err := leader.SetDrain("n3", true); err != nil {
		t.Fatalf("the farm no longer commits: %v", err)
	}
}
