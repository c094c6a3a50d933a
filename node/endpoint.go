package node

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/internal/srclimit"
	"github.com/usherlb/usher/internal/udpio"
	"github.com/usherlb/usher/wire"
)

// maxDatagram is the read buffer size. Anything longer arrives truncated,
// fails to decode and is dropped as not_stun.
const maxDatagram = udpio.MaxDatagram

// EndpointConfig configures a session Endpoint.
type EndpointConfig struct {
	// Addr is the server address clients are redirected to; tickets are
	// bound to it.
	Addr netip.AddrPort
	// SessionTTL expires a session after this long without a keepalive.
	SessionTTL time.Duration
	// RequireTicket refuses, with a 401 error answer, a new session (or a
	// known one from a new client address) without a valid ticket.
	RequireTicket bool
	// TicketKey is the key tickets are checked with.
	TicketKey []byte
	// MaxSessions bounds the sessions the endpoint counts; a new session
	// beyond it gets a 508 (Insufficient Capacity) error answer. 0 is
	// unbounded.
	MaxSessions int
	// MaxSessionsPerSource bounds the sessions counted from one source: an
	// IPv4 address or an IPv6 /56 (see sourceOf). A new session beyond it,
	// or one moving to a source that holds this many, gets a 486
	// (Allocation Quota Reached) error answer. 0 is unbounded.
	MaxSessionsPerSource int
	// StockAmplification bounds answers to stock STUN Binding requests
	// (see wire.Limit).
	StockAmplification int
	// Handoffs makes the endpoint relay the leader's handoffs
	// (respond_from = "server"); without it every handoff is dropped.
	Handoffs bool
	// HandoffFrom, when valid, is the only source address a handoff is
	// taken from: the balancer address, which the leader sends them from.
	HandoffFrom netip.Addr
	// SourceLimit limits how many datagrams each source prefix has
	// answered (see srclimit); a zero Rate turns the limit off. The
	// handoffs relayed from HandoffFrom are not limited.
	SourceLimit srclimit.Config
	// LimitKey keys the limit table's hash; it must be random.
	LimitKey [2]uint64
	// RefusalRate bounds the error answers (401, 486, 508) the endpoint
	// sends per second, from all sources together, with a burst of one
	// second's worth; a request that would get one beyond it is dropped
	// (refusal_limit). A legitimate client earns an error answer rarely
	// (its ticket expired, a server full), and a client whose error answer
	// is dropped re-probes when the server stays silent, so the bound
	// costs a flood of forged keepalives its answers without denying a
	// client service. Zero or less is unbounded.
	RefusalRate int
	// Batch reads and answers up to udpio.MaxBatch datagrams per system
	// call (udpio's MMsg back-end) where the system has them; otherwise,
	// and without it, one datagram per call through the net package.
	Batch bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger is the endpoint's logger; nil discards logs.
	Logger hclog.Logger
}

// EndpointStats counts what an Endpoint did.
type EndpointStats struct {
	// Keepalives is the number of keepalives answered.
	Keepalives uint64
	// Stock is the number of stock STUN Binding requests answered.
	Stock uint64
	// Refused is the number of 401 answers sent for missing or bad tickets.
	Refused uint64
	// SourceCapped is the number of 486 answers sent for sessions beyond
	// MaxSessionsPerSource.
	SourceCapped uint64
	// Full is the number of 508 answers sent for sessions beyond
	// MaxSessions.
	Full uint64
	// Relayed is the number of probe answers relayed for the leader
	// (respond_from = "server").
	Relayed uint64
	// Unknown is the number of 420 Unknown Attribute answers sent to
	// Binding requests carrying comprehension-required attributes the
	// endpoint does not understand.
	Unknown uint64
	// Drops counts dropped datagrams by reason.
	Drops map[string]uint64
}

