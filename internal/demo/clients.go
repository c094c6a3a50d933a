package demo

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usherlb/usher/client"
)

// fleet is the demo's client sessions and what their events told.
type fleet struct {
	wg      sync.WaitGroup // one event reader per session
	mu      sync.Mutex
	members []*member
}

// member is one client session and its history.
type member struct {
	s      *client.Session
	server netip.AddrPort // the server it is on, or last was on while moving
	moving bool           // lost its server and not yet reassigned
	lost   []client.Event // Lost events
	moved  []client.Event // Reassigned and BackupUsed events
}

// dialFleet opens n sessions with the balancer, 32 at a time, and starts
// reading their events. It returns the fleet and the number of dials that
// failed.
func dialFleet(ctx context.Context, balancer netip.AddrPort, n int) (*fleet, int) {
	f := &fleet{}
	var (
		wg       sync.WaitGroup
		failures atomic.Int64
		sem      = make(chan struct{}, 32)
	)
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			s, err := client.Dial(dctx, balancer, client.Options{
				LocalAddr: netip.MustParseAddrPort("127.0.0.1:0"),
				Events:    64,
			})
			if err != nil {
				failures.Add(1)
				return
			}
			f.add(s)
		}()
	}
	wg.Wait()
	return f, int(failures.Load())
}

// add records a new session and starts reading its events.
func (f *fleet) add(s *client.Session) {
	m := &member{s: s, server: s.Server()}
	f.mu.Lock()
	f.members = append(f.members, m)
	f.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for ev := range s.Events() {
			f.note(m, ev)
		}
	}()
}

// note applies one event to m.
func (f *fleet) note(m *member, ev client.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch ev.Kind {
	case client.Lost:
		m.lost = append(m.lost, ev)
		m.moving = true
	case client.Reassigned, client.BackupUsed:
		m.moved = append(m.moved, ev)
		m.server = ev.Server
		m.moving = false
	case client.Assigned:
		m.server = ev.Server
	}
}

// Close ends every session and waits for the event readers.
func (f *fleet) Close() {
	f.mu.Lock()
	ms := slices.Clone(f.members)
	f.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.s.Close()
		}()
	}
	wg.Wait()
	f.wg.Wait()
}

// size returns the number of sessions.
func (f *fleet) size() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.members)
}

// placement returns how many settled sessions each server has, and how
// many sessions are moving.
func (f *fleet) placement() (map[netip.AddrPort]int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	on := map[netip.AddrPort]int{}
	moving := 0
	for _, m := range f.members {
		if m.moving {
			moving++
			continue
		}
		on[m.server]++
	}
	return on, moving
}

// on returns the settled sessions on server.
func (f *fleet) on(server netip.AddrPort) []*member {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*member
	for _, m := range f.members {
		if !m.moving && m.server == server {
			out = append(out, m)
		}
	}
	return out
}

// movedSince returns, for each of ms that moved at or after t, how long
// after t it did, and how many have not moved yet.
func (f *fleet) movedSince(ms []*member, t time.Time) (times []time.Duration, pending int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range ms {
		i := slices.IndexFunc(m.moved, func(ev client.Event) bool { return !ev.At.Before(t) })
		if i < 0 {
			pending++
			continue
		}
		times = append(times, m.moved[i].At.Sub(t))
	}
	return times, pending
}

// disturbed returns the sessions that lost a server the demo did not kill.
func (f *fleet) disturbed(killed map[netip.AddrPort]bool) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, m := range f.members {
		if slices.ContainsFunc(m.lost, func(ev client.Event) bool { return !killed[ev.Server] }) {
			n++
		}
	}
	return n
}

// stats adds up the sessions' counters.
func (f *fleet) stats() client.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	var t client.Stats
	for _, m := range f.members {
		x := m.s.Stats()
		t.ProbesSent += x.ProbesSent
		t.KeepalivesSent += x.KeepalivesSent
		t.KeepalivesAnswered += x.KeepalivesAnswered
		t.Lost += x.Lost
		t.Reassignments += x.Reassignments
		t.EventsDropped += x.EventsDropped
	}
	return t
}

// vipProber probes the balancer address every interval and notes the
// first redirect whose term is above a given term: the moment a new leader
// answers after the old one was killed. Its probes name one session, so the
// balancer's ledger counts it once.
type vipProber struct {
	p      *client.Prober
	sent   atomic.Uint64
	first  chan struct{} // closed at the first answer above the term
	at     time.Time     // when; read after first is closed
	term   uint64
	cancel context.CancelFunc
	done   chan struct{} // closed when the probing goroutine ends
	once   sync.Once
}

// startProber starts probing dst every interval.
func startProber(dst netip.AddrPort, above uint64, interval time.Duration) (*vipProber, error) {
	p, err := client.NewProber(client.Options{
		RTO:       interval,
		Retries:   1,
		Jitter:    -1,
		LocalAddr: netip.MustParseAddrPort("127.0.0.1:0"),
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	v := &vipProber{p: p, first: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	go v.run(ctx, dst, above, interval)
	return v, nil
}

// run probes until an answer of a term above above comes, or ctx ends. A
// probe goes unanswered for interval before the next is sent.
func (v *vipProber) run(ctx context.Context, dst netip.AddrPort, above uint64, interval time.Duration) {
	defer close(v.done)
	for ctx.Err() == nil {
		start := time.Now()
		a, err := v.p.Probe(ctx, dst)
		v.sent.Add(1)
		if err == nil && a.Term > above {
			v.at, v.term = time.Now(), a.Term
			close(v.first)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(start.Add(interval))):
		}
	}
}

// Close stops probing; it is idempotent.
func (v *vipProber) Close() {
	v.once.Do(func() {
		v.cancel()
		v.p.Close()
		<-v.done
	})
}
