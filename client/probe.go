package client

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/pion/stun/v3"
	"github.com/usherlb/usher/wire"
)

// startRound begins a probe transaction with a fresh transaction ID,
// naming lost in USHER-LOST-SERVER when it is valid.
func (m *machine) startRound(now time.Time, lost netip.AddrPort) {
	m.probing, m.inRound = true, true
	m.lost = lost
	m.probeTx = newTx()
	m.sent = 0
	m.s.stats.probeRounds.Add(1)
	m.sendProbe(now)
}

// sendProbe transmits the current probe (again) and arms the
// retransmission timer: RTO after the first transmission, doubling after
// each one, jittered.
func (m *machine) sendProbe(now time.Time) {
	p := wire.Probe{
		TxID:       m.probeTx,
		Session:    m.s.id,
		Service:    m.opts.Service,
		LostServer: m.lost,
		PadTo:      wire.ProbeSize,
	}
	b, err := m.enc.AppendProbe(m.out[:0], &p)
	if err != nil {
		// Options were validated, so this is a bug; keep the timers
		// running so the session does not stall.
		m.s.log.Error("cannot encode probe", "error", err)
	} else {
		m.out = b
		m.send(m.s.balancer, b)
		m.s.stats.probesSent.Add(1)
	}
	m.sent++
	m.retransmitAt = now.Add(m.jitter(rto(m.opts.RTO, m.sent)))
}

// roundFailed ends the current round without an assignment. Dial's first
// round reports err to Dial; a later one tries the backups directly and
// backs off before the next round.
func (m *machine) roundFailed(now time.Time, err error) {
	if !m.endRound(err) {
		return
	}
	m.resumeAt = now.Add(m.jitter(backoff(m.opts.ReprobeBackoff, m.failures)))
	m.emit(Failed, m.about(), err)
	m.tryBackups()
}

// roundOverloaded ends the current round on the balancer's overload
// answer oe, as roundFailed does, but waits at least the answer's
// retry-after before the next round (see overloadWait) and says so with an
// Overloaded event.
func (m *machine) roundOverloaded(now time.Time, oe *OverloadError) {
	m.s.stats.overloaded.Add(1)
	if !m.endRound(oe) {
		return
	}
	wait := overloadWait(m.rng, m.opts.Jitter, oe.RetryAfter, backoff(m.opts.ReprobeBackoff, m.failures))
	m.resumeAt = now.Add(wait)
	m.s.log.Debug("event", "kind", Overloaded, "term", m.term, "retry_after", wait)
	m.s.emit(Event{Kind: Overloaded, Server: m.about(), Term: m.term, Err: oe, RetryAfter: wait})
	m.tryBackups()
}

// endRound ends the current round without an assignment and counts the
// failure. It reports false when the round was Dial's first, whose
// outcome, err, goes to Dial.
func (m *machine) endRound(err error) bool {
	m.inRound = false
	m.s.stats.failedRounds.Add(1)
	if m.dialing {
		m.probing, m.dialing = false, false
		m.s.ready <- err
		return false
	}
	m.failures++
	return true
}

// about is the server a failed round's event is about: the lost one, or
// the current one.
func (m *machine) about() netip.AddrPort {
	if m.lost.IsValid() {
		return m.lost
	}
	return m.server
}

// probeAnswer handles the answer to the current probe, from any source.
func (m *machine) probeAnswer(p *packet, now time.Time) {
	r := &p.resp
	if r.Success || r.Code != stun.CodeTryAlternate || !r.Server.IsValid() {
		if !m.inRound {
			m.s.stats.unmatched.Add(1)
			return
		}
		if oe := overloadOf(r); oe != nil {
			m.roundOverloaded(now, oe)
			return
		}
		m.roundFailed(now, fmt.Errorf("balancer answered %s: %w", describe(r), ErrRefused))
		return
	}
	server := unmap(r.Server)
	backups := make([]netip.AddrPort, 0, r.NumBackups)
	for _, b := range r.Backups[:r.NumBackups] {
		if b = unmap(b); b.IsValid() && b != server {
			backups = append(backups, b)
			m.mem.markSeen(b, m.wall())
		}
	}
	if m.mem.refuse(server, m.wall()) {
		m.s.stats.guarded.Add(1)
		m.emit(Guarded, server, ErrLoopGuard)
		if len(backups) > 0 {
			m.backups = backups
		}
		if mark, _ := m.mem.lostAt(server, m.wall()); mark.dead {
			m.lost = server
		}
		if m.inRound {
			m.roundFailed(now, ErrLoopGuard)
		}
		return
	}
	m.accept(server, r, backups, now)
}

// accept makes server, named by the redirect r, the session's server.
func (m *machine) accept(server netip.AddrPort, r *wire.Response, backups []netip.AddrPort, now time.Time) {
	stay := m.alive && server == m.server
	m.mem.forgive(server)
	m.mem.markSeen(server, m.wall())
	m.server = server
	m.ticket = r.Ticket
	m.interval, m.deadAfter = m.opts.KeepaliveInterval, m.opts.DeadAfter
	if r.Interval > 0 {
		m.interval = r.Interval
	}
	if r.DeadAfter > 0 {
		m.deadAfter = r.DeadAfter
	}
	m.backups = backups
	m.endProbing()
	m.noteLive(now)
	m.s.publish(func(s *Session) {
		s.server = server
		s.interval, s.dead = m.interval, m.deadAfter
	})
	if stay {
		// A re-probe off a draining server led back to it: no other
		// server is available. Stay, and ask again later.
		m.drainStays++
		m.drainRetry = now.Add(m.jitter(backoff(m.opts.ReprobeBackoff, m.drainStays)))
		return
	}
	m.startKeepalive(now, true)
	if m.dialing {
		m.dialing = false
		m.emit(Assigned, server, nil)
		m.s.ready <- nil
		return
	}
	m.s.stats.reassignments.Add(1)
	m.emit(Reassigned, server, nil)
}

// endProbing stops probing after an assignment.
func (m *machine) endProbing() {
	m.probing, m.inRound = false, false
	m.failures = 0
	m.lost = netip.AddrPort{}
	m.backupTx = m.backupTx[:0]
}

// describe names the kind of a non-redirect answer for an error message.
func describe(r *wire.Response) string {
	switch {
	case r.Success:
		return "success without a redirect"
	case r.Code == stun.CodeTryAlternate:
		return "300 without a usable ALTERNATE-SERVER"
	}
	return fmt.Sprintf("error %d", int(r.Code))
}
