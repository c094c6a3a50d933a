//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/usherlb/usher/client"
)

// monoNow is a client clock on the Monotonic scale: an event's At.UnixNano()
// is then directly comparable with the harness's and the agents' instants.
func monoNow() time.Time { return time.Unix(0, int64(Monotonic())) }

// mono converts a monoNow time back to the Monotonic scale.
func mono(t time.Time) time.Duration { return time.Duration(t.UnixNano()) }

// chaosSession is one client session dialled from the client host, with
// every event it emitted.
type chaosSession struct {
	s     *client.Session
	first netip.AddrPort // the server of the first assignment

	mu     sync.Mutex
	events []client.Event
	gaps   []gap         // keepalive silences longer than the monitor's bound
	quiet  time.Duration // when the monitor last saw an answer
	bound  time.Duration // the monitor's bound
	done   chan struct{}
}

// gap is a span of Monotonic time without an answered keepalive.
type gap struct{ from, to time.Duration }

// monitorEvery is how often the session monitor samples keepalive counters.
const monitorEvery = 20 * time.Millisecond

// monitor samples every session's answered-keepalive counter and records
// each silence longer than bound, until stop is closed.
func monitor(ss []*chaosSession, bound time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	last := make([]uint64, len(ss))
	since := make([]time.Duration, len(ss))
	now := Monotonic()
	for i, s := range ss {
		last[i], since[i] = s.s.Stats().KeepalivesAnswered, now
		s.mu.Lock()
		s.quiet, s.bound = now, bound
		s.mu.Unlock()
	}
	t := time.NewTicker(monitorEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := Monotonic()
		for i, s := range ss {
			n := s.s.Stats().KeepalivesAnswered
			if n == last[i] {
				continue
			}
			s.mu.Lock()
			if now-since[i] > bound {
				s.gaps = append(s.gaps, gap{since[i], now})
			}
			s.quiet = now
			s.mu.Unlock()
			last[i], since[i] = n, now
		}
	}
}

// disturbedIn reports whether the session lost its server or went silent
// for longer than the monitor's bound at any time within [from, to), and
// describes how.
func (cs *chaosSession) disturbedIn(from, to time.Duration) (string, bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	gaps := cs.gaps
	if now := Monotonic(); cs.bound > 0 && now-cs.quiet > cs.bound {
		gaps = append(gaps[:len(gaps):len(gaps)], gap{cs.quiet, now})
	}
	for _, g := range gaps {
		if g.from < to && g.to > from {
			return fmt.Sprintf("no keepalive answered for %v", g.to-g.from), true
		}
	}
	for _, ev := range cs.events {
		if at := mono(ev.At); at >= from && at < to && ev.Kind == client.Lost {
			return fmt.Sprintf("lost %v", ev.Server), true
		}
	}
	return "", false
}

// openSessions dials n sessions to the VIP from the client host and
// registers their Close with the test's cleanup.
func openSessions(c *chaosCluster, n int) []*chaosSession {
	c.t.Helper()
	cl := c.topo.Client()
	vip := netip.AddrPortFrom(c.topo.VIP(), vipPort)
	var out []*chaosSession
	for range n {
		var s *client.Session
		err := cl.Do(func() (err error) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err = client.Dial(ctx, vip, client.Options{
				LocalAddr: netip.AddrPortFrom(cl.Addr, 0),
				Now:       monoNow,
				Events:    1024,
				RTO:       chaosRTO,
				Retries:   chaosRetries,
			})
			return err
		})
		if err != nil {
			c.t.Fatalf("dial session %d: %v", len(out), err)
		}
		cs := &chaosSession{s: s, first: s.Server(), done: make(chan struct{})}
		go cs.collect()
		c.t.Cleanup(cs.close)
		out = append(out, cs)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go monitor(out, c.gapBound(), stop, done)
	// Registered last, so it runs before the sessions close.
	c.t.Cleanup(func() { close(stop); <-done })
	return out
}

// The chaos sessions' probe retransmission: short rounds, so a client whose
// server died while the balancer is gone reaches its backups soon.
const (
	chaosRTO     = 100 * time.Millisecond
	chaosRetries = 4
	// probeRound is the longest a whole unanswered probe round lasts: the
	// waits after each of the chaosRetries transmissions, doubling from
	// chaosRTO, each up to 20% longer with the client's jitter.
	probeRound = chaosRTO * (1<<chaosRetries - 1) * 12 / 10
)

// gapBound is the longest keepalive silence a session on a healthy server
// may see: one interval with the client's +20% jitter, plus slack for a
// loaded two-core machine and the monitor's sampling.
func (c *chaosCluster) gapBound() time.Duration {
	return c.keepalive*12/10 + 300*time.Millisecond
}

func (cs *chaosSession) collect() {
	defer close(cs.done)
	for ev := range cs.s.Events() {
		cs.mu.Lock()
		cs.events = append(cs.events, ev)
		cs.mu.Unlock()
	}
}

// close ends the session and waits for its event collector; idempotent.
func (cs *chaosSession) close() {
	_ = cs.s.Close()
	<-cs.done
}

// eventsSince returns the session's events at or after t0.
func (cs *chaosSession) eventsSince(t0 time.Duration) []client.Event {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	var out []client.Event
	for _, ev := range cs.events {
		if mono(ev.At) >= t0 {
			out = append(out, ev)
		}
	}
	return out
}

// movedAway returns when the session was first placed on a server other
// than from at or after t0 (a Reassigned or BackupUsed event).
func (cs *chaosSession) movedAway(from netip.AddrPort, t0 time.Duration) (time.Duration, bool) {
	for _, ev := range cs.eventsSince(t0) {
		if (ev.Kind == client.Reassigned || ev.Kind == client.BackupUsed) && ev.Server != from {
			return mono(ev.At), true
		}
	}
	return 0, false
}

// waitMoved waits until every session in ss has moved away from its server
// from at or after t0, and returns each session's move instant minus t0.
func waitMoved(ss []*chaosSession, from func(*chaosSession) netip.AddrPort, t0, timeout time.Duration) ([]time.Duration, int) {
	deadline := time.Now().Add(timeout)
	for {
		var took []time.Duration
		missing := 0
		for _, s := range ss {
			if at, ok := s.movedAway(from(s), t0); ok {
				took = append(took, at-t0)
			} else {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			return took, missing
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// describeEvents lists the session's events with their Monotonic instants.
func (cs *chaosSession) describeEvents() string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	var sb strings.Builder
	for _, ev := range cs.events {
		fmt.Fprintf(&sb, "[%v %v] ", mono(ev.At), ev)
	}
	for _, g := range cs.gaps {
		fmt.Fprintf(&sb, "[gap %v-%v] ", g.from, g.to)
	}
	return sb.String()
}

// settle waits until every session in ss has had a keepalive answered
// within the last two intervals, so that the next fault starts from a
// steady state and does not inherit a recovery still under way.
func (c *chaosCluster) settle(ss []*chaosSession, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		now := Monotonic()
		unsettled := 0
		for _, s := range ss {
			s.mu.Lock()
			if s.bound == 0 || now-s.quiet > 2*c.keepalive {
				unsettled++
			}
			s.mu.Unlock()
		}
		if unsettled == 0 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%d sessions still without a live server after %v", unsettled, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
