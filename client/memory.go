package client

import (
	"net/netip"
	"time"
)

// maxRemembered bounds how many servers the memory keeps of each kind, so a
// hostile balancer naming endless backups cannot grow it without limit.
const maxRemembered = 64

// lostMark records why and when a server was put on the loop guard's list.
type lostMark struct {
	at time.Time
	// dead is true for a server declared dead, false for one that was
	// draining: only a dead one is named in USHER-LOST-SERVER again.
	dead bool
}

// memory is the loop guard's knowledge: servers lost recently, and servers
// heard of recently (assigned or named as backups), each forgotten after
// window. It is pure: the caller passes the time.
type memory struct {
	window time.Duration
	lost   map[netip.AddrPort]lostMark
	seen   map[netip.AddrPort]time.Time
}

func newMemory(window time.Duration) *memory {
	return &memory{
		window: window,
		lost:   make(map[netip.AddrPort]lostMark),
		seen:   make(map[netip.AddrPort]time.Time),
	}
}

// markLost puts ap on the guard list as of now.
func (g *memory) markLost(ap netip.AddrPort, now time.Time, dead bool) {
	g.prune(now)
	if _, ok := g.lost[ap]; !ok && len(g.lost) >= maxRemembered {
		evictOldest(g.lost, func(m lostMark) time.Time { return m.at })
	}
	g.lost[ap] = lostMark{at: now, dead: dead}
}

// forgive takes ap off the guard list (it was accepted again).
func (g *memory) forgive(ap netip.AddrPort) { delete(g.lost, ap) }

// markSeen records that ap was heard of as of now.
func (g *memory) markSeen(ap netip.AddrPort, now time.Time) {
	if !ap.IsValid() {
		return
	}
	g.prune(now)
	if _, ok := g.seen[ap]; !ok && len(g.seen) >= maxRemembered {
		evictOldest(g.seen, func(t time.Time) time.Time { return t })
	}
	g.seen[ap] = now
}

// lostAt reports whether ap was lost within the window before now, and how.
func (g *memory) lostAt(ap netip.AddrPort, now time.Time) (lostMark, bool) {
	m, ok := g.lost[ap]
	if !ok || now.Sub(m.at) >= g.window {
		return lostMark{}, false
	}
	return m, true
}

// hasAlternative reports whether a server other than ap, heard of within
// the window and not lost within it, is known.
func (g *memory) hasAlternative(ap netip.AddrPort, now time.Time) bool {
	for s, at := range g.seen {
		if s == ap || now.Sub(at) >= g.window {
			continue
		}
		if _, lost := g.lostAt(s, now); !lost {
			return true
		}
	}
	return false
}

// refuse reports whether the loop guard refuses a redirect to ap at now:
// ap was lost within the window and another server is known.
func (g *memory) refuse(ap netip.AddrPort, now time.Time) bool {
	_, lost := g.lostAt(ap, now)
	return lost && g.hasAlternative(ap, now)
}

// prune forgets entries older than the window.
func (g *memory) prune(now time.Time) {
	for s, m := range g.lost {
		if now.Sub(m.at) >= g.window {
			delete(g.lost, s)
		}
	}
	for s, at := range g.seen {
		if now.Sub(at) >= g.window {
			delete(g.seen, s)
		}
	}
}

// evictOldest deletes the entry of m with the earliest time.
func evictOldest[V any](m map[netip.AddrPort]V, at func(V) time.Time) {
	var (
		victim netip.AddrPort
		oldest time.Time
		first  = true
	)
	for k, v := range m {
		if t := at(v); first || t.Before(oldest) {
			victim, oldest, first = k, t, false
		}
	}
	delete(m, victim)
}
