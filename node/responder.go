package node

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/usherlb/usher/assign"
	"github.com/usherlb/usher/internal/udpio"
	"github.com/usherlb/usher/wire"
)

// ServingFunc reports whether this node may answer probes now and, if so,
// the leadership term to put in answers. It is called once per probe, so it
// must be cheap and must not block or allocate.
type ServingFunc func() (term uint64, ok bool)

// Solo is a ServingFunc that always serves, in term 1: for a responder run
// without a cluster (tests, and the benchmark's servers). The agent always
// passes the cluster's.
func Solo() (uint64, bool) { return 1, true }

// ResponderConfig configures a Responder.
type ResponderConfig struct {
	// Assign configures the responder's Assigner.
	Assign assign.Config
	// Serving gates every answer; nil means Solo.
	Serving ServingFunc
	// View is where the newest view of the farm is published; the responder
	// installs it in its Assigner whenever the pointer changes.
	View *atomic.Pointer[assign.View]
	// TicketKey keys the tickets the responder issues.
	TicketKey []byte
	// TicketTTL is how long an issued ticket is valid.
	TicketTTL time.Duration
	// KeepaliveInterval and DeadAfter are sent to clients in USHER-TIMERS.
	KeepaliveInterval, DeadAfter time.Duration
	// StockAmplification bounds answers to stock STUN and TURN requests
	// (see wire.Limit).
	StockAmplification int
	// Backups is how many USHER-BACKUP servers an answer names.
	Backups int
	// Handoff makes the assigned server send the answer (respond_from =
	// "server"): the responder seals it in a handoff to the server's
	// session endpoint, which relays it to the client from its own address.
	Handoff bool
	// LostServer, if set, is told of every server a probe names in
	// USHER-LOST-SERVER, so the leader can check it. It must not block.
	LostServer func(netip.AddrPort)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the Assigner's random source; nil means a randomly seeded one.
	Rand *rand.Rand
	// Logger is the responder's logger; nil discards logs.
	Logger hclog.Logger

	// Sockets is how many sockets serve the balancer address, each with
	// its own goroutine and per-probe state: Serve adds Sockets-1
	// SO_REUSEPORT siblings bound to the same address as the socket it is
	// given, and the kernel spreads clients across them by address. Zero
	// or one means the one socket; where SO_REUSEPORT is missing the
	// responder serves the one socket and logs why. Siblings share nothing
	// on the probe path but the view pointer, so each keeps its own
	// pending-assignment ledger; Serving, LostServer and Now are then
	// called from several goroutines at once.
	//
	// In vip_mode bind the siblings weaken the bind fence: another process
	// of the same user that also asks for SO_REUSEPORT can then bind the
	// address too.
	Sockets int
	// ReadBuffer, if positive, is the receive buffer the responder asks
	// for on every socket it serves, in bytes (see udpio.SizeReadBuffer); zero
	// leaves the kernel's default.
	ReadBuffer int
	// Batch reads and answers probes in batches (recvmmsg and sendmmsg on
	// Linux; elsewhere it is ignored). A batch is whatever the socket holds
	// when the goroutine wakes, up to a bound: it never waits for more.
	Batch bool
}

// ResponderStats counts what a Responder did.
type ResponderStats struct {
	// Answered is the number of probes answered with a redirect.
	Answered uint64
	// Drops counts dropped datagrams by reason.
	Drops map[string]uint64
}

// Responder answers probes on the balancer address. It owns one goroutine
// per socket it serves: that goroutine reads a probe, checks that the node
// is serving, picks a server with the responder's Assigner (which only it
// touches), mints a ticket and sends the redirect to the probe's source,
// never larger than the size rule allows. Anything else is dropped and
// counted by reason.
//
// Serve starts answering on a socket and Stop ends it, any number of times
// in turn, so whatever holds the VIP can start and stop the responder as the
// address comes and goes. Stop leaves the socket open: it belongs to whoever
// passed it to Serve (in netlink mode it stays bound for the agent's life).
type Responder struct {
	cfg ResponderConfig
	log hclog.Logger

	mu        sync.Mutex
	conn      *net.UDPConn   // the socket being served; nil when not serving
	siblings  []*net.UDPConn // SO_REUSEPORT sockets Serve opened; Stop closes them
	stop      chan struct{}  // closed by Stop to end the serving goroutines
	wg        sync.WaitGroup // the serving goroutines
	owned     *net.UDPConn   // the socket Listen opened, closed by Close
	key       []byte         // the newest ticket key, for new probers
	portable  bool           // tests: serve, not serveRaw, without Batch
	yieldHook func()         // tests: called where a serving loop would yield (see yield)

	// prober serves the first socket (and a test calling answer);
	// more[i] serves sibling i. They outlive Serve and Stop, so their
	// counts add up over the responder's life.
	prober
	more []*prober
}

