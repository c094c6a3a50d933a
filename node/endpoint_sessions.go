package node

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usherlb/usher/wire"
)

// session is one client session the endpoint serves.
type session struct {
	client   netip.AddrPort
	created  time.Time
	lastSeen time.Time
	ticketed bool // the session presented a valid ticket
}

// SessionInfo describes one session, as the HTTP API lists it.
type SessionInfo struct {
	ID       wire.SessionID
	Client   netip.AddrPort
	Created  time.Time
	LastSeen time.Time
	Ticketed bool
}

// sessionTable is the node's set of live sessions: its size is the node's
// load. The endpoint's goroutine adds and touches sessions, a sweeper expires
// them, and readers (the view loop, the API) take counts and snapshots; a
// mutex guards the map and atomics hold the counts so that Len never waits.
type sessionTable struct {
	ttl time.Duration

	mu sync.Mutex
	m  map[wire.SessionID]session

	n        atomic.Int64  // len(m)
	accepted atomic.Uint64 // sessions ever created
	expired  atomic.Uint64 // sessions ever expired
}

// newSessionTable returns an empty table whose sessions expire after ttl
// without a keepalive.
func newSessionTable(ttl time.Duration) *sessionTable {
	return &sessionTable{ttl: ttl, m: make(map[wire.SessionID]session)}
}

// lookup returns the session's client address and whether it exists.
func (t *sessionTable) lookup(id wire.SessionID) (netip.AddrPort, bool) {
	t.mu.Lock()
	s, ok := t.m[id]
	t.mu.Unlock()
	return s.client, ok
}

// touch records a keepalive for id from client at now, creating the session
// if it is new, and reports whether it was created.
func (t *sessionTable) touch(id wire.SessionID, client netip.AddrPort, ticketed bool, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.m[id]
	if !ok {
		s = session{created: now}
		t.accepted.Add(1)
	}
	s.client = client
	s.lastSeen = now
	s.ticketed = s.ticketed || ticketed
	t.m[id] = s
	t.n.Store(int64(len(t.m)))
	return !ok
}

// expire removes the sessions silent for longer than the TTL at now and
// returns how many it removed.
func (t *sessionTable) expire(now time.Time) int {
	cutoff := now.Add(-t.ttl)
	t.mu.Lock()
	defer t.mu.Unlock()
	removed := 0
	for id, s := range t.m {
		if s.lastSeen.Before(cutoff) {
			delete(t.m, id)
			removed++
		}
	}
	t.n.Store(int64(len(t.m)))
	t.expired.Add(uint64(removed))
	return removed
}

// Len returns the number of live sessions.
func (t *sessionTable) Len() int { return int(t.n.Load()) }

// Accepted returns the monotonic count of sessions ever created.
func (t *sessionTable) Accepted() uint64 { return t.accepted.Load() }

// snapshot returns every session, oldest first.
func (t *sessionTable) snapshot() []SessionInfo {
	t.mu.Lock()
	out := make([]SessionInfo, 0, len(t.m))
	for id, s := range t.m {
		out = append(out, SessionInfo{ID: id, Client: s.client, Created: s.created, LastSeen: s.lastSeen, Ticketed: s.ticketed})
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b SessionInfo) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return slices.Compare(a.ID[:], b.ID[:])
	})
	return out
}
