package cluster

import (
	"errors"
	"fmt"
)

// ErrNotLeader is wrapped by errors from operations that only the raft
// leader can perform. The error is a *NotLeaderError naming the leader, so the
// HTTP layer can forward the request.
var ErrNotLeader = errors.New("not the raft leader")

// ErrShutdown is returned by operations on a Cluster after Shutdown.
var ErrShutdown = errors.New("cluster is shut down")

// ErrStorageDamaged is wrapped by the error New returns when this node's
// raft storage under DataDir/raft lost entries, its term or its vote, or
// cannot be read (see LogMarkFile). The error names the file and the
// recovery; the agent must not start on such storage, since a voter that
// forgot what it acknowledged can help elect a leader without a committed
// entry or vote twice in one term.
var ErrStorageDamaged = errors.New("raft storage is damaged")

// ErrWipedVoter is the error Err returns after Failed is closed on a node
// that started without raft state although the farm's leader knew it as a
// voter with raft state: its data directory was wiped or replaced, so it
// has forgotten its vote and the entries it acknowledged. The error names
// the recovery: remove the node from the raft configuration first, then
// start it with an empty data directory.
var ErrWipedVoter = errors.New("this node lost its raft state but the farm still lists it as a voter")

// NotLeaderError is returned by SetDrain and SetCapacity on a node that is
// not the leader. It wraps ErrNotLeader.
type NotLeaderError struct {
	// Leader is the leader's node name, empty if none is known.
	Leader string
}

// Error implements error.
func (e *NotLeaderError) Error() string {
	if e.Leader == "" {
		return fmt.Sprintf("%v (no leader known)", ErrNotLeader)
	}
	return fmt.Sprintf("%v (leader is %q)", ErrNotLeader, e.Leader)
}

// Unwrap returns ErrNotLeader.
func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }
