package cluster

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
)

// Members outside the raft configuration (everyone but the voters and a
// few standbys, see reconcile) do not follow the raft log, yet each needs
// three things from it: the farm's ticket key, to check the tickets its
// clients present; its own operator drain and capacity override; and who
// the voters are, to send them its reports. The leader sends each of them
// exactly that, in a state message (a memberlist packet, like a report
// message), whenever the state changes and every stateResend:
//
//	kind (1 byte, msgState) | name length (1) | name | index (8) |
//	key length (1) | ticket key | flags (1: 1 drained, 2 capacity set) |
//	capacity (4) | voter count (1) | (name length (1) | voter name)... |
//	leader name length (1) | leader name | term (8)
//
// index is the raft index of the last command the leader's state machine
// applied (State.Index). A member keeps the newest message addressed to it
// (highest index; the latest of equal ones, for the voters and the
// leader); State returns its state in place of the member's own, older,
// state machine (see Cluster.State), and while messages keep coming (the
// leader sends them only to members outside its configuration) they say
// who the voters are, whom the member reports to, and who leads in which
// term (Leader, Members, Stats).
const msgState = 2

// maxStateVoters bounds the voters a state message names.
const maxStateVoters = 16

// State message flags.
const (
	stateDrained     = 1 << 0
	stateCapacitySet = 1 << 1
)

// stateResend is how often the leader repeats a member's state message: a
// lost packet, or a member that joined between two changes, waits at most
// this long.
const stateResend = time.Second

// appendStateMsg appends to dst the state message for node name taken from
// st, naming voters and the leader of term.
func appendStateMsg(dst []byte, name string, st *State, voters []string, leader string, term uint64) ([]byte, error) {
	if len(leader) == 0 || len(leader) > maxNodeNameLen {
		return dst, fmt.Errorf("leader name of %d bytes", len(leader))
	}
	if len(voters) > maxStateVoters {
		return dst, fmt.Errorf("%d voters", len(voters))
	}
	if len(name) == 0 || len(name) > maxNodeNameLen {
		return dst, fmt.Errorf("node name of %d bytes", len(name))
	}
	if len(st.TicketKey) > 255 {
		return dst, fmt.Errorf("ticket key of %d bytes", len(st.TicketKey))
	}
	dst = append(dst, msgState, byte(len(name)))
	dst = append(dst, name...)
	dst = binary.BigEndian.AppendUint64(dst, st.Index)
	dst = append(dst, byte(len(st.TicketKey)))
	dst = append(dst, st.TicketKey...)
	var flags byte
	if st.Drained[name] {
		flags |= stateDrained
	}
	capacity, ok := st.Capacity[name]
	if ok {
		flags |= stateCapacitySet
	}
	dst = append(dst, flags)
	dst = binary.BigEndian.AppendUint32(dst, capacity)
	dst = append(dst, byte(len(voters)))
	for _, v := range voters {
		if len(v) == 0 || len(v) > maxNodeNameLen {
			return dst, fmt.Errorf("voter name of %d bytes", len(v))
		}
		dst = append(dst, byte(len(v)))
		dst = append(dst, v...)
	}
	dst = append(dst, byte(len(leader)))
	dst = append(dst, leader...)
	return binary.BigEndian.AppendUint64(dst, term), nil
}

// delivery is a state message as received.
type delivery struct {
	state  State
	voters []string
	leader string
	term   uint64
	at     time.Duration // Monotonic() at receipt
}

