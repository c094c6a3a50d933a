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

	"github.com/pion/stun/v3"
	"github.com/usherlb/usher/wire"
)

// Answer is a balancer's redirect to one probe.
type Answer struct {
	// Server is the assigned server (ALTERNATE-SERVER).
	Server netip.AddrPort
	// Backups are the USHER-BACKUP servers, in the answer's order.
	Backups []netip.AddrPort
	// Term is the USHER-TERM of the answer; zero when absent.
	Term uint64
	// From is where the answer came from: the balancer address, or the
	// assigned server answering for it.
	From netip.AddrPort
	// RTT is the time from the last transmission of the probe to its
	// answer.
	RTT time.Duration
	// Transmissions is how many times the probe was sent.
	Transmissions int
}

// Prober asks a balancer for assignments without opening sessions: each
// Probe is one probe transaction, retransmitted like a session's probe
// (Options.RTO doubling, Options.Retries transmissions, Options.Jitter), and
// answers with the redirect it got. Monitoring tools use it to see which
// server a balancer names and how fast it answers.
//
// All probes of a Prober come from one UDP socket and name one session ID,
// chosen at random by NewProber, so a balancer counts a Prober as a single
// pending session however often it probes. Its methods are safe for
// concurrent use; concurrent probes take turns.
type Prober struct {
	opts  Options
	id    wire.SessionID
	conn  *net.UDPConn
	local netip.AddrPort
	once  sync.Once

	mu  sync.Mutex // one transaction at a time; guards the fields below
	enc wire.Encoder
	dec wire.Decoder
	buf []byte
}

// NewProber binds the socket of a Prober (Options.LocalAddr, or an
// ephemeral port). Only Service, RTO, Retries, Jitter, LocalAddr and Rand of
// opts are used.
func NewProber(opts Options) (*Prober, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	conn, err := o.listen()
	if err != nil {
		return nil, err
	}
	p := &Prober{opts: o, conn: conn, local: unmap(conn.LocalAddr().(*net.UDPAddr).AddrPort()), buf: make([]byte, maxDatagram)}
	crand.Read(p.id[:])
	return p, nil
}

// Probe sends a fresh probe to balancer, retransmitting it until a
// redirect answers it, and returns that redirect. An answer is matched by
// transaction ID alone, from any source. It fails with an error wrapping
// ErrNoAnswer when every transmission goes unanswered, ErrRefused when the
// answer is not a usable redirect (an *OverloadError, which matches
// ErrOverloaded too, for a server error: no server available), ErrClosed
// after Close, or ctx's error when ctx is done first.
func (p *Prober) Probe(ctx context.Context, balancer netip.AddrPort) (Answer, error) {
	if !balancer.IsValid() {
		return Answer{}, fmt.Errorf("client: invalid balancer address %v", balancer)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	probe := wire.Probe{TxID: newTx(), Session: p.id, Service: p.opts.Service, PadTo: wire.ProbeSize}
	pkt, err := p.enc.AppendProbe(nil, &probe)
	if err != nil {
		return Answer{}, fmt.Errorf("client: encode probe: %w", err)
	}
	balancer = unmap(balancer)
	for n := 1; n <= p.opts.Retries; n++ {
		sent := time.Now()
		if _, err := p.conn.WriteToUDPAddrPort(pkt, balancer); errors.Is(err, net.ErrClosed) {
			return Answer{}, fmt.Errorf("client: probe %v: %w", balancer, ErrClosed)
		} else if err != nil {
			return Answer{}, fmt.Errorf("client: probe %v: %w", balancer, err)
		}
		wait := sent.Add(jitter(p.opts.Rand, p.opts.Jitter, rto(p.opts.RTO, n)))
		resp, from, err := p.await(ctx, probe.TxID, wait)
		switch {
		case errors.Is(err, errWaitOver):
			continue
		case errors.Is(err, net.ErrClosed):
			return Answer{}, fmt.Errorf("client: probe %v: %w", balancer, ErrClosed)
		case err != nil:
			return Answer{}, fmt.Errorf("client: probe %v: %w", balancer, err)
		case overloadOf(resp) != nil:
			return Answer{}, fmt.Errorf("client: probe %v: %w", balancer, overloadOf(resp))
		case resp.Success || resp.Code != stun.CodeTryAlternate || !resp.Server.IsValid():
			return Answer{}, fmt.Errorf("client: probe %v: balancer answered %s: %w", balancer, describe(resp), ErrRefused)
		}
		return answerOf(resp, from, time.Since(sent), n), nil
	}
	return Answer{}, fmt.Errorf("client: probe %v: %d transmissions: %w", balancer, p.opts.Retries, ErrNoAnswer)
}

// errWaitOver ends await when the retransmission time comes unanswered.
var errWaitOver = errors.New("retransmission time")

// checkCtx bounds how long await blocks in a read before it looks at ctx.
const checkCtx = 50 * time.Millisecond

// await reads until the answer to tx arrives (returned), the time until
// comes (errWaitOver), ctx is done or the socket fails. Other datagrams are
// dropped.
func (p *Prober) await(ctx context.Context, tx txID, until time.Time) (*wire.Response, netip.AddrPort, error) {
	var resp wire.Response
	for {
		if err := ctx.Err(); err != nil {
			return nil, netip.AddrPort{}, err
		}
		rd := time.Now().Add(checkCtx)
		if until.Before(rd) {
			rd = until
		}
		if d, ok := ctx.Deadline(); ok && d.Before(rd) {
			rd = d
		}
		if err := p.conn.SetReadDeadline(rd); err != nil {
			return nil, netip.AddrPort{}, fmt.Errorf("set read deadline: %w", err)
		}
		n, from, err := p.conn.ReadFromUDPAddrPort(p.buf)
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			if !time.Now().Before(until) {
				return nil, netip.AddrPort{}, errWaitOver
			}
			continue
		case err != nil:
			return nil, netip.AddrPort{}, err
		}
		if p.dec.DecodeResponse(p.buf[:n], &resp) != nil || resp.TxID != tx {
			continue // malformed, or an answer to an earlier probe
		}
		return &resp, unmap(from), nil
	}
}

// answerOf makes the Answer of the redirect r.
func answerOf(r *wire.Response, from netip.AddrPort, rtt time.Duration, sent int) Answer {
	a := Answer{Server: unmap(r.Server), Term: r.Term, From: from, RTT: rtt, Transmissions: sent}
	for _, b := range r.Backups[:r.NumBackups] {
		a.Backups = append(a.Backups, unmap(b))
	}
	return a
}

// LocalAddr returns the address of the Prober's socket.
func (p *Prober) LocalAddr() netip.AddrPort { return p.local }

// Close closes the Prober's socket; it is idempotent. A Probe in progress
// fails with ErrClosed.
func (p *Prober) Close() error {
	var err error
	p.once.Do(func() { err = p.conn.Close() })
	return err
}

// Probe sends one probe to balancer from a Prober of its own and returns
// the redirect that answers it: a one-off NewProber, Probe and Close.
func Probe(ctx context.Context, balancer netip.AddrPort, opts Options) (Answer, error) {
	p, err := NewProber(opts)
	if err != nil {
		return Answer{}, err
	}
	defer p.Close()
	return p.Probe(ctx, balancer)
}