// Endpoint is a node's session endpoint: a UDP socket on the node's real
// address that answers keepalives, keeps the session table (the node's
// load), and checks tickets. It is also a plain STUN server: a stock Binding
// request gets a success answer with XOR-MAPPED-ADDRESS.
//
// One goroutine reads and answers datagrams and owns the decoder, encoder
// and ticketer; another expires silent sessions.
type Endpoint struct {
	cfg    EndpointConfig
	conn   *net.UDPConn
	log    hclog.Logger
	table  *sessionTable
	drain  atomic.Bool
	closed chan struct{}
	wg     sync.WaitGroup
	once   sync.Once

	// Owned by the read loop (or a test calling answer directly).
	dec     wire.Decoder
	enc     wire.Encoder
	req     wire.Request
	keys    *ticketKeys
	replays *handoffReplays
	limit   *srclimit.Table
	refuses *srclimit.Bucket

	keepalives, stock, refused, relayed atomic.Uint64
	unknownAttr                         atomic.Uint64 // 420 answers sent
	sourceCapped, full                  atomic.Uint64
	drops                               dropCounters
}

// ListenEndpoint opens a UDP socket on addr and serves it (see NewEndpoint).
// If cfg.Addr is not set, it is the socket's bound address.
func ListenEndpoint(addr netip.AddrPort, cfg EndpointConfig) (*Endpoint, error) {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, fmt.Errorf("session endpoint: %w", err)
	}
	return NewEndpoint(conn, cfg), nil
}

// NewEndpoint serves sessions on conn until Close, which also closes conn.
func NewEndpoint(conn *net.UDPConn, cfg EndpointConfig) *Endpoint {
	e := newEndpoint(cfg)
	e.conn = conn
	if !e.cfg.Addr.IsValid() {
		e.cfg.Addr = unmapAddrPort(conn.LocalAddr().(*net.UDPAddr).AddrPort())
	}
	e.wg.Add(2)
	go e.readLoop()
	go e.sweepLoop()
	return e
}

// newEndpoint builds an Endpoint without a socket or goroutines.
func newEndpoint(cfg EndpointConfig) *Endpoint {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 3 * time.Second
	}
	return &Endpoint{
		cfg:     cfg,
		log:     cfg.Logger,
		table:   newSessionTable(cfg.SessionTTL, cfg.MaxSessions, cfg.MaxSessionsPerSource),
		closed:  make(chan struct{}),
		keys:    newTicketKeys(cfg.TicketKey),
		replays: newHandoffReplays((handoffMaxAge+1)*time.Second, maxHandoffReplays),
		limit:   srclimit.New(cfg.SourceLimit, cfg.LimitKey[0], cfg.LimitKey[1]),
		refuses: srclimit.NewBucket(cfg.RefusalRate, cfg.RefusalRate),
	}
}

// Close stops the endpoint and closes its socket. It is idempotent.
func (e *Endpoint) Close() error {
	var err error
	e.once.Do(func() {
		close(e.closed)
		if e.conn != nil {
			err = e.conn.Close()
		}
		e.wg.Wait()
	})
	return err
}

// Addr returns the server address the endpoint stands for (the one tickets
// and redirects name).
func (e *Endpoint) Addr() netip.AddrPort { return e.cfg.Addr }

// LocalAddr returns the socket's bound address.
func (e *Endpoint) LocalAddr() netip.AddrPort {
	return unmapAddrPort(e.conn.LocalAddr().(*net.UDPAddr).AddrPort())
}

// Load returns the number of live sessions and the monotonic count of
// sessions ever accepted: the node's load report.
func (e *Endpoint) Load() (sessions int, accepted uint64) {
	return e.table.Len(), e.table.Accepted()
}

// SetDraining sets whether keepalive answers carry USHER-DRAIN.
func (e *Endpoint) SetDraining(on bool) { e.drain.Store(on) }

// Draining reports whether the endpoint is draining.
func (e *Endpoint) Draining() bool { return e.drain.Load() }

// Sessions returns a snapshot of the session table, oldest first.
func (e *Endpoint) Sessions() []SessionInfo { return e.table.snapshot() }

// Stats returns the endpoint's counters.
func (e *Endpoint) Stats() EndpointStats {
	return EndpointStats{
		Keepalives:   e.keepalives.Load(),
		Stock:        e.stock.Load(),
		Refused:      e.refused.Load(),
		SourceCapped: e.sourceCapped.Load(),
		Full:         e.full.Load(),
		Relayed:      e.relayed.Load(),
		Unknown:      e.unknownAttr.Load(),
		Drops:        e.drops.snapshot(),
	}
}

