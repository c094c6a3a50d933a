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
// mutex guards the maps and atomics hold the counts so that Len never waits.
//
// The table counts at most max sessions in all and at most perSource from
// one source (see sourceOf); 0 leaves either unbounded. A session it would
// count beyond either is refused, never counted.
type sessionTable struct {
	ttl       time.Duration
	max       int
	perSource int

	mu      sync.Mutex
	m       map[wire.SessionID]session
	sources map[netip.Prefix]int // live sessions by sourceOf their client

	n        atomic.Int64  // len(m)
	accepted atomic.Uint64 // sessions ever created
	expired  atomic.Uint64 // sessions ever expired
}

// newSessionTable returns an empty table whose sessions expire after ttl
// without a keepalive, counting at most max sessions and perSource from one
// source (0: unbounded).
func newSessionTable(ttl time.Duration, max, perSource int) *sessionTable {
	return &sessionTable{
		ttl: ttl, max: max, perSource: perSource,
		m:       make(map[wire.SessionID]session),
		sources: make(map[netip.Prefix]int),
	}
}

// sourceOf is the source a client's sessions are counted under: its IPv4
// address, or the /56 of its IPv6 address. A ticket binds a session to the
// client address it was issued to, and the leader sends the ticket to that
// address only, so each source's sessions cost its owner a reachable
// address. An IPv4 address is scarce and is already what a NAT shares among
// its users; a wider IPv4 prefix would lump unrelated customers of one
// provider together. An IPv6 host gets a whole /64 and a site usually a
// /56, every address of which it can receive on, so one address would
// bound nothing.
func sourceOf(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(56) // cannot fail for an IPv6 address
	return p
}

// refusal says why the table refused to count a session.
type refusal uint8

const (
	refusedNone   refusal = iota
	refusedSource         // the client's source holds perSource sessions
	refusedTotal          // the table holds max sessions
)

// lookup returns the session's client address and whether it exists.
func (t *sessionTable) lookup(id wire.SessionID) (netip.AddrPort, bool) {
	t.mu.Lock()
	s, ok := t.m[id]
	t.mu.Unlock()
	return s.client, ok
}

// touch records a keepalive for id from client at now, creating the session
// if it is new, and reports whether it was created. A new session, or one
// that moves to a new source, beyond the table's caps is refused: it is not
// recorded, and a moved session stays as it was.
func (t *sessionTable) touch(id wire.SessionID, client netip.AddrPort, ticketed bool, now time.Time) (bool, refusal) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.m[id]
	if !ok && t.max > 0 && len(t.m) >= t.max {
		return false, refusedTotal
	}
	if src := sourceOf(client.Addr()); !ok || sourceOf(s.client.Addr()) != src {
		if t.perSource > 0 && t.sources[src] >= t.perSource {
			return false, refusedSource
		}
		if ok {
			t.forget(s.client)
		}
		t.sources[src]++
	}
	if !ok {
		s = session{created: now}
		t.accepted.Add(1)
	}
	s.client = client
	s.lastSeen = now
	s.ticketed = s.ticketed || ticketed
	t.m[id] = s
	t.n.Store(int64(len(t.m)))
	return !ok, refusedNone
}

// forget takes a session of client off its source's count; t.mu is held.
func (t *sessionTable) forget(client netip.AddrPort) {
	src := sourceOf(client.Addr())
	if t.sources[src] <= 1 {
		delete(t.sources, src)
		return
	}
	t.sources[src]--
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
			t.forget(s.client)
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
