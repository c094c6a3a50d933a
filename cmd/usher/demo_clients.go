package main

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/client"
	"github.com/usherlb/usher/wire"
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

// vipProber sends a probe to the balancer address every interval and
// notes the first redirect whose term is above a given term: the moment a
// new leader answers after the old one was killed.
type vipProber struct {
	conn  *net.UDPConn
	dst   netip.AddrPort
	above uint64
	sent  atomic.Uint64
	first chan struct{} // closed at the first answer above the term
	at    time.Time     // when; read after first is closed
	term  uint64
	done  chan struct{}
	wg    sync.WaitGroup
}

// startProber starts probing dst every interval.
func startProber(dst netip.AddrPort, above uint64, interval time.Duration) (*vipProber, error) {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		return nil, err
	}
	p := &vipProber{conn: conn, dst: dst, above: above, first: make(chan struct{}), done: make(chan struct{})}
	p.wg.Add(2)
	go p.send(interval)
	go p.read()
	return p, nil
}

// send transmits a fresh probe, one session for all of them, every interval.
func (p *vipProber) send(interval time.Duration) {
	defer p.wg.Done()
	var (
		enc   wire.Encoder
		probe = wire.Probe{PadTo: wire.ProbeSize}
		pkt   []byte
		tick  = time.NewTicker(interval)
	)
	defer tick.Stop()
	rand.Read(probe.Session[:])
	for {
		rand.Read(probe.TxID[:])
		var err error
		if pkt, err = enc.AppendProbe(pkt[:0], &probe); err == nil {
			if _, err := p.conn.WriteToUDPAddrPort(pkt, p.dst); err == nil {
				p.sent.Add(1)
			}
		}
		select {
		case <-p.done:
			return
		case <-tick.C:
		}
	}
}

// read watches the answers for the first redirect from the new leader.
func (p *vipProber) read() {
	defer p.wg.Done()
	var (
		dec  wire.Decoder
		resp wire.Response
		buf  = make([]byte, 1500)
		seen bool
	)
	for {
		// Any source counts: the assigned server may answer for the
		// balancer address.
		n, _, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		at := time.Now()
		if seen || dec.DecodeResponse(buf[:n], &resp) != nil || resp.Code != stun.CodeTryAlternate || resp.Term <= p.above {
			continue
		}
		seen = true
		p.at, p.term = at, resp.Term
		close(p.first)
	}
}

// Close stops probing; it is idempotent.
func (p *vipProber) Close() {
	select {
	case <-p.done:
		return
	default:
	}
	close(p.done)
	p.conn.Close()
	p.wg.Wait()
}
