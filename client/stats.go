package client

import (
	"sync/atomic"
	"time"
)

// Stats counts what a session did since Dial. No field ever decreases.
type Stats struct {
	// ProbesSent counts probe transmissions, retransmissions included.
	ProbesSent uint64
	// ProbeRounds counts probe transactions started.
	ProbeRounds uint64
	// FailedRounds counts probe rounds that ended without an accepted
	// assignment (silence, an error answer or a guarded redirect).
	FailedRounds uint64
	// KeepalivesSent counts keepalives sent to the assigned server.
	KeepalivesSent uint64
	// KeepalivesAnswered counts success answers to them.
	KeepalivesAnswered uint64
	// BackupKeepalivesSent counts keepalives sent to backup servers.
	BackupKeepalivesSent uint64
	// Reassignments counts accepted redirects after the first.
	Reassignments uint64
	// BackupsUsed counts moves to a backup server.
	BackupsUsed uint64
	// Lost counts servers declared dead or that refused the session.
	Lost uint64
	// Drains counts drain notices acted upon.
	Drains uint64
	// Guarded counts redirects refused by the loop guard.
	Guarded uint64
	// Overloaded counts probe rounds the balancer answered with a server
	// error (no server available); they count as failed rounds too.
	Overloaded uint64
	// StaleAnswers counts answers dropped for an older USHER-TERM.
	StaleAnswers uint64
	// Malformed counts datagrams that were not a well-formed STUN answer.
	Malformed uint64
	// Unmatched counts well-formed answers matching no transaction in
	// progress (late, duplicate, from the wrong source, or unexpected).
	Unmatched uint64
	// SendErrors counts datagrams the socket failed to send.
	SendErrors uint64
	// EventsDropped counts events dropped because the channel was full.
	EventsDropped uint64
	// MaxKeepaliveGap is the longest time the session went without
	// evidence of a live server (an accepted assignment or an answered
	// keepalive) since it was first assigned: the worst interruption
	// seen, failovers included.
	MaxKeepaliveGap time.Duration
}

// counters is the live, concurrently readable form of Stats.
type counters struct {
	probesSent, probeRounds, failedRounds    atomic.Uint64
	kaSent, kaAnswered, backupKASent         atomic.Uint64
	reassignments, backupsUsed, lost, drains atomic.Uint64
	guarded, stale, malformed, unmatched     atomic.Uint64
	overloaded                               atomic.Uint64
	sendErrors, eventsDropped                atomic.Uint64
	maxGap                                   atomic.Int64
}

// snapshot returns the counters' current values.
func (c *counters) snapshot() Stats {
	return Stats{
		ProbesSent:           c.probesSent.Load(),
		ProbeRounds:          c.probeRounds.Load(),
		FailedRounds:         c.failedRounds.Load(),
		KeepalivesSent:       c.kaSent.Load(),
		KeepalivesAnswered:   c.kaAnswered.Load(),
		BackupKeepalivesSent: c.backupKASent.Load(),
		Reassignments:        c.reassignments.Load(),
		BackupsUsed:          c.backupsUsed.Load(),
		Lost:                 c.lost.Load(),
		Drains:               c.drains.Load(),
		Guarded:              c.guarded.Load(),
		Overloaded:           c.overloaded.Load(),
		StaleAnswers:         c.stale.Load(),
		Malformed:            c.malformed.Load(),
		Unmatched:            c.unmatched.Load(),
		SendErrors:           c.sendErrors.Load(),
		EventsDropped:        c.eventsDropped.Load(),
		MaxKeepaliveGap:      time.Duration(c.maxGap.Load()),
	}
}

// noteGap raises the recorded maximum gap to d if d is larger.
func (c *counters) noteGap(d time.Duration) {
	for {
		cur := c.maxGap.Load()
		if int64(d) <= cur || c.maxGap.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}
