package cluster

import (
	"encoding/binary"
	"errors"
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
//	flags (1: 1 drained, 2 capacity set) | capacity (4) |
//	voter count (1) | (name length (1) | voter name)... |
//	leader name length (1) | leader name | term (8) |
//	secret format (1: 0 clear, 1 sealed) | secret length (2) | secret |
//	signature trailer (sign.go; with Config.TLS only)
//
// The secret holds the ticket key (seal.go). With Config.TLS it is sealed
// to the recipient's certificate key and the message is signed by the
// leader it names; the recipient takes it only if the signature verifies
// under that leader's certificate, the secret opens with its own key, and
// the leader is the one its last fresh state message named or one of the
// voters that message named (so another node of the farm cannot take
// over a member it does not lead). A member whose certificate the leader
// does not know yet gets no state message until it does. Without
// Config.TLS the secret travels in clear, unsigned.
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

// Secret formats of a state message.
const (
	secretClear  = 0
	secretSealed = 1
)

// stateResend is how often the leader repeats a member's state message: a
// lost packet, or a member that joined between two changes, waits at most
// this long.
const stateResend = time.Second

// sealFunc seals a state message's secret entries, bound to aad.
type sealFunc func(plain, aad []byte) ([]byte, error)

// appendStateMsg appends to dst the state message for node name taken from
// st, naming voters and the leader of term, its secret sealed by seal or,
// when seal is nil, in clear. It appends no signature.
func appendStateMsg(dst []byte, name string, st *State, voters []string, leader string, term uint64, seal sealFunc) ([]byte, error) {
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
	start := len(dst)
	dst = append(dst, msgState, byte(len(name)))
	dst = append(dst, name...)
	dst = binary.BigEndian.AppendUint64(dst, st.Index)
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
	dst = binary.BigEndian.AppendUint64(dst, term)
	secret := appendSecrets(nil, st)
	if seal == nil {
		dst = append(dst, secretClear)
	} else {
		dst = append(dst, secretSealed)
		var err error
		if secret, err = seal(secret, dst[start:]); err != nil {
			return dst, err
		}
	}
	if len(secret) > 0xffff {
		return dst, fmt.Errorf("secret of %d bytes", len(secret))
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(secret)))
	return append(dst, secret...), nil
}

// delivery is a state message as received.
type delivery struct {
	state  State
	voters []string
	leader string
	term   uint64
	at     time.Duration // Monotonic() at receipt
}

// stateMsg is a parsed state message, its secret still as sent.
type stateMsg struct {
	name    string
	d       delivery // without the secret entries
	sealed  bool
	secret  []byte
	header  []byte // the clear part, from kind to secret format: a sealed secret's additional data
	body    []byte // the message without its trailer: what the trailer signs
	trailer []byte
}

// parseStateMsg parses a state message up to its trailer, which it
// returns unchecked.
func parseStateMsg(b []byte) (stateMsg, error) {
	d := decoder{b: b}
	if kind := d.byte(); d.err == nil && kind != msgState {
		return stateMsg{}, fmt.Errorf("%w: not a state message", ErrBadReport)
	}
	name := string(d.bytes(int(d.byte())))
	index := d.uint64()
	flags := d.byte()
	capacity := d.uint32()
	var voters []string
	for n := int(d.byte()); n > 0 && d.err == nil; n-- {
		v := d.bytes(int(d.byte()))
		if d.err == nil && len(v) == 0 {
			return stateMsg{}, fmt.Errorf("%w: empty voter name in a state message", ErrBadReport)
		}
		voters = append(voters, string(v))
	}
	leader := string(d.bytes(int(d.byte())))
	term := d.uint64()
	format := d.byte()
	headerLen := len(b) - len(d.b)
	secret := d.bytes(int(d.uint16()))
	switch {
	case d.err != nil:
		return stateMsg{}, d.err
	case name == "" || leader == "":
		return stateMsg{}, fmt.Errorf("%w: state message without a name", ErrBadReport)
	case flags&^(stateDrained|stateCapacitySet) != 0:
		return stateMsg{}, fmt.Errorf("%w: unknown state flags %#x", ErrBadReport, flags)
	case flags&stateCapacitySet == 0 && capacity != 0:
		return stateMsg{}, fmt.Errorf("%w: capacity without its flag in a state message", ErrBadReport)
	case len(voters) > maxStateVoters:
		return stateMsg{}, fmt.Errorf("%w: %d voters in a state message", ErrBadReport, len(voters))
	case format != secretClear && format != secretSealed:
		return stateMsg{}, fmt.Errorf("%w: secret format %d", ErrBadReport, format)
	}
	st := State{Index: index}
	if flags&stateDrained != 0 {
		st.Drained = map[string]bool{name: true}
	}
	if flags&stateCapacitySet != 0 {
		st.Capacity = map[string]uint32{name: capacity}
	}
	bodyLen := len(b) - len(d.b)
	return stateMsg{
		name:    name,
		d:       delivery{state: st, voters: voters, leader: leader, term: term},
		sealed:  format == secretSealed,
		secret:  secret,
		header:  b[:headerLen],
		body:    b[:bodyLen],
		trailer: d.b,
	}, nil
}

