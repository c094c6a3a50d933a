package cluster

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestStateMsg(t *testing.T) {
	key := bytes.Repeat([]byte{7}, TicketKeySize)
	full := &State{
		Drained:   map[string]bool{"n4": true, "other": true},
		Capacity:  map[string]uint32{"n4": 50, "other": 9},
		TicketKey: key,
		Index:     42,
	}
	tests := []struct {
		name   string
		st     *State
		node   string
		voters []string
		want   State
	}{
		{"everything", full, "n4", []string{"n1", "n2", "n3"},
			State{Drained: map[string]bool{"n4": true}, Capacity: map[string]uint32{"n4": 50}, TicketKey: key, Index: 42}},
		{"only what concerns the node", full, "n5", []string{"n1"}, State{TicketKey: key, Index: 42}},
		{"zero capacity override", &State{Capacity: map[string]uint32{"n4": 0}, Index: 3}, "n4", nil,
			State{Capacity: map[string]uint32{"n4": 0}, Index: 3}},
		{"empty", &State{}, "n4", nil, State{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := appendStateMsg([]byte("x"), tt.node, tt.st, tt.voters, "n1", 3, nil)
			if err != nil {
				t.Fatal(err)
			}
			name, d, err := decodeStateMsg(b[1:])
			if err != nil || name != tt.node {
				t.Fatalf("decodeStateMsg = %q, %v", name, err)
			}
			if !equalState(d.state, tt.want) || !slices.Equal(d.voters, tt.voters) {
				t.Fatalf("decoded %+v voters %v, want %+v voters %v", d.state, d.voters, tt.want, tt.voters)
			}
		})
	}

	good, _ := appendStateMsg(nil, "n4", full, []string{"n1"}, "n1", 3, nil)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"report kind", append([]byte{msgReport}, good[1:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing", append(slices.Clone(good), 0)},
		{"no name", []byte{msgState, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"unknown flag", func() []byte {
			b, _ := appendStateMsg(nil, "n", &State{}, nil, "l", 1, nil)
			b[len(b)-3-8-2-1-4-1] = 0x80
			return b
		}()},
		{"capacity without its flag", func() []byte {
			b, _ := appendStateMsg(nil, "n", &State{}, nil, "l", 1, nil)
			b[len(b)-3-8-2-1-1] = 9
			return b
		}()},
		{"empty voter name", func() []byte {
			b, _ := appendStateMsg(nil, "n", &State{}, nil, "l", 1, nil)
			b[len(b)-3-8-2-1] = 1
			return slices.Insert(b, len(b)-3-8-2, 0)
		}()},
	} {
		t.Run("reject "+tc.name, func(t *testing.T) {
			if _, _, err := decodeStateMsg(tc.b); !errors.Is(err, ErrBadReport) {
				t.Fatalf("decodeStateMsg(%x) = %v, want ErrBadReport", tc.b, err)
			}
		})
	}
	for _, tc := range []struct {
		name, node, leader string
		voters             []string
	}{
		{"no name", "", "n1", nil},
		{"long name", strings.Repeat("n", maxNodeNameLen+1), "n1", nil},
		{"too many voters", "n", "n1", make([]string, maxStateVoters+1)},
		{"empty voter", "n", "n1", []string{""}},
		{"no leader", "n", "", nil},
	} {
		if _, err := appendStateMsg(nil, tc.node, full, tc.voters, tc.leader, 1, nil); err == nil {
			t.Errorf("appendStateMsg %s: no error", tc.name)
		}
	}
}

func equalState(a, b State) bool {
	return a.Index == b.Index && bytes.Equal(a.TicketKey, b.TicketKey) &&
		len(a.Drained) == len(b.Drained) && len(a.Capacity) == len(b.Capacity) &&
		func() bool {
			for k, v := range a.Drained {
				if b.Drained[k] != v {
					return false
				}
			}
			for k, v := range a.Capacity {
				if w, ok := b.Capacity[k]; !ok || w != v {
					return false
				}
			}
			return true
		}()
}

func FuzzStateMsg(f *testing.F) {
	b, _ := appendStateMsg(nil, "n4", &State{TicketKey: []byte{1, 2}, Drained: map[string]bool{"n4": true}, Index: 5}, []string{"n1", "n2"}, "n1", 7, nil)
	f.Add(b)
	sealed, _ := appendStateMsg(nil, "n4", &State{Index: 5}, nil, "n1", 7, func(plain, aad []byte) ([]byte, error) { return []byte{9, 9}, nil })
	f.Add(append(sealed, 1, 2, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseStateMsg(b)
		if err != nil {
			return
		}
		// Re-encode the clear part around the secret as received.
		again, err := appendStateMsg(nil, m.name, &m.d.state, m.d.voters, m.d.leader, m.d.term,
			func([]byte, []byte) ([]byte, error) { return m.secret, nil })
		if err != nil {
			t.Fatalf("a decoded message does not encode: %v", err)
		}
		if !m.sealed {
			again[len(m.header)-1] = secretClear
		}
		if !bytes.Equal(again, m.body) || !bytes.Equal(append(again, m.trailer...), b) {
			t.Fatalf("round trip changed the message:\n%x\n%x", b, again)
		}
		if name, d, err := decodeStateMsg(b); err == nil {
			again, err := appendStateMsg(nil, name, &d.state, d.voters, d.leader, d.term, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, d2, err := decodeStateMsg(again); err != nil || !equalState(d.state, d2.state) {
				t.Fatalf("clear round trip: %v %+v %+v", err, d.state, d2.state)
			}
		}
	})
}

// TestTakeStateKeepsNewest checks that a member keeps the newest state
// message addressed to it and prefers it to an older state machine.
func TestTakeStateKeepsNewest(t *testing.T) {
	c := &Cluster{cfg: Config{NodeName: "n4"}, updates: make(chan struct{}, 1), fsm: newFSM(nil)}
	send := func(to string, index uint64, voters ...string) {
		b, err := appendStateMsg(nil, to, &State{Index: index, TicketKey: []byte{byte(index)}}, voters, "n1", 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.takeState(b)
	}
	send("n4", 5, "n1")
	send("n9", 9, "n9") // someone else's
	send("n4", 4, "old")
	if st := c.State(); st.Index != 5 {
		t.Fatalf("State().Index = %d, want 5", st.Index)
	}
	send("n4", 5, "n1", "n2") // same index: the voters may have moved
	if d := c.freshDelivery(); d == nil || !slices.Equal(d.voters, []string{"n1", "n2"}) || d.leader != "n1" || d.term != 2 {
		t.Fatalf("freshDelivery = %+v", d)
	}
	// A state machine that is newer than the delivered state wins.
	c.fsm.state.Store(&State{Index: 6})
	if st := c.State(); st.Index != 6 {
		t.Fatalf("State().Index = %d, want the state machine's 6", st.Index)
	}
}

// TestStandbys runs six voter-eligible members and one that is not, with
// three voters expected: raft holds the three voters and two standbys, and
// the members outside it still get the ticket key and their drain from the
// leader, report to the voters and know who they are.
func TestStandbys(t *testing.T) {
	nodes := startFarmWith(t, 7, 3, nil, func(c *Config) {
		if c.NodeName == "n7" {
			c.Voter = false
		}
	})
	leader := waitSingleServer(t, nodes, 15*time.Second)
	var servers []raft.Server
	eventually(t, 15*time.Second, "three voters and two standbys", func() bool {
		f := leader.raft.GetConfiguration()
		if f.Error() != nil {
			return false
		}
		servers = f.Configuration().Servers
		voters := 0
		for _, s := range servers {
			if s.Suffrage == raft.Voter {
				voters++
			}
		}
		return voters == 3 && len(servers) == 5
	})
	// It stays so.
	time.Sleep(3 * time.Second)
	if f := leader.raft.GetConfiguration(); f.Error() != nil || len(f.Configuration().Servers) != 5 {
		t.Fatalf("raft configuration moved: %v", f.Configuration().Servers)
	}
	var outside []*Cluster
	for _, c := range nodes {
		if !slices.ContainsFunc(servers, func(s raft.Server) bool { return string(s.ID) == c.Name() }) {
			outside = append(outside, c)
		}
	}
	if len(outside) != 2 || !slices.ContainsFunc(outside, func(c *Cluster) bool { return c.Name() == "n7" }) {
		t.Fatalf("outside raft: %d members, want n7 and one more", len(outside))
	}
	key := leader.State().TicketKey
	if len(key) != TicketKeySize {
		t.Fatalf("leader's ticket key: %d bytes", len(key))
	}
	voters := leader.Stats().Voters
	for _, c := range outside {
		eventually(t, 5*time.Second, "ticket key, voters and leader on "+c.Name(), func() bool {
			st := c.Stats()
			return bytes.Equal(c.State().TicketKey, key) && slices.Equal(st.Voters, voters) &&
				st.Leader == leader.Name() && st.Term == leader.Stats().Term
		})
	}
	n7 := nodeNamed(nodes, "n7")
	if err := leader.SetDrain("n7", true); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "n7 sees its drain", func() bool { return n7.State().Drained["n7"] })
	if err := leader.SetCapacity("n7", 12); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "n7 sees its capacity override", func() bool {
		c, ok := n7.State().Capacity["n7"]
		return ok && c == 12 && n7.State().Drained["n7"]
	})
	// n7's reports reach the voters straight.
	n7.SetReport(Report{Sessions: 77, Capacity: 100})
	for _, c := range nodes {
		if !slices.Contains(voters, c.Name()) {
			continue
		}
		eventually(t, 3*time.Second, "n7's load on "+c.Name(), func() bool {
			m, ok := member(c, "n7")
			return ok && m.Report.Sessions == 77
		})
	}
	if st := n7.Stats(); st.ReportsSent == 0 {
		t.Errorf("n7 sent no reports straight to the voters: %+v", st)
	}
}

// TestSurplusNonvoterRemoved adds a member to raft by hand beyond the
// standbys, as a farm from before standbys had every member in raft: the
// leader takes it out again.
func TestSurplusNonvoterRemoved(t *testing.T) {
	nodes := startFarm(t, 6, 3, nil)
	leader := waitSingleServer(t, nodes, 15*time.Second)
	eventually(t, 15*time.Second, "five servers", func() bool {
		f := leader.raft.GetConfiguration()
		return f.Error() == nil && len(f.Configuration().Servers) == 5
	})
	f := leader.raft.GetConfiguration()
	if f.Error() != nil {
		t.Fatal(f.Error())
	}
	var out *Cluster
	for _, c := range nodes {
		if !slices.ContainsFunc(f.Configuration().Servers, func(s raft.Server) bool { return string(s.ID) == c.Name() }) {
			out = c
		}
	}
	if err := leader.raft.AddNonvoter(raft.ServerID(out.Name()), raft.ServerAddress(out.RaftAddr()), 0, time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "back to five servers", func() bool {
		f := leader.raft.GetConfiguration()
		return f.Error() == nil && len(f.Configuration().Servers) == 5
	})
}
