package cluster

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// recordState is how long the voters need, after a report reached them,
// to remember that its node has raft state: one maintenance tick (1 s),
// with room for a loaded machine.
const recordState = 2500 * time.Millisecond

// restartConfig returns victim's configuration for a restart on the same
// gossip address, joining via, with the raft address raftAddr (empty: the
// victim's own) and the data directory dataDir.
func restartConfig(victim *Cluster, via *Cluster, raftAddr, dataDir string) Config {
	cfg := victim.cfg
	cfg.BindAddr = victim.GossipAddr()
	cfg.AdvertiseAddr = netip.AddrPort{}
	cfg.RaftBindAddr = netip.MustParseAddrPort(victim.RaftAddr())
	if raftAddr != "" {
		cfg.RaftBindAddr = netip.MustParseAddrPort(raftAddr)
	}
	cfg.DataDir = dataDir
	cfg.Join = []string{via.GossipAddr().String()}
	return cfg
}

// farmWithVictim starts three voters, waits for a leader and for every
// voter to have recorded a follower's raft state, and returns the leader
// and that follower.
func farmWithVictim(t *testing.T, adjust func(*Config)) (nodes []*Cluster, leader, victim *Cluster) {
	t.Helper()
	nodes = startFarmWith(t, 3, 3, newVIPLedger(t), adjust)
	leader = waitSingleServer(t, nodes, 20*time.Second)
	victim = without(nodes, leader)[0]
	eventually(t, 10*time.Second, "the leader sees the victim's raft state", func() bool {
		m, ok := member(leader, victim.Name())
		return ok && m.Report.Bootstrapped
	})
	time.Sleep(recordState)
	return nodes, leader, victim
}

// A voter whose data directory is wiped and which starts again while the
// farm runs stops with ErrWipedVoter instead of rejoining as the voter it
// was; the farm keeps its leader.
func TestWipedVoterStops(t *testing.T) {
	nodes, leader, victim := farmWithVictim(t, nil)
	cfg := restartConfig(victim, leader, "", t.TempDir())
	victim.crash()
	wiped := startNode(t, cfg)
	select {
	case <-wiped.Failed():
	case <-time.After(15 * time.Second):
		t.Fatal("the wiped voter did not stop")
	}
	if err := wiped.Err(); !errors.Is(err, ErrWipedVoter) || !strings.Contains(err.Error(), "to recover") {
		t.Fatalf("Err() = %v, want ErrWipedVoter naming the recovery", err)
	}
	if m, _ := member(leader, cfg.NodeName); m.Report.Bootstrapped {
		t.Error("the wiped voter reported raft state")
	}
	waitSingleServer(t, without(nodes, victim), 10*time.Second)
}

// A voter that left the farm (so the leader removed it) comes back with an
// empty data directory as a new member: it does not stop, and it is taken
// into raft again.
func TestRemovedVoterReturnsEmpty(t *testing.T) {
	nodes, leader, victim := farmWithVictim(t, nil)
	cfg := restartConfig(victim, leader, "", t.TempDir())
	if err := victim.Shutdown(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the leader removed the voter that left", func() bool {
		_, ok := leader.suffrages()[cfg.NodeName]
		return !ok
	})
	back := startNode(t, cfg)
	eventually(t, 20*time.Second, "the returning node is a voter again", func() bool {
		l := waitSingleServer(t, without(nodes, victim), 10*time.Second)
		return l.suffrages()[cfg.NodeName] == raft.Voter && back.verifiedState()
	})
	if err := back.Err(); err != nil {
		t.Fatalf("the returning node stopped: %v", err)
	}
}

