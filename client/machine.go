package client

import (
	crand "crypto/rand"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/pion/stun/v3"
	"github.com/usherlb/usher/wire"
)

// txID is a STUN transaction ID.
type txID = [stun.TransactionIDSize]byte

// kaWindow is how many recent keepalive transactions an answer may match:
// an answer that arrives after the next keepalive went out still counts.
const kaWindow = 4

// pendingBackup is a keepalive sent straight to a backup server.
type pendingBackup struct {
	tx     txID
	server netip.AddrPort
}

// machine is the session's state machine. It runs on its own goroutine and
// owns every field; the Session only sees what it publishes.
//
// Two activities may run at once: keeping a live server alive (alive), and
// probing for a new assignment (probing), which is either in a round of
// retransmissions (inRound) or backing off until resumeAt. Both run together
// while moving off a draining server.
type machine struct {
	s    *Session
	opts *Options
	rng  *rand.Rand
	enc  wire.Encoder
	out  []byte
	mem  *memory

	// dialing is true until Dial's first round ends either way.
	dialing bool

	// The current (or last) assignment.
	server              netip.AddrPort
	ticket              []byte
	interval, deadAfter time.Duration
	term                uint64
	backups             []netip.AddrPort

	// Keepalive state, meaningful while alive.
	alive      bool
	nextKA     time.Time
	deadAt     time.Time
	kaTx       [kaWindow]txID
	kaNext     int // index in kaTx of the next keepalive's transaction
	kaCount    int // valid entries in kaTx
	lastLive   time.Time
	draining   bool
	drainRetry time.Time
	drainStays int

	// Probe state, meaningful while probing.
	probing      bool
	inRound      bool
	probeTx      txID
	lost         netip.AddrPort // named in USHER-LOST-SERVER
	sent         int            // transmissions of probeTx so far
	retransmitAt time.Time
	resumeAt     time.Time
	failures     int // consecutive failed rounds
	backupTx     []pendingBackup
}

func newMachine(s *Session) *machine {
	return &machine{
		s:         s,
		opts:      &s.opts,
		rng:       s.opts.Rand,
		out:       make([]byte, 0, 2*wire.ProbeSize),
		mem:       newMemory(s.opts.LoopGuard),
		dialing:   true,
		interval:  s.opts.KeepaliveInterval,
		deadAfter: s.opts.DeadAfter,
	}
}

// run is the state machine goroutine: it starts the first probe round and
// then reacts to answers and timers until the session is closed.
func (m *machine) run() {
	defer m.s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	m.startRound(time.Now(), netip.AddrPort{})
	for {
		if at, ok := m.nextWake(); ok {
			timer.Reset(time.Until(at))
		} else {
			timer.Stop()
		}
		select {
		case <-m.s.done:
			return
		case p := <-m.s.in:
			m.receive(&p, time.Now())
		case <-timer.C:
			m.tick(time.Now())
		}
	}
}

// nextWake returns the earliest time a timer is due, if any is armed.
func (m *machine) nextWake() (time.Time, bool) {
	var (
		at    time.Time
		armed bool
	)
	consider := func(t time.Time) {
		if !armed || t.Before(at) {
			at, armed = t, true
		}
	}
	if m.alive {
		consider(m.nextKA)
		consider(m.deadAt)
	}
	if m.probing {
		if m.inRound {
			consider(m.retransmitAt)
		} else {
			consider(m.resumeAt)
		}
	}
	return at, armed
}

// tick runs the timers that are due at now.
func (m *machine) tick(now time.Time) {
	if m.alive {
		switch {
		case !now.Before(m.deadAt):
			m.serverDead(now)
		case !now.Before(m.nextKA):
			m.sendKeepalive(now)
		}
	}
	if m.probing {
		switch {
		case m.inRound && !now.Before(m.retransmitAt):
			if m.sent < m.opts.Retries {
				m.sendProbe(now)
			} else {
				m.roundFailed(now, ErrNoAnswer)
			}
		case !m.inRound && !now.Before(m.resumeAt):
			m.startRound(now, m.lost)
		}
	}
}

// receive dispatches one answer by its transaction ID.
func (m *machine) receive(p *packet, now time.Time) {
	r := &p.resp
	if r.Method != stun.MethodBinding {
		m.s.stats.unmatched.Add(1)
		return
	}
	if r.Term != 0 && r.Term < m.term {
		m.s.stats.stale.Add(1)
		m.s.log.Debug("dropped answer with an older term", "from", p.from, "term", r.Term, "newest", m.term)
		return
	}
	switch {
	case m.probing && r.TxID == m.probeTx:
		m.noteTerm(r.Term)
		m.probeAnswer(p, now)
	case m.alive && p.from == m.server && m.isKeepaliveTx(r.TxID):
		m.keepaliveAnswer(p, now)
	case m.probing && m.backupAnswer(p, now):
	default:
		m.s.stats.unmatched.Add(1)
	}
}

// noteTerm raises the newest term seen to t.
func (m *machine) noteTerm(t uint64) {
	if t <= m.term {
		return
	}
	m.term = t
	m.s.publish(func(s *Session) { s.term = t })
}

// noteLive records evidence, at now, that the session has a live server.
func (m *machine) noteLive(now time.Time) {
	if !m.lastLive.IsZero() {
		m.s.stats.noteGap(now.Sub(m.lastLive))
	}
	m.lastLive = now
}

// emit sends an event of kind k about server.
func (m *machine) emit(k EventKind, server netip.AddrPort, err error) {
	m.s.log.Debug("event", "kind", k, "server", server, "term", m.term, "error", err)
	m.s.emit(Event{Kind: k, Server: server, Term: m.term, Err: err})
}

// wall is the loop guard's clock, Options.Now. Timers use the monotonic
// time passed around as now instead.
func (m *machine) wall() time.Time { return m.opts.Now() }

// jitter spreads d by the configured fraction.
func (m *machine) jitter(d time.Duration) time.Duration {
	return jitter(m.rng, m.opts.Jitter, d)
}

// send transmits b to dst, counting failures.
func (m *machine) send(dst netip.AddrPort, b []byte) {
	if _, err := m.s.conn.WriteToUDPAddrPort(b, dst); err != nil {
		m.s.stats.sendErrors.Add(1)
		m.s.log.Debug("send failed", "to", dst, "error", err)
	}
}

// newTx returns a fresh random transaction ID.
func newTx() txID {
	var tx txID
	crand.Read(tx[:])
	return tx
}
