package node

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/assign"
	"github.com/usherlb/usher/internal/srclimit"
	"github.com/usherlb/usher/internal/udpio"
	"github.com/usherlb/usher/wire"
)

// prober is the state of one serving goroutine: everything the per-probe
// decision touches, and the counts of what it did, so that goroutines on
// sibling sockets share nothing but the view pointer.
type prober struct {
	r *Responder

	// Owned by the serving goroutine (one at a time), or by a test calling
	// answer directly.
	asg       *assign.Assigner // of the built-in session endpoint
	now       time.Time        // the clock as of the datagrams being answered: the assigners' clock
	rng       *rand.Rand
	limit     *srclimit.Table // per-source-prefix limits; nil when off
	term      uint64          // the term the assigners were made for
	installed *assign.View
	// named holds an assigner per named service, made the first time a
	// probe asks for the service; named is the one serving this probe.
	services     map[string]*servicePicker
	named        bool
	views        *ServiceViews // the ServiceViews the pickers' views are from
	stockService []byte        // ResponderConfig.StockService
	tls          bool          // it answers requests that came over TLS: its redirects name the domain
	dec          wire.Decoder
	enc          wire.Encoder
	req          wire.Request
	keys         *ticketKeys
	redirect     wire.Redirect
	ticket       []byte
	backups      []netip.AddrPort
	scratch      []byte                    // the answer, before it is sealed in a handoff
	assigned     map[string]uint64         // assignments per node, by this goroutine, as of the last TakePicks
	count        func(id string, n uint64) // adds to assigned: asg.TakePicks's callback, bound once

	// assignedCopy is assigned as of the last view change, for metrics; the
	// serving goroutine copies into it (allocating only for a new node)
	// under assignedMu, which nothing else on the probe path takes.
	assignedMu   sync.Mutex
	assignedCopy map[string]uint64

	// in and out are the serving loop's datagrams and answers, made when
	// it first runs (see serve).
	in, out []udpio.Message

	answered      atomic.Uint64 // redirects sent, sealed in a handoff or not
	stockBindings atomic.Uint64 // Binding successes sent to stock clients
	overloaded    atomic.Uint64 // overload answers sent (no server could take the probe)
	unknownAttr   atomic.Uint64 // 420 answers sent
	drops         dropCounters
}

// init prepares p to serve for r, picking servers with rng, as one of
// shares goroutines that divide the source limit between them (see
// limitShare).
func (p *prober) init(r *Responder, rng *rand.Rand, shares int) {
	p.r = r
	p.keys = newTicketKeys(r.key)
	p.rng = rng
	if r.cfg.SourceLimit.Rate > 0 {
		// Drawn only when on, so the tie-breaking sequence is the same
		// as it always was when off.
		p.limit = srclimit.New(limitShare(r.cfg.SourceLimit, shares), rng.Uint64(), rng.Uint64())
	}
	p.asg = assign.New(r.cfg.Assign, p.clock, rng)
	p.ticket = make([]byte, 0, wire.MaxTicketLen)
	p.backups = make([]netip.AddrPort, 0, wire.MaxBackups)
	p.scratch = make([]byte, 0, maxDatagram)
	p.assigned = make(map[string]uint64)
	p.services = make(map[string]*servicePicker)
	p.stockService = []byte(r.cfg.StockService)
	p.count = func(id string, n uint64) { p.assigned[id] += n }
	p.assignedCopy = make(map[string]uint64)
}

// clock is the assigner's clock: the time the datagrams being answered were
// read. One clock reading serves a whole batch (its datagrams arrived
// within microseconds of each other), which saves several readings per
// probe (BenchmarkResponderAnswer).
func (p *prober) clock() time.Time { return p.now }

