package cluster

import (
	"errors"
	"net"
	"sync"
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

// TestPartitionedLeaderStopsBeforeTakeover cuts the leader off from raft
// while it keeps running: it must stop serving by its lease deadline, before
// anyone else can be elected, and the serving intervals must not overlap.
func TestPartitionedLeaderStopsBeforeTakeover(t *testing.T) {
	ledger := newVIPLedger(t)
	streams := map[string]*cuttable{}
	var nodes []*Cluster
	var seed string
	for _, name := range []string{"n1", "n2", "n3"} {
		cfg := testConfig(t, name, ledger)
		cfg.wrapStream = func(s raft.StreamLayer) raft.StreamLayer {
			c := newCuttable(s)
			streams[name] = c
			return c
		}
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
	cutAt := Monotonic()

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
	end, ok := ledger.lastRelease(old.cfg.NodeName)
	if !ok {
		// The old leader may not have released yet, but it must not serve.
		if _, serving := old.Serving(); serving {
			t.Fatal("cut-off leader still serving after a takeover")
		}
	}
	start, _ := ledger.servingSince(next.cfg.NodeName)
	term, _ := next.Serving()
	t.Logf("cut at %v; %s (term %d) stopped serving at %v; %s (term %d) serves from %v",
		cutAt, old.cfg.NodeName, oldTerm, end, next.cfg.NodeName, term, start)
	if ok && start < end {
		t.Errorf("overlap: %v", end-start)
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