// prober is the state of one serving goroutine: everything the per-probe
// decision touches, and the counts of what it did, so that goroutines on
// sibling sockets share nothing but the view pointer.
type prober struct {
	r *Responder

	// Owned by the serving goroutine (one at a time), or by a test calling
	// answer directly.
	asg       *assign.Assigner
	now       time.Time // the clock as of the datagrams being answered: asg's clock
	rng       *rand.Rand
	term      uint64 // the term asg was made for
	installed *assign.View
	dec       wire.Decoder
	enc       wire.Encoder
	req       wire.Request
	keys      *ticketKeys
	redirect  wire.Redirect
	ticket    []byte
	backups   []netip.AddrPort
	scratch   []byte                    // the answer, before it is sealed in a handoff
	assigned  map[string]uint64         // assignments per node, by this goroutine, as of the last TakePicks
	count     func(id string, n uint64) // adds to assigned: asg.TakePicks's callback, bound once

	// assignedCopy is assigned as of the last view change, for metrics; the
	// serving goroutine copies into it (allocating only for a new node)
	// under assignedMu, which nothing else on the probe path takes.
	assignedMu   sync.Mutex
	assignedCopy map[string]uint64

	answered atomic.Uint64
	drops    dropCounters
}

// NewResponder returns a responder that is not serving yet.
func NewResponder(cfg ResponderConfig) *Responder {
	if cfg.Serving == nil {
		cfg.Serving = Solo
	}
	if cfg.View == nil {
		cfg.View = new(atomic.Pointer[assign.View])
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	r := &Responder{
		cfg: cfg,
		log: cfg.Logger,
		key: cfg.TicketKey,
	}
	r.prober.init(r, cfg.Rand)
	return r
}

// init prepares p to serve for r, picking servers with rng.
func (p *prober) init(r *Responder, rng *rand.Rand) {
	p.r = r
	p.keys = newTicketKeys(r.key)
	p.rng = rng
	p.asg = assign.New(r.cfg.Assign, p.clock, rng)
	p.ticket = make([]byte, 0, wire.MaxTicketLen)
	p.backups = make([]netip.AddrPort, 0, wire.MaxBackups)
	p.scratch = make([]byte, 0, maxDatagram)
	p.assigned = make(map[string]uint64)
	p.count = func(id string, n uint64) { p.assigned[id] += n }
	p.assignedCopy = make(map[string]uint64)
}

// probers returns the probers for n sockets, making any missing ones. It
// is called with r.mu held and no goroutine serving.
func (r *Responder) probers(n int) []*prober {
	for len(r.more) < n-1 {
		p := new(prober)
		p.init(r, rand.New(rand.NewPCG(r.cfg.Rand.Uint64(), r.cfg.Rand.Uint64())))
		r.more = append(r.more, p)
	}
	return append([]*prober{&r.prober}, r.more[:n-1]...)
}

// Listen opens a UDP socket on addr and serves it. The responder owns that
// socket: Close closes it.
func (r *Responder) Listen(addr netip.AddrPort) error {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return fmt.Errorf("probe responder: %w", err)
	}
	r.mu.Lock()
	old := r.owned
	r.owned = conn
	r.mu.Unlock()
	r.Serve(conn)
	if old != nil {
		old.Close()
	}
	return nil
}

