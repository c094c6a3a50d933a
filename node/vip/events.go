package vip

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/usherlb/usher/cluster"
)

// EventLog appends one JSON line per change of this node's hold on the
// balancer address to a file (the vip_events key), timed on the host's
// monotonic clock so that a test harness can lay the logs of every agent
// side by side and check that no two nodes ever served at once.
type EventLog struct {
	node   string
	offset time.Duration // system monotonic minus cluster.Monotonic

	mu sync.Mutex
	f  *os.File
}

// vipEvent is one line of the log.
type vipEvent struct {
	Node  string `json:"node"`
	Event string `json:"event"` // "acquire" or "release"
	Term  uint64 `json:"term"`
	// MonoNs is the instant serving began or ended, in nanoseconds of the
	// host's CLOCK_MONOTONIC.
	MonoNs int64 `json:"mono_ns"`
}

// OpenEventLog opens (appending) the event log at path for node.
func OpenEventLog(path, node string) (*EventLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("vip_events: %w", err)
	}
	return &EventLog{node: node, offset: systemMonotonic() - cluster.Monotonic(), f: f}, nil
}

// Record appends one event; at is on cluster.Monotonic's scale.
func (l *EventLog) Record(acquired bool, term uint64, at time.Duration) {
	ev := vipEvent{Node: l.node, Event: "release", Term: term, MonoNs: int64(at + l.offset)}
	if acquired {
		ev.Event = "acquire"
	}
	b, _ := json.Marshal(ev)
	l.mu.Lock()
	defer l.mu.Unlock()
	// Best effort: a lost line shows as a missing event to whoever reads
	// the log, and must not stop the VIP owner.
	_, _ = l.f.Write(append(b, '\n'))
}

// Close closes the log file.
func (l *EventLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