// respond decides what to send for the probe pkt from from, read at now,
// and where: the answer itself, to the client, or, when the assigned
// server answers (Handoff) an Usher probe, the redirect sealed in a
// handoff, to that server. A stock request is always answered from here:
// its client drops an answer from an address it never sent to.
func (p *prober) respond(dst, pkt []byte, from netip.AddrPort, now time.Time) ([]byte, netip.AddrPort, dropReason) {
	r := p.r
	if !r.cfg.Handoff {
		out, why := p.answerAt(dst, pkt, from, now)
		return out, from, why
	}
	ans, why := p.answerAt(p.scratch[:0], pkt, from, now)
	if why != dropNone {
		return dst, from, why
	}
	if !p.req.HasSession || p.named || kindOf(ans) != kindRedirect {
		// A stock client, a named service's server, which is no
		// session endpoint of ours and cannot relay a handoff, or a
		// refusal, which names no server to relay it.
		return append(dst, ans...), from, dropNone
	}
	h := wire.Handoff{Client: from, Sent: uint32(now.Unix()), Answer: ans}
	out, err := p.keys.sealer().AppendHandoff(dst, &h)
	if err != nil {
		return dst, from, dropTooLarge
	}
	return out, p.redirect.Server, dropNone
}

// limitShare returns the part of the source limit lim that each of shares
// tables enforces. The kernel spreads the datagrams of SO_REUSEPORT
// sockets by their source address and port, so a prefix that sends from
// many ports reaches every socket, each with a table of its own: dividing
// the rate and the burst keeps what the prefix gets in all at about the
// configured limit, while one client, whose port lands on one socket,
// gets its share of it.
func limitShare(lim srclimit.Config, shares int) srclimit.Config {
	if shares > 1 && lim.Rate > 0 {
		lim.Rate = max(lim.Rate/shares, 1)
		lim.Burst = max(lim.Burst/shares, 1)
	}
	return lim
}

// answerAt decides the redirect for the probe pkt from the client at from,
// read at now, and appends it to dst, or says why there is none (first,
// before decoding, whether its source prefix is over its limit); a stock
// Binding request gets answerStockBinding's answer instead, a probe no
// server can take an overload answer (unless nothing current is known of
// the farm), and one with unknown
// comprehension-required attributes a 420 (see responder_refuse.go). It is the
// whole per-probe decision and does not allocate in steady state. Only one
// goroutine at a time may call it.
//
// It admits the probe (limit, decoding, leadership, credentials) and leaves
// the pick and the redirect to answerRedirect.
func (p *prober) answerAt(dst, pkt []byte, from netip.AddrPort, now time.Time) ([]byte, dropReason) {
	if !p.limit.Allow(from.Addr(), now) {
		return dst, dropRateLimited
	}
	r := p.r
	p.now = now
	req := &p.req
	err := p.dec.DecodeRequest(pkt, req)
	if err != nil && !errors.Is(err, wire.ErrUnknownAttribute) {
		return dst, decodeDrop(err)
	}
	term, ok := r.cfg.Serving()
	if !ok {
		return dst, dropNotLeader
	}
	// Unknown comprehension-required attributes are checked after the
	// credentials, as RFC 8489 section 6.3.1 orders it.
	unknown := err != nil
	if req.Method == stun.MethodBinding && !req.HasSession && !r.cfg.RedirectStockBinding {
		if unknown {
			return p.answerUnknown(dst, req)
		}
		return p.answerStockBinding(dst, req, from)
	}
	grant, out, why, refused := p.authorize(dst, pkt, req, from)
	if refused {
		return out, why
	}
	if unknown {
		return p.answerUnknown(dst, req)
	}
	return p.answerRedirect(dst, req, from, term, &grant)
}