// Serve starts answering probes on conn in a new goroutine and returns. If
// the responder was serving another socket, it stops that first. conn stays
// the caller's: Stop does not close it, and if the caller closes it the
// goroutine ends by itself. With Sockets > 1, Serve also opens the
// SO_REUSEPORT siblings (and Stop closes them).
func (r *Responder) Serve(conn *net.UDPConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopLocked()
	conns := []*net.UDPConn{conn}
	if r.cfg.Sockets > 1 {
		sib, err := udpio.ListenSiblings(conn, r.cfg.Sockets-1)
		if err != nil {
			r.log.Warn("answering on one socket only", "error", err)
		}
		r.siblings = sib
		conns = append(conns, sib...)
	}
	if r.cfg.ReadBuffer > 0 {
		for _, c := range conns {
			if err := udpio.SizeReadBuffer(c, r.cfg.ReadBuffer); err != nil {
				r.log.Warn("cannot size the receive buffer", "bytes", r.cfg.ReadBuffer, "error", err)
			}
		}
	}
	r.conn = conn
	r.stop = make(chan struct{})
	for i, p := range r.probers(len(conns)) {
		r.wg.Add(1)
		go func(c *net.UDPConn, stop <-chan struct{}) {
			defer r.wg.Done()
			switch {
			case r.cfg.Batch:
				p.serveBatch(c, stop)
			case r.portable:
				p.serve(c, stop)
			default:
				p.serveRaw(c, stop)
			}
		}(conns[i], r.stop)
	}
	r.log.Info("answering probes", "addr", conn.LocalAddr(), "sockets", len(conns), "batch", r.cfg.Batch)
}

// Stop stops answering probes and waits for the serving goroutine to end.
// It leaves the socket open. It does nothing if the responder is not
// serving.
func (r *Responder) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopLocked()
}

// stopLocked is Stop with r.mu held.
func (r *Responder) stopLocked() {
	if r.conn == nil {
		return
	}
	close(r.stop)
	// A deadline in the past wakes the goroutines from their reads.
	r.conn.SetReadDeadline(time.Unix(1, 0))
	for _, c := range r.siblings {
		c.SetReadDeadline(time.Unix(1, 0))
	}
	r.wg.Wait()
	r.conn.SetReadDeadline(time.Time{})
	for _, c := range r.siblings {
		c.Close()
	}
	r.log.Info("stopped answering probes", "addr", r.conn.LocalAddr())
	r.conn, r.siblings, r.stop = nil, nil, nil
}

// Close stops the responder and closes the socket Listen opened, if any. It
// is idempotent, and the responder may Serve again afterwards.
func (r *Responder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopLocked()
	if r.owned == nil {
		return nil
	}
	err := r.owned.Close()
	r.owned = nil
	return err
}

// Addr returns the address being served, or the zero value when the
// responder is not serving.
func (r *Responder) Addr() netip.AddrPort {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn == nil {
		return netip.AddrPort{}
	}
	return unmapAddrPort(r.conn.LocalAddr().(*net.UDPAddr).AddrPort())
}

// Serving reports whether the responder is answering on a socket.
func (r *Responder) Serving() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conn != nil
}

// Stats returns the responder's counters, summed over its sockets.
func (r *Responder) Stats() ResponderStats {
	r.mu.Lock()
	ps := append([]*prober{&r.prober}, r.more...)
	r.mu.Unlock()
	st := ResponderStats{Drops: make(map[string]uint64)}
	for _, p := range ps {
		st.Answered += p.answered.Load()
		for k, n := range p.drops.snapshot() {
			st.Drops[k] += n
		}
	}
	return st
}

// serve is the goroutine that reads and answers probes on conn, one at a
// time through the net package, until stop is closed or conn is. It is the
// portable loop: on Linux serveRaw does the same work with less overhead
// per probe.
func (p *prober) serve(conn *net.UDPConn, stop <-chan struct{}) {
	r := p.r
	buf := make([]byte, maxDatagram)
	out := make([]byte, 0, maxDatagram)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if p.readFailed(err, stop) {
				return
			}
			continue
		}
		from = unmapAddrPort(from)
		ans, to, why := p.respond(out[:0], buf[:n], from, r.cfg.Now())
		if why != dropNone {
			p.drops.add(why)
			continue
		}
		if _, err := conn.WriteToUDPAddrPort(ans, to); err != nil {
			p.drops.add(dropWriteError)
			continue
		}
		p.answered.Add(1)
	}
}

// clock is the assigner's clock: the time the datagrams being answered were
// read. One clock reading serves a whole batch (its datagrams arrived
// within microseconds of each other), which saves several readings per
// probe (BenchmarkResponderAnswer).
func (p *prober) clock() time.Time { return p.now }

