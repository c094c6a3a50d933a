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
	"github.com/usherlb/usher/wire"
)

// ServingFunc reports whether this node may answer probes now and, if so,
// the leadership term to put in answers. It is called once per probe, so it
// must be cheap and must not block or allocate.
type ServingFunc func() (term uint64, ok bool)

// Solo is the ServingFunc of a node that is its own cluster: it always
// serves, in term 1.
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

	mu    sync.Mutex
	conn  *net.UDPConn  // the socket being served; nil when not serving
	stop  chan struct{} // closed by Stop to end the serving goroutine
	done  chan struct{} // closed by the serving goroutine as it ends
	owned *net.UDPConn  // the socket Listen opened, closed by Close

	// Owned by the serving goroutine (one at a time), or by a test calling
	// answer directly.
	asg       *assign.Assigner
	installed *assign.View
	dec       wire.Decoder
	enc       wire.Encoder
	req       wire.Request
	keys      *ticketKeys
	redirect  wire.Redirect
	ticket    []byte
	backups   []netip.AddrPort
	scratch   []byte            // the answer, before it is sealed in a handoff
	assigned  map[string]uint64 // assignments per node, by this goroutine

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
	return &Responder{
		cfg:      cfg,
		log:      cfg.Logger,
		asg:      assign.New(cfg.Assign, cfg.Now, cfg.Rand),
		keys:     newTicketKeys(cfg.TicketKey),
		ticket:   make([]byte, 0, wire.MaxTicketLen),
		backups:  make([]netip.AddrPort, 0, wire.MaxBackups),
		scratch:  make([]byte, 0, maxDatagram),
		assigned: make(map[string]uint64),

		assignedCopy: make(map[string]uint64),
	}
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
// goroutine ends by itself.
func (r *Responder) Serve(conn *net.UDPConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopLocked()
	r.conn = conn
	r.stop, r.done = make(chan struct{}), make(chan struct{})
	go r.serve(conn, r.stop, r.done)
	r.log.Info("answering probes", "addr", conn.LocalAddr())
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
	// A deadline in the past wakes the goroutine from its read.
	r.conn.SetReadDeadline(time.Unix(1, 0))
	<-r.done
	r.conn.SetReadDeadline(time.Time{})
	r.log.Info("stopped answering probes", "addr", r.conn.LocalAddr())
	r.conn, r.stop, r.done = nil, nil, nil
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

// Stats returns the responder's counters.
func (r *Responder) Stats() ResponderStats {
	return ResponderStats{Answered: r.answered.Load(), Drops: r.drops.snapshot()}
}

// serve is the goroutine that reads and answers probes on conn until stop
// is closed or conn is.
func (r *Responder) serve(conn *net.UDPConn, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	buf := make([]byte, maxDatagram)
	out := make([]byte, 0, maxDatagram)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			select {
			case <-stop:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			r.log.Debug("read failed", "error", err)
			continue
		}
		from = unmapAddrPort(from)
		ans, to, why := r.respond(out[:0], buf[:n], from)
		if why != dropNone {
			r.drops.add(why)
			continue
		}
		if _, err := conn.WriteToUDPAddrPort(ans, to); err != nil {
			r.drops.add(dropWriteError)
			continue
		}
		r.answered.Add(1)
	}
}

// respond decides what to send for the probe pkt from from, and where: the
// redirect itself, to the client, or, when the assigned server answers
// (Handoff), the redirect sealed in a handoff, to that server.
func (r *Responder) respond(dst, pkt []byte, from netip.AddrPort) ([]byte, netip.AddrPort, dropReason) {
	if !r.cfg.Handoff {
		out, why := r.answer(dst, pkt, from)
		return out, from, why
	}
	ans, why := r.answer(r.scratch[:0], pkt, from)
	if why != dropNone {
		return dst, from, why
	}
	h := wire.Handoff{Client: from, Sent: uint32(r.cfg.Now().Unix()), Answer: ans}
	out, err := r.keys.sealer().AppendHandoff(dst, &h)
	if err != nil {
		return dst, from, dropTooLarge
	}
	return out, r.redirect.Server, dropNone
}

// Assigned returns how many sessions this responder assigned to each node,
// as of its last view change.
func (r *Responder) Assigned() map[string]uint64 {
	r.assignedMu.Lock()
	defer r.assignedMu.Unlock()
	return maps.Clone(r.assignedCopy)
}

// answer decides the redirect for the probe pkt from the client at from and
// appends it to dst, or says why there is none. It is the whole per-probe
// decision and does not allocate in steady state. Only one goroutine at a
// time may call it.
func (r *Responder) answer(dst, pkt []byte, from netip.AddrPort) ([]byte, dropReason) {
	req := &r.req
	if err := r.dec.DecodeRequest(pkt, req); err != nil {
		return dst, decodeDrop(err)
	}
	if len(req.Service) != 0 && string(req.Service) != "default" {
		return dst, dropUnknownService
	}
	term, ok := r.cfg.Serving()
	if !ok {
		return dst, dropNotLeader
	}
	if v := r.cfg.View.Load(); v != r.installed {
		r.asg.SetView(v)
		r.installed = v
		r.assignedMu.Lock()
		maps.Copy(r.assignedCopy, r.assigned)
		r.assignedMu.Unlock()
	}
	if req.LostServer.IsValid() && r.cfg.LostServer != nil {
		r.cfg.LostServer(req.LostServer)
	}
	n, err := r.asg.Pick(assign.SessionID(req.Session), req.LostServer)
	if err != nil && req.LostServer.IsValid() {
		// The client's word alone does not take a server out of service:
		// if the one it lost is the only one left, it gets it again.
		n, err = r.asg.Pick(assign.SessionID(req.Session), netip.AddrPort{})
	}
	if err != nil {
		return dst, dropNoServer
	}
	r.assigned[n.ID]++
	rd := &r.redirect
	*rd = wire.Redirect{Server: n.Addr, Term: term}
	if req.HasSession {
		expiry := r.cfg.Now().Add(r.cfg.TicketTTL).Unix()
		r.ticket = r.keys.ticketer().Append(r.ticket[:0], req.Session, from, n.Addr, uint32(expiry))
		rd.Ticket = r.ticket
		rd.Interval, rd.DeadAfter = r.cfg.KeepaliveInterval, r.cfg.DeadAfter
		if r.cfg.Backups > 0 {
			r.backups = r.asg.Backups(r.backups[:0], r.cfg.Backups, n.Addr)
			rd.Backups = r.backups
		}
	}
	out, err := r.enc.AppendRedirect(dst, req, rd, wire.Limit(req, r.cfg.StockAmplification))
	if err != nil {
		return dst, dropTooLarge
	}
	return out, dropNone
}

// SetTicketKey replaces the key tickets are issued with, from the next
// probe on. It is safe from any goroutine.
func (r *Responder) SetTicketKey(key []byte) { r.keys.set(key) }
