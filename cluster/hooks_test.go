package cluster

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// useWrapStream makes every node that New starts until t ends wrap its raft
// stream layer with wrap (see testHookWrapStream).
func useWrapStream(t testing.TB, wrap func(name string, s raft.StreamLayer) raft.StreamLayer) {
	t.Helper()
	old := testHookWrapStream
	testHookWrapStream = wrap
	t.Cleanup(func() { testHookWrapStream = old })
}

// useWALSegmentSize makes every node that New starts until t ends use
// raft-wal segments of size bytes (see testHookWALSegmentSize).
func useWALSegmentSize(t testing.TB, size int) {
	t.Helper()
	old := testHookWALSegmentSize
	testHookWALSegmentSize = size
	t.Cleanup(func() { testHookWALSegmentSize = old })
}

// useWrapLog makes every node that New starts until t ends wrap its raft
// log store with wrap (see testHookWrapLog).
func useWrapLog(t testing.TB, wrap func(name string, l raft.LogStore) raft.LogStore) {
	t.Helper()
	old := testHookWrapLog
	testHookWrapLog = wrap
	t.Cleanup(func() { testHookWrapLog = old })
}

// useWrapLeaseAck makes every node that New starts until t ends record
// its peers' accepted AppendEntries through wrap (see
// testHookWrapLeaseAck).
func useWrapLeaseAck(t testing.TB, wrap func(name string, ack func(raft.ServerID, uint64, time.Duration)) func(raft.ServerID, uint64, time.Duration)) {
	t.Helper()
	old := testHookWrapLeaseAck
	testHookWrapLeaseAck = wrap
	t.Cleanup(func() { testHookWrapLeaseAck = old })
}