// Without TLS a voter's name arriving from a new raft address is never
// taken for the voter: the leader keeps the configured address and logs
// the recovery.
func TestVoterMoveWithoutTLSRefused(t *testing.T) {
	logs := &logBuffer{}
	nodes, leader, victim := farmWithVictim(t, func(c *Config) {
		c.Logger = hclog.New(&hclog.LoggerOptions{Name: c.NodeName, Level: hclog.Info, Output: logs})
	})
	old := raft.ServerAddress(victim.RaftAddr())
	cfg := restartConfig(victim, leader, "127.0.0.1:0", victim.cfg.DataDir)
	victim.crash()
	moved := startNode(t, cfg)
	eventually(t, 10*time.Second, "the leader sees the new raft address", func() bool {
		m, ok := member(leader, cfg.NodeName)
		return ok && m.Report.RaftAddr == moved.RaftAddr() && m.Report.Bootstrapped
	})
	eventually(t, 10*time.Second, "the leader refuses the move", func() bool {
		return strings.Contains(logs.String(), "a voter's name arrives from a new raft address")
	})
	time.Sleep(recordState)
	l := waitSingleServer(t, without(nodes, victim), 10*time.Second)
	servers, ok := l.refreshConfiguration()
	if !ok {
		t.Fatal("no configuration")
	}
	for _, s := range servers {
		if string(s.ID) == cfg.NodeName && s.Address != old {
			t.Fatalf("the voter was moved to %s without TLS", s.Address)
		}
	}
}

// With TLS a voter that moved with its raft state follows to the new
// address; a wiped one at a new address is not followed and stops.
func TestVoterMoveWithTLS(t *testing.T) {
	for _, wipe := range []bool{false, true} {
		name := map[bool]string{false: "intact", true: "wiped"}[wipe]
		t.Run(name, func(t *testing.T) {
			p := newTestPKI(t, testFarm)
			nodes, leader, victim := farmWithVictim(t, p.withTLS)
			dir := victim.cfg.DataDir
			if wipe {
				dir = t.TempDir()
			}
			old := raft.ServerAddress(victim.RaftAddr())
			cfg := restartConfig(victim, leader, "127.0.0.1:0", dir)
			victim.crash()
			moved := startNode(t, cfg)
			if wipe {
				select {
				case <-moved.Failed():
				case <-time.After(15 * time.Second):
					t.Fatal("the wiped voter at a new address did not stop")
				}
				if !errors.Is(moved.Err(), ErrWipedVoter) {
					t.Fatalf("Err() = %v, want ErrWipedVoter", moved.Err())
				}
				l := waitSingleServer(t, without(nodes, victim), 10*time.Second)
				servers, _ := l.refreshConfiguration()
				for _, s := range servers {
					if string(s.ID) == cfg.NodeName && s.Address != old {
						t.Fatalf("the voter was moved to %s without raft state", s.Address)
					}
				}
				return
			}
			eventually(t, 20*time.Second, "the voter follows to its new address", func() bool {
				l := waitSingleServer(t, append(without(nodes, victim), moved), 10*time.Second)
				servers, _ := l.refreshConfiguration()
				for _, s := range servers {
					if string(s.ID) == cfg.NodeName {
						return s.Address == raft.ServerAddress(moved.RaftAddr())
					}
				}
				return false
			})
		})
	}
}

// A node that started empty takes the leader's state message for proof
// that its empty state is genuine only when the message lists it outside
// the voters; before any message it vouches for nothing. (A message that
// lists it is TestWipedVoterStops's case.)
func TestCheckWipedVerifiesOnlyOutsideNodes(t *testing.T) {
	tests := []struct {
		name      string
		delivered *delivery
		verified  bool
	}{
		{name: "no state message yet"},
		{name: "outside the voters", delivered: &delivery{leader: "n2", voters: []string{"n2", "n3"}}, verified: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Cluster{cfg: Config{NodeName: "n1"}, logger: hclog.NewNullLogger(), failed: make(chan struct{})}
			c.bootstrapped.Store(true)
			if tt.delivered != nil {
				c.delivered.Store(tt.delivered)
			}
			c.checkWiped()
			if got := c.verifiedState(); got != tt.verified {
				t.Errorf("verified = %v, want %v", got, tt.verified)
			}
			if err := c.Err(); err != nil {
				t.Errorf("Err() = %v, want nil", err)
			}
		})
	}
}