// readFailed handles a failed read of the serving loop and reports whether
// the loop should end: when stop is closed or the socket is.
func (p *prober) readFailed(err error, stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
	}
	if errors.Is(err, net.ErrClosed) {
		return true
	}
	p.r.log.Debug("read failed", "error", err)
	return false
}

// respond decides what to send for the probe pkt from from, read at now,
// and where: the redirect itself, to the client, or, when the assigned
// server answers (Handoff), the redirect sealed in a handoff, to that
// server.
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
	h := wire.Handoff{Client: from, Sent: uint32(now.Unix()), Answer: ans}
	out, err := p.keys.sealer().AppendHandoff(dst, &h)
	if err != nil {
		return dst, from, dropTooLarge
	}
	return out, p.redirect.Server, dropNone
}

// Assigned returns how many sessions this responder assigned to each node,
// as of each socket's last view change.
func (r *Responder) Assigned() map[string]uint64 {
	r.mu.Lock()
	ps := append([]*prober{&r.prober}, r.more...)
	r.mu.Unlock()
	m := make(map[string]uint64)
	for _, p := range ps {
		p.assignedMu.Lock()
		for k, n := range p.assignedCopy {
			m[k] += n
		}
		p.assignedMu.Unlock()
	}
	return m
}

// answerAt decides the redirect for the probe pkt from the client at from,
// read at now, and appends it to dst, or says why there is none. It is the
// whole per-probe decision and does not allocate in steady state. Only one
// goroutine at a time may call it.
func (p *prober) answerAt(dst, pkt []byte, from netip.AddrPort, now time.Time) ([]byte, dropReason) {
	r := p.r
	p.now = now
	req := &p.req
	if err := p.dec.DecodeRequest(pkt, req); err != nil {
		return dst, decodeDrop(err)
	}
	if len(req.Service) != 0 && string(req.Service) != "default" {
		return dst, dropUnknownService
	}
	term, ok := r.cfg.Serving()
	if !ok {
		return dst, dropNotLeader
	}
	if term != p.term {
		// A new term is a new leader's ledger: this node does not know
		// what was assigned under the last term, so it starts cold (p2c
		// until its view has caught up; see assign.Config) rather than
		// trusting counts it never made.
		if p.term != 0 {
			p.asg.TakePicks(p.count)
			p.asg = assign.New(r.cfg.Assign, p.clock, p.rng)
			p.installed = nil
		}
		p.term = term
	}
	if v := r.cfg.View.Load(); v != p.installed {
		p.asg.TakePicks(p.count)
		p.asg.SetView(v)
		p.installed = v
		p.assignedMu.Lock()
		maps.Copy(p.assignedCopy, p.assigned)
		p.assignedMu.Unlock()
	}
	if req.LostServer.IsValid() && r.cfg.LostServer != nil {
		r.cfg.LostServer(req.LostServer)
	}
	// The pick (and its backups) never hands a client the server it
	// reported lost; whether other clients still get that server is the
	// verifier's call, not this one's.
	backups := 0
	if req.HasSession {
		backups = r.cfg.Backups
	}
	n, bk, err := p.asg.PickWithBackups(assign.SessionID(req.Session), req.LostServer, p.backups[:0], backups)
	if err != nil {
		return dst, dropNoServer
	}
	p.backups = bk
	rd := &p.redirect
	*rd = wire.Redirect{Server: n.Addr, Term: term}
	if req.HasSession {
		expiry := now.Add(r.cfg.TicketTTL).Unix()
		p.ticket = p.keys.ticketer().Append(p.ticket[:0], req.Session, from, n.Addr, uint32(expiry))
		rd.Ticket = p.ticket
		rd.Interval, rd.DeadAfter = r.cfg.KeepaliveInterval, r.cfg.DeadAfter
		if len(p.backups) > 0 {
			rd.Backups = p.backups
		}
	}
	out, err := p.enc.AppendRedirect(dst, req, rd, wire.Limit(req, r.cfg.StockAmplification))
	if err != nil {
		return dst, dropTooLarge
	}
	return out, dropNone
}

// SetTicketKey replaces the key tickets are issued with, from the next
// probe on. It is safe from any goroutine.
func (r *Responder) SetTicketKey(key []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.key = append([]byte(nil), key...)
	r.prober.keys.set(key)
	for _, p := range r.more {
		p.keys.set(key)
	}
}
