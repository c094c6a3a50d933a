package client

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pion/stun/v3"
	"github.com/usherlb/usher/wire"
)

// Errors a session reports. They are distinct values for errors.Is.
var (
	// ErrNoAnswer means a whole probe round went unanswered.
	ErrNoAnswer = errors.New("no answer from the balancer address")
	// ErrRefused means the balancer answered a probe with an error other
	// than a usable redirect, or a server refused the session's keepalive
	// (401: no valid ticket).
	ErrRefused = errors.New("refused")
	// ErrLoopGuard means a round's redirect named a recently lost server
	// while others were known, and was refused.
	ErrLoopGuard = errors.New("redirect to a recently lost server refused")
	// ErrClosed means the session was closed.
	ErrClosed = errors.New("session closed")
	// ErrOverloaded means the balancer answered a probe with a server
	// error (508 Insufficient Capacity, or another 5xx): no server can take
	// the session now. The error is an *OverloadError, which also matches
	// ErrRefused.
	ErrOverloaded = errors.New("no server available")
)

// OverloadError is the answer of a balancer that has no server for the
// session.
type OverloadError struct {
	// Code is the answer's error code: 508 from Usher, 500 or another 5xx
	// from elsewhere.
	Code stun.ErrorCode
	// RetryAfter is the answer's USHER-RETRY-AFTER: how long the balancer
	// asks the client to wait; zero when absent.
	RetryAfter time.Duration
}

// Error describes the answer.
func (e *OverloadError) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("balancer answered %d, retry after %v: %v", int(e.Code), e.RetryAfter, ErrOverloaded)
	}
	return fmt.Sprintf("balancer answered %d: %v", int(e.Code), ErrOverloaded)
}

// Is reports whether target is ErrOverloaded or ErrRefused.
func (e *OverloadError) Is(target error) bool {
	return target == ErrOverloaded || target == ErrRefused
}

// overloadOf returns the OverloadError of r when r is a server error
// (5xx), and nil otherwise.
func overloadOf(r *wire.Response) *OverloadError {
	if r.Success || r.Code/100 != 5 {
		return nil
	}
	return &OverloadError{Code: r.Code, RetryAfter: r.RetryAfter}
}

// maxDatagram is the largest answer the reader accepts; Usher answers are
// never larger than the client's padded requests.
const maxDatagram = 1500

// Session is one client session: a UDP socket, the balancer address it
// probes and the server it is assigned to. Its methods are safe for
// concurrent use.
type Session struct {
	balancer netip.AddrPort
	id       wire.SessionID
	opts     Options
	log      hclog.Logger
	conn     *net.UDPConn

	in     chan packet    // reader → state machine
	events chan Event     // state machine → user
	ready  chan error     // first assignment or failure, once
	done   chan struct{}  // closed by Close
	wg     sync.WaitGroup // the reader and the state machine
	once   sync.Once

	stats counters

	mu       sync.Mutex // guards the published view below
	server   netip.AddrPort
	mapped   netip.AddrPort
	term     uint64
	interval time.Duration
	dead     time.Duration
}

// packet is one decoded answer and where it came from. resp.Ticket is a
// private copy.
type packet struct {
	resp wire.Response
	from netip.AddrPort
}

// Dial opens a session with the balancer at balancer: it binds a UDP socket,
// probes until a redirect names a server, and returns once assigned. It
// fails with an error wrapping ErrNoAnswer when the whole first round goes
// unanswered, ErrRefused when the balancer answers with an error (an
// *OverloadError, matching ErrOverloaded too, when the farm has no server
// for it: the caller decides when to dial again), or ctx's
// error when ctx is done first. ctx bounds Dial only; the session lives until
// Close.
func Dial(ctx context.Context, balancer netip.AddrPort, opts Options) (*Session, error) {
	if !balancer.IsValid() {
		return nil, fmt.Errorf("client: invalid balancer address %v", balancer)
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	conn, err := o.listen()
	if err != nil {
		return nil, err
	}
	s := &Session{
		balancer: unmap(balancer),
		opts:     o,
		log:      o.Logger,
		conn:     conn,
		in:       make(chan packet, 16),
		events:   make(chan Event, o.Events),
		ready:    make(chan error, 1),
		done:     make(chan struct{}),
	}
	crand.Read(s.id[:])
	m := newMachine(s)
	s.wg.Add(2)
	go s.read()
	go m.run()

	select {
	case err := <-s.ready:
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("client: dial %v: %w", balancer, err)
		}
		return s, nil
	case <-ctx.Done():
		s.Close()
		return nil, fmt.Errorf("client: dial %v: %w", balancer, ctx.Err())
	}
}

// Server returns the server the session is assigned to; while a re-probe is
// in progress, the server it was last assigned to.
func (s *Session) Server() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.server
}

// ID returns the session's identifier, chosen at random by Dial and sent on
// every probe and keepalive.
func (s *Session) ID() wire.SessionID { return s.id }

// Term returns the newest leadership term seen in an answer.
func (s *Session) Term() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.term
}

// Mapped returns the session's public address as the last keepalive answer
// reported it (XOR-MAPPED-ADDRESS); zero before the first answer.
func (s *Session) Mapped() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mapped
}

// Timers returns the keepalive interval and declare-dead timeout in force:
// the assignment's USHER-TIMERS, or the Options defaults.
func (s *Session) Timers() (interval, deadAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.interval, s.dead
}

// LocalAddr returns the address of the session's socket.
func (s *Session) LocalAddr() netip.AddrPort {
	return unmap(s.conn.LocalAddr().(*net.UDPAddr).AddrPort())
}

// Events returns the channel of the session's events. Events that do not
// fit its buffer are dropped and counted; Close closes it.
func (s *Session) Events() <-chan Event { return s.events }

// Stats returns the session's counters.
func (s *Session) Stats() Stats { return s.stats.snapshot() }

// Close ends the session: it stops both goroutines, closes the socket and
// then the event channel. It is idempotent; later calls return nil.
func (s *Session) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		err = s.conn.Close()
		s.wg.Wait()
		close(s.events)
	})
	return err
}

// read is the reader goroutine: it decodes every datagram and hands the
// answers to the state machine, counting and dropping malformed ones.
func (s *Session) read() {
	defer s.wg.Done()
	var (
		dec wire.Decoder
		buf = make([]byte, maxDatagram)
	)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// A transient error (for example an ICMP error surfaced by
			// the kernel): note it and carry on.
			s.log.Debug("read error", "error", err)
			select {
			case <-s.done:
				return
			default:
				continue
			}
		}
		var p packet
		if err := dec.DecodeResponse(buf[:n], &p.resp); err != nil {
			s.stats.malformed.Add(1)
			s.log.Trace("dropped malformed datagram", "from", from, "error", err)
			continue
		}
		if len(p.resp.Ticket) > 0 {
			p.resp.Ticket = append([]byte(nil), p.resp.Ticket...)
		}
		p.from = unmap(from)
		select {
		case s.in <- p:
		case <-s.done:
			return
		}
	}
}

// emit delivers ev without blocking, counting it if the channel is full.
func (s *Session) emit(ev Event) {
	ev.At = s.opts.Now()
	select {
	case s.events <- ev:
	default:
		s.stats.eventsDropped.Add(1)
	}
}

// publish updates the view read by Server, Term, Mapped and Timers.
func (s *Session) publish(f func(s *Session)) {
	s.mu.Lock()
	f(s)
	s.mu.Unlock()
}

// unmap turns an IPv4-mapped IPv6 address into plain IPv4, so addresses
// read from a dual-stack socket compare equal to the ones in answers.
func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
