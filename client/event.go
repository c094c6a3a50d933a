package client

import (
	"fmt"
	"net/netip"
	"time"
)

// EventKind says what happened to a session.
type EventKind uint8

// The kinds of Event.
const (
	// Assigned: Dial's first probe got a redirect; Server is the server.
	Assigned EventKind = iota + 1
	// Lost: the server stopped answering keepalives for the declare-dead
	// timeout, or refused the session (Err is then ErrRefused); Server is
	// the lost server. A re-probe follows.
	Lost
	// Reassigned: a re-probe got a redirect that was accepted; Server is
	// the new server.
	Reassigned
	// Draining: the server's keepalive answer carried USHER-DRAIN; Server
	// is the draining server. A re-probe follows at once.
	Draining
	// BackupUsed: the balancer address stayed silent and a USHER-BACKUP
	// server answered a keepalive directly; Server is that server.
	BackupUsed
	// Failed: a re-probe round ended without an acceptable assignment and
	// no backup answered; Err says why. Rounds continue after a back-off.
	Failed
	// Guarded: the loop guard refused a redirect to Server, a server lost
	// within the LoopGuard window, because other servers are known.
	Guarded
	// Overloaded: the balancer answered a probe with a server error (508
	// Insufficient Capacity, or any 5xx): the farm has no server for the
	// session now. Err is an *OverloadError; RetryAfter is how long the
	// session waits before it probes again (it tries its backups
	// meanwhile). Server is as for Failed.
	Overloaded
)

// String returns the kind's name.
func (k EventKind) String() string {
	switch k {
	case Assigned:
		return "assigned"
	case Lost:
		return "lost"
	case Reassigned:
		return "reassigned"
	case Draining:
		return "draining"
	case BackupUsed:
		return "backup-used"
	case Failed:
		return "failed"
	case Guarded:
		return "guarded"
	case Overloaded:
		return "overloaded"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is one change in a session's life, delivered on Session.Events.
type Event struct {
	// Kind says what happened.
	Kind EventKind
	// Server is the server concerned: the new one for Assigned,
	// Reassigned and BackupUsed, the old one for Lost and Draining, the
	// refused one for Guarded.
	Server netip.AddrPort
	// Term is the newest leadership term the session had seen.
	Term uint64
	// At is when it happened, by Options.Now.
	At time.Time
	// Err is the cause, for Failed and Overloaded, and for a Lost caused
	// by a refusal.
	Err error
	// RetryAfter is, for Overloaded, the wait before the next probe round:
	// the balancer's USHER-RETRY-AFTER or the re-probe back-off, whichever
	// is longer, at most MaxRetryAfter, jittered upwards.
	RetryAfter time.Duration
}

// String formats the event for logs.
func (e Event) String() string {
	s := fmt.Sprintf("%s %s term=%d", e.Kind, e.Server, e.Term)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}