// decodeStateMsg parses an unsigned state message with its secret in
// clear into the node name it is for and what it carries for that node.
func decodeStateMsg(b []byte) (string, delivery, error) {
	m, err := parseStateMsg(b)
	switch {
	case err != nil:
		return "", delivery{}, err
	case len(m.trailer) != 0:
		return "", delivery{}, fmt.Errorf("%w: %d trailing bytes in a state message", ErrBadReport, len(m.trailer))
	case m.sealed:
		return "", delivery{}, fmt.Errorf("%w: sealed secret in an unsigned state message", ErrBadReport)
	}
	if err := decodeSecrets(m.secret, &m.d.state); err != nil {
		return "", delivery{}, err
	}
	return m.name, m.d, nil
}

// takeState is the member table's callback for a state message: it keeps
// the newest one addressed to this node, if it is authentic (Config.TLS).
func (c *Cluster) takeState(b []byte) {
	var (
		name string
		d    delivery
		err  error
	)
	if c.auth == nil {
		name, d, err = decodeStateMsg(b)
	} else {
		name, d, err = c.openStateMsg(b)
	}
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

// openStateMsg checks a signed, sealed state message (Config.TLS) and
// opens its secret. Failures are counted as unauthenticated gossip.
func (c *Cluster) openStateMsg(b []byte) (string, delivery, error) {
	m, err := parseStateMsg(b)
	if err != nil || m.name != c.cfg.NodeName {
		return "", delivery{}, fmt.Errorf("%w: not a state message for this node", ErrBadReport)
	}
	if !m.sealed {
		err := fmt.Errorf("%w: state message with its secret in clear", errUnauthenticated)
		c.auth.drop(m.d.leader, err)
		return "", delivery{}, err
	}
	if _, err := c.auth.verify(sigState, m.d.leader, m.body, m.trailer); err != nil {
		return "", delivery{}, err
	}
	if old := c.freshDelivery(); old != nil && old.leader != m.d.leader && !slices.Contains(old.voters, m.d.leader) {
		err := fmt.Errorf("%w: state message from %q, neither the leader nor a voter", errUnauthenticated, m.d.leader)
		c.auth.drop(m.d.leader, err)
		return "", delivery{}, err
	}
	plain, err := openSealed(m.secret, m.header, c.auth.key())
	if err == nil {
		err = decodeSecrets(plain, &m.d.state)
	}
	if err != nil {
		err = fmt.Errorf("%w: %w", errUnauthenticated, err)
		c.auth.drop(m.d.leader, err)
		return "", delivery{}, err
	}
	return m.name, m.d, nil
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
	pushed := 0
	for _, e := range members {
		if e.status != Alive || configured[e.name] || e.name == c.cfg.NodeName || !e.gossip.IsValid() {
			continue
		}
		last, ok := m.stateSent[e.name]
		if ok && last.index == st.Index && now.Sub(last.at) < stateResend {
			continue
		}
		var err error
		if m.stateMsg, err = c.encodeStateMsg(m.stateMsg[:0], e.name, st, voters, term); err != nil {
			if !errors.Is(err, errUnknownKey) {
				c.logger.Error("encoding a state message", "member", e.name, "error", err)
			}
			continue
		}
		if !ok && c.auth != nil && pushed < certPushesPerRound {
			// The member needs this node's certificate to open the
			// message. Queued ahead of it, it usually arrives first; a
			// member that asks anyway within certAnswerEvery is not
			// answered again and costs no answer budget, which a new
			// leader's members would otherwise all spend at once.
			c.auth.push(e.name)
			pushed++
		}
		n := memberlist.Node{Name: e.name, Addr: e.gossip.Addr().AsSlice(), Port: e.gossip.Port()}
		if err := c.ml.SendBestEffort(&n, m.stateMsg); err != nil {
			c.logger.Trace("sending state", "to", e.name, "error", err)
			continue
		}
		m.stateSent[e.name] = stateSent{index: st.Index, at: now}
	}
}

// certPushesPerRound bounds the certificates the leader pushes to members
// it sends a first state message to, per maintenance round (a second):
// the authenticator's queue holds authJobs, and the members left out ask.
const certPushesPerRound = 16

// encodeStateMsg appends the state message for member name to dst: with
// Config.TLS sealed to the member's certificate key and signed, which
// fails with errUnknownKey (and asks for the certificate) while the
// member's key is not known.
func (c *Cluster) encodeStateMsg(dst []byte, name string, st *State, voters []string, term uint64) ([]byte, error) {
	if c.auth == nil {
		return appendStateMsg(dst, name, st, voters, c.cfg.NodeName, term, nil)
	}
	to, ok := c.auth.activeCert(name)
	if !ok {
		c.auth.ask(name)
		return dst, errUnknownKey
	}
	seal := func(plain, aad []byte) ([]byte, error) { return sealTo(plain, aad, to) }
	dst, err := appendStateMsg(dst, name, st, voters, c.cfg.NodeName, term, seal)
	if err != nil {
		return dst, err
	}
	return c.auth.key().sign(dst, sigState, c.cfg.NodeName)
}

// stateSent records the last state message sent to a member.
type stateSent struct {
	index uint64
	at    time.Time
}
