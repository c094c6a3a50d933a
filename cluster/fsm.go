package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// State is the replicated state machine's content: the few things the farm
// must agree on. Load never goes through raft. A State returned by
// Cluster.State is shared and must not be modified.
type State struct {
	// Drained is the operator drain set: nodes that take no new sessions,
	// and, under ServiceDrainKey(node, service), one service of a node
	// that takes no new sessions for it.
	Drained map[string]bool `json:"drained,omitempty"`
	// Capacity holds operator capacity overrides by node name.
	Capacity map[string]uint32 `json:"capacity,omitempty"`
	// TicketKey is the farm's 32-byte session ticket key: the leader's
	// configured one (Config.TicketKey), or one the first leader without
	// a configured key generated.
	TicketKey []byte `json:"ticket_key,omitempty"`
	// Keyring is the farm's gossip keyring, empty until an operator first
	// changes it (see keyring.go). Never log or show it: name its keys by
	// KeyFingerprint.
	Keyring Keyring `json:"keyring,omitzero"`
	// Index is the raft index of the last command that changed the state,
	// so that of two copies the newer is known.
	Index uint64 `json:"index,omitempty"`
}

// TicketKeySize is the length of State.TicketKey.
const TicketKeySize = 32

// commandVersion is the version of the command and snapshot encodings.
const commandVersion = 1

// Command operations.
const (
	opDrain    = "drain"
	opCapacity = "capacity"
	// opTicketKey sets the ticket key once: a second proposal, racing the
	// first, is a no-op.
	opTicketKey = "ticket_key"
	// opTicketKeyRotate replaces the ticket key: only a leader whose
	// configured key differs from the farm's proposes it.
	opTicketKeyRotate = "ticket_key_rotate"
	opClearCapacity   = "clear_capacity"
	// The gossip keyring ops (keyring.go).
	opKeyringInstall = "keyring_install"
	opKeyringUse     = "keyring_use"
	opKeyringRemove  = "keyring_remove"
)

// command is one raft log entry for the FSM, encoded as small JSON.
type command struct {
	V        int    `json:"v"`
	Op       string `json:"op"`
	Node     string `json:"node,omitempty"`
	Drain    bool   `json:"drain,omitempty"`
	Capacity uint32 `json:"capacity,omitempty"`
	Key      []byte `json:"key,omitempty"`
	// Seed is the proposing leader's keyring, for a keyring op on a farm
	// whose keyring is still empty.
	Seed *Keyring `json:"seed,omitempty"`
}

// snapshotFile is the encoding of an FSM snapshot.
type snapshotFile struct {
	V     int   `json:"v"`
	State State `json:"state"`
}

// errBadCommand is wrapped by every command decoding error.
var errBadCommand = errors.New("bad fsm command")

func encodeCommand(cmd command) []byte {
	cmd.V = commandVersion
	b, err := json.Marshal(cmd)
	if err != nil {
		panic(fmt.Sprintf("cluster: encoding a command cannot fail: %v", err))
	}
	return b
}

// fsm is the raft.FSM. Raft calls Apply, Snapshot and Restore from one
// goroutine; readers load the current State through an atomic pointer, and
// every change installs a new copy.
type fsm struct {
	state    atomic.Pointer[State]
	onChange func()
}

func newFSM(onChange func()) *fsm {
	f := &fsm{onChange: onChange}
	f.state.Store(&State{})
	return f
}

// Apply implements raft.FSM. It returns nil or an error.
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	var cmd command
	if err := json.Unmarshal(l.Data, &cmd); err != nil {
		return fmt.Errorf("%w: %w", errBadCommand, err)
	}
	if cmd.V != commandVersion {
		return fmt.Errorf("%w: version %d", errBadCommand, cmd.V)
	}
	old := f.state.Load()
	next := &State{Drained: old.Drained, Capacity: old.Capacity, TicketKey: old.TicketKey, Keyring: old.Keyring, Index: l.Index}
	switch cmd.Op {
	case opDrain:
		next.Drained = maps.Clone(old.Drained)
		if next.Drained == nil {
			next.Drained = map[string]bool{}
		}
		if cmd.Drain {
			next.Drained[cmd.Node] = true
		} else {
			delete(next.Drained, cmd.Node)
		}
	case opCapacity:
		next.Capacity = maps.Clone(old.Capacity)
		if next.Capacity == nil {
			next.Capacity = map[string]uint32{}
		}
		next.Capacity[cmd.Node] = cmd.Capacity
	case opClearCapacity:
		next.Capacity = maps.Clone(old.Capacity)
		delete(next.Capacity, cmd.Node)
	case opTicketKey:
		if len(cmd.Key) != TicketKeySize {
			return fmt.Errorf("%w: ticket key of %d bytes", errBadCommand, len(cmd.Key))
		}
		if len(old.TicketKey) != 0 {
			return nil // the first key wins; a racing second proposal is a no-op
		}
		next.TicketKey = cmd.Key
	case opTicketKeyRotate:
		if len(cmd.Key) != TicketKeySize {
			return fmt.Errorf("%w: ticket key of %d bytes", errBadCommand, len(cmd.Key))
		}
		next.TicketKey = cmd.Key
	case opKeyringInstall, opKeyringUse, opKeyringRemove:
		kr, err := keyringOp(old.Keyring, cmd)
		if err != nil {
			return err
		}
		next.Keyring = kr
	default:
		return fmt.Errorf("%w: op %q", errBadCommand, cmd.Op)
	}
	f.state.Store(next)
	f.changed()
	return nil
}

func (f *fsm) changed() {
	if f.onChange != nil {
		f.onChange()
	}
}

// Snapshot implements raft.FSM. The state is immutable, so the snapshot just
// keeps the pointer.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{state: f.state.Load()}, nil
}

// Restore implements raft.FSM.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var snap snapshotFile
	if err := json.NewDecoder(rc).Decode(&snap); err != nil {
		return fmt.Errorf("decode fsm snapshot: %w", err)
	}
	if snap.V != commandVersion {
		return fmt.Errorf("decode fsm snapshot: version %d, want %d", snap.V, commandVersion)
	}
	st := snap.State
	f.state.Store(&st)
	f.changed()
	return nil
}

type fsmSnapshot struct{ state *State }

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	err := json.NewEncoder(sink).Encode(snapshotFile{V: commandVersion, State: *s.state})
	if err != nil {
		return errors.Join(fmt.Errorf("persist fsm snapshot: %w", err), sink.Cancel())
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() {}

// ServiceDrainKey is the State.Drained key of a drain of one service of a
// node: node and service joined by a slash, which no node name contains.
func ServiceDrainKey(node, service string) string { return node + "/" + service }