// answerRedirect picks a server for the admitted request req from from
// under the leader's term and appends the redirect to it, signed as grant
// says, to dst; or the overload answer when no server can take it.
func (p *prober) answerRedirect(dst []byte, req *wire.Request, from netip.AddrPort, term uint64, grant *turnGrant) ([]byte, dropReason) {
	r := p.r
	if term != p.term {
		p.newTerm(term)
	}
	asg, why := p.assigner(req)
	if why != dropNone {
		return dst, why
	}
	if req.LostServer.IsValid() && r.cfg.LostServer != nil && !p.named {
		// The leader checks its own session endpoints; a named service's
		// server is its health checks' business.
		r.cfg.LostServer(req.LostServer)
	}
	// The pick never hands a client the server it reported lost; whether
	// other clients still get that server is the verifier's call, not this
	// one's. Nor does it name a server of the other address family, which
	// the client cannot reach.
	//
	// What the pick books: an Usher probe's client gets a ticket good at
	// its server alone and goes there at once, so it books a full pending
	// entry. A stock request is anyone's (a browser's Allocate as much as
	// a stranger's flood, and nothing tells them apart), so it books only
	// within the node's stock share (assign.BookStock). Neither can make
	// the farm refuse: pending entries only steer the choice.
	backups, book := 0, assign.BookStock
	if req.HasSession {
		backups, book = r.cfg.Backups, assign.BookSession
	}
	fam := assign.FamilyOf(from.Addr())
	n, bk, err := asg.PickFor(fam, assign.SessionID(req.Session), req.LostServer, p.backups[:0], backups, book)
	switch {
	case errors.Is(err, assign.ErrNoReport):
		// Nothing current is known of the farm (every report stale, as
		// on a leader that has just taken over): it is not known to be
		// full, and an overload answer would hold the client off for its
		// retry-after. Silence lets it retransmit on its own schedule.
		return dst, dropNoServer
	case err != nil:
		return p.answerOverload(dst, req)
	}
	p.backups = bk
	p.fillRedirect(req, from, &n, fam, term)
	out, err := p.appendRedirect(dst, req, grant)
	if err != nil {
		return dst, dropTooLarge
	}
	return out, dropNone
}

// fillRedirect sets p.redirect to send req's client at from to the picked
// node n, at its address of family fam, under term: with the node's TLS
// name over TLS, and for an Usher probe its ticket, keepalive timing and
// backups.
func (p *prober) fillRedirect(req *wire.Request, from netip.AddrPort, n *assign.Node, fam assign.Family, term uint64) {
	r := p.r
	server := n.AddrFor(fam)
	rd := &p.redirect
	*rd = wire.Redirect{Server: server, Term: term}
	if p.tls {
		// The name the client checks the alternate's certificate
		// against (RFC 8489 §14.16); over UDP or TCP it checks none.
		rd.Domain = n.Domain
	}
	if !req.HasSession {
		return
	}
	expiry := p.now.Add(r.cfg.TicketTTL).Unix()
	p.ticket = p.keys.ticketer().Append(p.ticket[:0], req.Session, from, server, uint32(expiry))
	rd.Ticket = p.ticket
	rd.Interval, rd.DeadAfter = r.cfg.KeepaliveInterval, r.cfg.DeadAfter
	if len(p.backups) > 0 {
		rd.Backups = p.backups
	}
}

// answerStockBinding appends to dst the answer to the stock Binding request
// req from from, as any STUN server answers it: a Binding success naming
// from in XOR-MAPPED-ADDRESS, within the size rule. It takes no pick and
// touches no ledger: a stock Binding is how a browser learns its
// server-reflexive candidate from its STUN or TURN server, not a session.
func (p *prober) answerStockBinding(dst []byte, req *wire.Request, from netip.AddrPort) ([]byte, dropReason) {
	a := wire.KeepaliveAnswer{Mapped: from}
	out, err := p.enc.AppendKeepaliveAnswer(dst, req, &a, wire.Limit(req, p.r.cfg.StockAmplification))
	if err != nil {
		return dst, dropTooLarge
	}
	return out, dropNone
}

// bindingSuccess is the STUN message type of a Binding success response.
const bindingSuccess = 0x0101