// decodeStateMsg parses a state message into the node name it is for and
// what it carries for that node.
func decodeStateMsg(b []byte) (string, delivery, error) {
	d := decoder{b: b}
	if kind := d.byte(); d.err == nil && kind != msgState {
		return "", delivery{}, fmt.Errorf("%w: not a state message", ErrBadReport)
	}
	name := string(d.bytes(int(d.byte())))
	index := d.uint64()
	key := d.bytes(int(d.byte()))
	flags := d.byte()
	capacity := d.uint32()
	var voters []string
	for n := int(d.byte()); n > 0 && d.err == nil; n-- {
		v := d.bytes(int(d.byte()))
		if d.err == nil && len(v) == 0 {
			return "", delivery{}, fmt.Errorf("%w: empty voter name in a state message", ErrBadReport)
		}
		voters = append(voters, string(v))
	}
	leader := string(d.bytes(int(d.byte())))
	term := d.uint64()
	switch {
	case d.err != nil:
		return "", delivery{}, d.err
	case len(d.b) != 0:
		return "", delivery{}, fmt.Errorf("%w: %d trailing bytes in a state message", ErrBadReport, len(d.b))
	case name == "" || leader == "":
		return "", delivery{}, fmt.Errorf("%w: state message without a name", ErrBadReport)
	case flags&^(stateDrained|stateCapacitySet) != 0:
		return "", delivery{}, fmt.Errorf("%w: unknown state flags %#x", ErrBadReport, flags)
	case flags&stateCapacitySet == 0 && capacity != 0:
		return "", delivery{}, fmt.Errorf("%w: capacity without its flag in a state message", ErrBadReport)
	case len(voters) > maxStateVoters:
		return "", delivery{}, fmt.Errorf("%w: %d voters in a state message", ErrBadReport, len(voters))
	}
	st := State{Index: index}
	if len(key) > 0 {
		st.TicketKey = append([]byte(nil), key...)
	}
	if flags&stateDrained != 0 {
		st.Drained = map[string]bool{name: true}
	}
	if flags&stateCapacitySet != 0 {
		st.Capacity = map[string]uint32{name: capacity}
	}
	return name, delivery{state: st, voters: voters, leader: leader, term: term}, nil
}

// takeState is the member table's callback for a state message: it keeps
// the newest one addressed to this node.
func (c *Cluster) takeState(b []byte) {
	name, d, err := decodeStateMsg(b)
	if err != nil || name != c.cfg.NodeName {
		return
	}
	d.at = Monotonic()
	for {
		old := c.delivered.Load()
		if old != nil && (old.state.Index > d.state.Index || old.term > d.term) {
			return
		}
		if c.delivered.CompareAndSwap(old, &d) {
			if old == nil || old.state.Index != d.state.Index || old.leader != d.leader || !slices.Equal(old.voters, d.voters) {
				c.notifyUpdate()
			}
			return
		}
	}
}

// freshDelivery returns the last state message if it is recent (the leader
// sends them only to members outside its configuration, every
// stateResend), and nil otherwise.
func (c *Cluster) freshDelivery() *delivery {
	d := c.delivered.Load()
	if d == nil || Monotonic()-d.at > 3*stateResend {
		return nil
	}
	return d
}

// sendState sends, on the leader, each alive member outside the raft
// configuration its state message, if it changed since the last one sent
// to that member or stateResend has passed.
func (c *Cluster) sendState(m *maintenance, servers []raft.Server) {
	st := c.fsm.state.Load()
	term := c.raft.CurrentTerm()
	configured := make(map[string]bool, len(servers))
	var voters []string
	for _, s := range servers {
		configured[string(s.ID)] = true
		if s.Suffrage == raft.Voter && len(voters) < maxStateVoters {
			voters = append(voters, string(s.ID))
		}
	}
	now := time.Now()
	members := c.members.snapshot()
	known := make(map[string]bool, len(members))
	for _, e := range members {
		known[e.name] = true
	}
	for name := range m.stateSent {
		if !known[name] {
			delete(m.stateSent, name) // a member the table forgot
		}
	}
	for _, e := range members {
		if e.status != Alive || configured[e.name] || e.name == c.cfg.NodeName || !e.gossip.IsValid() {
			continue
		}
		last, ok := m.stateSent[e.name]
		if ok && last.index == st.Index && now.Sub(last.at) < stateResend {
			continue
		}
		var err error
		if m.stateMsg, err = appendStateMsg(m.stateMsg[:0], e.name, st, voters, c.cfg.NodeName, term); err != nil {
			c.logger.Error("encoding a state message", "member", e.name, "error", err)
			continue
		}
		n := memberlist.Node{Name: e.name, Addr: e.gossip.Addr().AsSlice(), Port: e.gossip.Port()}
		if err := c.ml.SendBestEffort(&n, m.stateMsg); err != nil {
			c.logger.Trace("sending state", "to", e.name, "error", err)
			continue
		}
		m.stateSent[e.name] = stateSent{index: st.Index, at: now}
	}
}

// stateSent records the last state message sent to a member.
type stateSent struct {
	index uint64
	at    time.Time
}