// readLoop answers datagrams until the socket is closed: it reads what the
// socket holds, up to a batch (one datagram without cfg.Batch), decides
// each with handle and sends the answers in one write.
func (e *Endpoint) readLoop() {
	defer e.wg.Done()
	c := e.openConn()
	n := 1
	if e.cfg.Batch {
		n = udpio.MaxBatch
	}
	in, out := udpio.NewMessages(n), udpio.NewMessages(n)
	for {
		n, err := c.ReadBatch(in)
		if err != nil {
			if e.readFailed(err) {
				return
			}
			continue
		}
		k := 0
		for i := range in[:n] {
			if e.handleOne(&in[i], &out[k]) {
				k++
			}
		}
		if k > 0 {
			sent, _ := c.WriteBatch(out[:k]) // a closed socket ends the next read
			for range k - sent {
				e.drops.add(dropWriteError)
			}
		}
	}
}

// openConn returns the udpio back-end cfg.Batch asks for: MMsg, or
// Portable where that cannot be had or without it.
func (e *Endpoint) openConn() udpio.Conn {
	if e.cfg.Batch {
		c, err := udpio.Open(e.conn, udpio.MMsg)
		if err == nil {
			return c
		}
		e.log.Warn("answering through the net package", "error", err)
	}
	c, _ := udpio.Open(e.conn, udpio.Portable) // Portable cannot fail
	return c
}

// handleOne decides the answer to the datagram in into out. It reports
// false, having counted the drop, when there is none.
func (e *Endpoint) handleOne(in, out *udpio.Message) bool {
	if !in.Addr.IsValid() {
		e.drops.add(dropNotSTUN)
		return false
	}
	ans, to, why := e.handle(out.Buf[:0], in.Buf, in.Addr)
	if why != dropNone {
		e.drops.add(why)
		return false
	}
	out.Buf, out.Addr = ans, to
	return true
}

// readFailed handles a failed read of readLoop and reports whether the
// loop should end: when the endpoint or its socket is closed.
func (e *Endpoint) readFailed(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return true
	}
	select {
	case <-e.closed:
		return true
	default:
	}
	e.log.Debug("read failed", "error", err)
	return false
}

// sweepLoop expires silent sessions a few times per TTL.
func (e *Endpoint) sweepLoop() {
	defer e.wg.Done()
	every := min(max(e.cfg.SessionTTL/4, 50*time.Millisecond), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-e.closed:
			return
		case <-t.C:
			if n := e.table.expire(e.cfg.Now()); n > 0 {
				e.log.Debug("sessions expired", "count", n, "sessions", e.table.Len())
			}
		}
	}
}

// handoffMaxAge is how old, in seconds, a handoff from the leader may be.
const handoffMaxAge = 5

// handle decides what to send for the datagram pkt from from, and where: a
// handoff from the leader is relayed to its client, anything else is a
// request answered to its source. Anything but the leader's handoffs (all
// from the balancer address) is first checked against its source prefix's
// limit.
func (e *Endpoint) handle(dst, pkt []byte, from netip.AddrPort) ([]byte, netip.AddrPort, dropReason) {
	handoff := wire.IsHandoff(pkt)
	leader := handoff && e.cfg.Handoffs && from.Addr() == e.cfg.HandoffFrom
	if !leader && !e.limit.Allow(from.Addr(), e.cfg.Now()) {
		return dst, from, dropRateLimited
	}
	if handoff {
		return e.relay(dst, pkt, from)
	}
	out, why := e.answer(dst, pkt, from)
	return out, from, why
}

// relay opens a handoff sealed by the leader (respond_from = "server") and
// returns the answer it carries and the client it goes to. The endpoint
// relays only when handoffs are on, only handoffs from the balancer
// address, each at most once, and only answers that redirect to itself: it
// vouches for no one else.
func (e *Endpoint) relay(dst, pkt []byte, from netip.AddrPort) ([]byte, netip.AddrPort, dropReason) {
	if !e.cfg.Handoffs || (e.cfg.HandoffFrom.IsValid() && from.Addr() != e.cfg.HandoffFrom) {
		return dst, netip.AddrPort{}, dropHandoffInvalid
	}
	var h wire.Handoff
	now := e.cfg.Now()
	switch err := e.keys.sealer().OpenHandoff(pkt, &h, uint32(now.Unix()), handoffMaxAge); {
	case errors.Is(err, wire.ErrHandoffStale):
		return dst, netip.AddrPort{}, dropHandoffStale
	case err != nil:
		return dst, netip.AddrPort{}, dropHandoffInvalid
	}
	var r wire.Response
	if err := e.dec.DecodeResponse(h.Answer, &r); err != nil || r.Server != e.cfg.Addr || !h.Client.IsValid() {
		return dst, netip.AddrPort{}, dropHandoffInvalid
	}
	if !e.replays.admit(wire.HandoffMAC(pkt), now) {
		return dst, netip.AddrPort{}, dropHandoffReplay
	}
	e.relayed.Add(1)
	return append(dst, h.Answer...), h.Client, dropNone
}

