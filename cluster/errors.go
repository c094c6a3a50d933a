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
