package client

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/pion/stun/v3"
	"github.com/usherlb/usher/wire"
)

// startKeepalive begins keeping the current server alive, sending the first
// keepalive at once when sendNow is true.
func (m *machine) startKeepalive(now time.Time, sendNow bool) {
	m.alive = true
	m.draining = false
	m.drainStays = 0
	m.kaCount = 0
	m.deadAt = now.Add(m.deadAfter)
	if sendNow {
		m.sendKeepalive(now)
	} else {
		m.nextKA = now.Add(m.jitter(m.interval))
	}
}

// sendKeepalive sends a keepalive to the server and schedules the next one.
func (m *machine) sendKeepalive(now time.Time) {
	tx := newTx()
	m.kaTx[m.kaNext] = tx
	m.kaNext = (m.kaNext + 1) % kaWindow
	m.kaCount = min(m.kaCount+1, kaWindow)
	if m.sendKeepaliveTo(m.server, tx) {
		m.s.stats.kaSent.Add(1)
	}
	m.nextKA = now.Add(m.jitter(m.interval))
}

// sendKeepaliveTo sends a keepalive with transaction tx to dst and reports
// whether it was encoded.
func (m *machine) sendKeepaliveTo(dst netip.AddrPort, tx txID) bool {
	k := wire.Keepalive{TxID: tx, Session: m.s.id, Ticket: m.ticket, PadTo: wire.KeepaliveSize}
	b, err := m.enc.AppendKeepalive(m.out[:0], &k)
	if err != nil {
		m.s.log.Error("cannot encode keepalive", "error", err)
		return false
	}
	m.out = b
	m.send(dst, b)
	return true
}

// isKeepaliveTx reports whether tx is one of the recent keepalives.
func (m *machine) isKeepaliveTx(tx txID) bool {
	for i := range m.kaCount {
		if m.kaTx[(m.kaNext-1-i+kaWindow)%kaWindow] == tx {
			return true
		}
	}
	return false
}

// keepaliveAnswer handles the server's answer to a recent keepalive.
func (m *machine) keepaliveAnswer(p *packet, now time.Time) {
	r := &p.resp
	switch {
	case r.Success:
		m.s.stats.kaAnswered.Add(1)
		m.noteLive(now)
		m.deadAt = now.Add(m.deadAfter)
		if r.Mapped.IsValid() {
			mapped := unmap(r.Mapped)
			m.s.publish(func(s *Session) { s.mapped = mapped })
		}
		if r.Drain {
			m.onDrain(now)
		}
	case r.Code == stun.CodeUnauthorized || r.Code == stun.CodeAllocQuotaReached || r.Code == stun.CodeInsufficientCapacity:
		// The server does not accept the session (its ticket is missing,
		// wrong or expired: 401; its source or the server holds as many
		// sessions as it counts: 486, 508). It is alive, so it is not
		// named as lost nor guarded against: a fresh assignment may well be
		// to it again.
		m.alive = false
		m.s.stats.lost.Add(1)
		m.emit(Lost, m.server, fmt.Errorf("server answered %d: %w", int(r.Code), ErrRefused))
		m.startRound(now, netip.AddrPort{})
	default:
		m.s.stats.unmatched.Add(1)
	}
}

// onDrain reacts to USHER-DRAIN: the first notice raises Draining and
// re-probes at once, avoiding the server through the loop guard; if that
// led back to the same server, later notices re-probe after a back-off.
func (m *machine) onDrain(now time.Time) {
	if m.probing {
		return
	}
	if !m.draining {
		m.draining = true
		m.s.stats.drains.Add(1)
		m.emit(Draining, m.server, nil)
	} else if now.Before(m.drainRetry) {
		return
	}
	m.mem.markLost(m.server, m.wall(), false)
	m.startRound(now, netip.AddrPort{})
}

// serverDead declares the server dead: Lost, then a re-probe naming it.
func (m *machine) serverDead(now time.Time) {
	lost := m.server
	m.alive = false
	m.s.stats.lost.Add(1)
	m.mem.markLost(lost, m.wall(), true)
	m.emit(Lost, lost, nil)
	m.startRound(now, lost)
}

// maxPendingBackups bounds the backup keepalives awaiting an answer. Those of
// earlier rounds stay valid, so a slow backup's answer still counts.
const maxPendingBackups = 4 * wire.MaxBackups

// tryBackups sends a keepalive straight to every backup server from the
// last answer that is not the current or lost server nor guarded against.
// When every such backup is on the loop guard's list, it tries them anyway:
// the guard stops a client from returning to a server it lost while
// another one is known, and no other one is (a backup lost earlier may be
// back, as after a second outage). The first to answer becomes the server
// (see backupAnswer).
func (m *machine) tryBackups() {
	if m.sendBackups(false) == 0 {
		m.sendBackups(true)
	}
}

// sendBackups sends the keepalives of tryBackups, to guarded backups too
// when guarded is set, and returns how many it sent.
func (m *machine) sendBackups(guarded bool) int {
	sent := 0
	for _, b := range m.backups {
		if b == m.server || b == m.lost {
			continue
		}
		if _, lost := m.mem.lostAt(b, m.wall()); lost && !guarded {
			continue
		}
		tx := newTx()
		if m.sendKeepaliveTo(b, tx) {
			m.s.stats.backupKASent.Add(1)
			if len(m.backupTx) == maxPendingBackups {
				m.backupTx = append(m.backupTx[:0], m.backupTx[1:]...)
			}
			m.backupTx = append(m.backupTx, pendingBackup{tx: tx, server: b})
			sent++
		}
	}
	return sent
}

// backupAnswer handles an answer to a keepalive sent to a backup server and
// reports whether p was one.
func (m *machine) backupAnswer(p *packet, now time.Time) bool {
	i := -1
	for j, b := range m.backupTx {
		if b.tx == p.resp.TxID && b.server == p.from {
			i = j
			break
		}
	}
	if i < 0 {
		return false
	}
	server := m.backupTx[i].server
	if !p.resp.Success {
		m.s.log.Debug("backup refused the session", "server", server, "code", int(p.resp.Code))
		m.backupTx = append(m.backupTx[:i], m.backupTx[i+1:]...)
		return true
	}
	m.mem.forgive(server)
	m.mem.markSeen(server, m.wall())
	m.backups = swapBackup(m.backups, server, m.server)
	m.server = server
	m.endProbing()
	m.noteLive(now)
	m.startKeepalive(now, false)
	mapped := unmap(p.resp.Mapped)
	m.s.publish(func(s *Session) {
		s.server = server
		if mapped.IsValid() {
			s.mapped = mapped
		}
	})
	m.s.stats.backupsUsed.Add(1)
	m.emit(BackupUsed, server, nil)
	return true
}

// swapBackup returns backups with used, the backup that became the server,
// replaced by prev, the server it replaced: no new answer brings a fresh
// list while the balancer is silent, and prev may come back before the
// next outage. It reuses the backing array.
func swapBackup(backups []netip.AddrPort, used, prev netip.AddrPort) []netip.AddrPort {
	out := backups[:0]
	for _, b := range backups {
		if b != used && b != prev {
			out = append(out, b)
		}
	}
	if prev.IsValid() && prev != used {
		out = append(out, prev)
	}
	return out
}