// answer handles the datagram pkt from the client at from, appending the
// answer to dst, or returns why there is none. It may only be called from
// one goroutine at a time.
func (e *Endpoint) answer(dst, pkt []byte, from netip.AddrPort) ([]byte, dropReason) {
	req := &e.req
	err := e.dec.DecodeRequest(pkt, req)
	if err != nil && !errors.Is(err, wire.ErrUnknownAttribute) {
		return dst, decodeDrop(err)
	}
	if req.Method != stun.MethodBinding {
		return dst, dropMethod
	}
	limit := wire.Limit(req, e.cfg.StockAmplification)
	if err != nil {
		// RFC 8489 section 7.3.1: not processed, not a keepalive.
		return e.answerUnknown(dst, req, limit)
	}
	if !req.HasSession {
		out, err := e.enc.AppendKeepaliveAnswer(dst, req, &wire.KeepaliveAnswer{Mapped: from}, limit)
		if err != nil {
			return dst, dropTooLarge
		}
		e.stock.Add(1)
		return out, dropNone
	}

	now := e.cfg.Now()
	ticketed := false
	if known, ok := e.table.lookup(req.Session); !ok || known != from {
		// A new session, or a known one from a new address, must show a
		// ticket bound to this client and server when tickets are required.
		// A known session from its own address was checked when it began.
		ticketed = len(req.Ticket) > 0 &&
			e.keys.ticketer().Verify(req.Ticket, req.Session, from, e.cfg.Addr, uint32(now.Unix())) == nil
		if e.cfg.RequireTicket && !ticketed {
			return e.refuse(dst, req, stun.CodeUnauthorized, limit, &e.refused)
		}
	}
	switch created, why := e.table.touch(req.Session, from, ticketed, now); {
	case why == refusedSource:
		return e.refuse(dst, req, stun.CodeAllocQuotaReached, limit, &e.sourceCapped)
	case why == refusedTotal:
		return e.refuse(dst, req, stun.CodeInsufficientCapacity, limit, &e.full)
	case created:
		e.log.Trace("session created", "client", from, "ticketed", ticketed)
	}
	out, err := e.enc.AppendKeepaliveAnswer(dst, req, &wire.KeepaliveAnswer{Mapped: from, Drain: e.drain.Load()}, limit)
	if err != nil {
		return dst, dropTooLarge
	}
	e.keepalives.Add(1)
	return out, dropNone
}

// answerUnknown appends to dst the 420 answer to req, which carries
// unknown comprehension-required attributes.
func (e *Endpoint) answerUnknown(dst []byte, req *wire.Request, limit int) ([]byte, dropReason) {
	out, err := e.enc.AppendUnknownAttributes(dst, req, limit)
	if err != nil {
		return dst, dropTooLarge
	}
	e.unknownAttr.Add(1)
	return out, dropNone
}

// refuse appends to dst the error answer with code to req and counts it in
// n: the session is not counted. Beyond cfg.RefusalRate it drops req
// instead.
func (e *Endpoint) refuse(dst []byte, req *wire.Request, code stun.ErrorCode, limit int, n *atomic.Uint64) ([]byte, dropReason) {
	if !e.refuses.Allow(e.cfg.Now()) {
		return dst, dropRefusalLimit
	}
	out, err := e.enc.AppendErrorAnswer(dst, req, code, limit)
	if err != nil {
		return dst, dropTooLarge
	}
	n.Add(1)
	return out, dropNone
}

// unmapAddrPort turns an IPv4-mapped IPv6 address into plain IPv4, so the
// same client has one spelling everywhere.
func unmapAddrPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// SetTicketKey replaces the key tickets are checked with, from the next
// keepalive on. It is safe from any goroutine.
func (e *Endpoint) SetTicketKey(key []byte) { e.keys.set(key) }
