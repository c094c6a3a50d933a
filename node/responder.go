package node

import (
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/usherlb/usher/assign"
	"github.com/usherlb/usher/internal/srclimit"
	"github.com/usherlb/usher/internal/udpio"
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
	// ServiceViews is where the newest views of the named services are
	// published; nil (or a nil map) means the farm has none, and a probe
	// naming one is dropped (unknown_service).
	ServiceViews *atomic.Pointer[ServiceViews]
	// StockService names the service a stock STUN or TURN request (one
	// without USHER-SESSION) is balanced over (vip_service); empty or
	// "default" means the built-in session endpoint.
	StockService string
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
	// RetryAfter is the USHER-RETRY-AFTER an Usher probe gets with its
	// overload answer, when no server can take it; zero means 2 seconds.
	RetryAfter time.Duration
	// RedirectStockBinding answers a stock STUN Binding request (one
	// without USHER-SESSION) with a redirect, as an Usher probe is
	// answered (stock_binding = "redirect"). By default the responder
	// answers it as any STUN server does, with a Binding success naming
	// the request's source in XOR-MAPPED-ADDRESS: that is what a browser
	// sends its STUN or TURN server to learn its server-reflexive
	// candidate, and it ignores a 300. Such an answer takes no pick.
	RedirectStockBinding bool
	// TURNAuth, when set, is strict mode (the turn_auth block): a stock
	// TURN Allocate must present its long-term credentials, and its
	// redirect is signed with MESSAGE-INTEGRITY.
	TURNAuth *TURNAuth
	// Handoff makes the assigned server send the answer (respond_from =
	// "server"): the responder seals it in a handoff to the server's
	// session endpoint, which relays it to the client from its own address.
	// It applies to Usher probes only: a stock client drops an answer
	// from an address it never sent to, so the responder answers a stock
	// request (a redirect or a Binding success) itself.
	Handoff bool
	// LostServer, if set, is told of every server a probe names in
	// USHER-LOST-SERVER, so the leader can check it. It must not block.
	LostServer func(netip.AddrPort)
	// SourceLimit limits how many datagrams each source prefix has
	// answered (see srclimit); a zero Rate turns the limit off. Every
	// serving goroutine keeps its own table, keyed from Rand, and with
	// Sockets > 1 enforces an equal share of Rate and Burst (the kernel
	// spreads one prefix's source ports over the sockets); a datagram
	// over the limit is dropped (rate_limited) before it is decoded, and
	// over TCP and TLS a connection over the limit is closed as it is
	// accepted.
	SourceLimit srclimit.Config
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

	// TCP also answers STUN requests over TCP on the balancer address
	// while it is served (see tcpServer in responder_tcp.go): on TCPPort,
	// or, when that is zero, on the port of the UDP socket served. At most
	// TCPConns connections are open at once (zero means 256), each for at
	// most TCPTimeout (zero means 2 s).
	TCP        bool
	TCPPort    uint16
	TCPConns   int
	TCPTimeout time.Duration

	// TLSPort, when not zero, also answers STUN requests over TLS on that
	// port of the balancer address while it is served, as over TCP and
	// within the same bounds (TCPConns more connections, TCPTimeout each,
	// handshake included), presenting the certificate TLSCertificate
	// returns at each handshake (nil leaves TLS off). A redirect sent over
	// TLS carries the alternate's domain name (ALTERNATE-DOMAIN) when the
	// chosen server's service has one.
	TLSPort        uint16
	TLSCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

// ResponderStats counts what a Responder did.
type ResponderStats struct {
	// Answered is the number of probes answered with a redirect.
	Answered uint64
	// Overloaded is the number of requests answered with an overload
	// answer (508, or 500 to a stock Binding) because no server could
	// take them; a refusal that does not fit the size rule is dropped as
	// no_server instead.
	Overloaded uint64
	// UnknownAttribute is the number of 420 Unknown Attribute answers.
	UnknownAttribute uint64
	// StockBindings is the number of stock STUN Binding requests answered
	// with a Binding success (see ResponderConfig.RedirectStockBinding).
	StockBindings uint64
	// Drops counts dropped datagrams by reason.
	Drops map[string]uint64
}

// Responder answers probes on the balancer address. It owns one goroutine
// per socket it serves: that goroutine reads a probe, checks that the node
// is serving, picks a server with the responder's Assigner (which only it
// touches), mints a ticket and sends the redirect to the probe's source,
// never larger than the size rule allows. A stock STUN Binding request is
// answered as a STUN server answers it, with the source's address and no
// pick (unless RedirectStockBinding). Anything else is dropped and counted
// by reason.
//
// Serve starts answering on a socket and Stop ends it, any number of times
// in turn, so whatever holds the VIP can start and stop the responder as the
// address comes and goes. Stop leaves the socket open: it belongs to whoever
// passed it to Serve (in netlink mode it stays bound for the agent's life).
type Responder struct {
	cfg ResponderConfig
	log hclog.Logger

	mu       sync.Mutex
	conn     *net.UDPConn   // the socket being served; nil when not serving
	siblings []*net.UDPConn // SO_REUSEPORT sockets Serve opened; Stop closes them
	stop     chan struct{}  // closed by Stop to end the serving goroutines
	wg       sync.WaitGroup // the serving goroutines
	owned    *net.UDPConn   // the socket Listen opened, closed by Close
	key      []byte         // the newest ticket key, for new probers

	// open puts the udpio back-end that reads and writes a socket on each
	// socket served: openConn, unless a test puts another
	// (responder_export_test.go).
	open func(*net.UDPConn) udpio.Conn

	// prober serves the first socket (and a test calling answer);
	// more[i] serves sibling i. They outlive Serve and Stop, so their
	// counts add up over the responder's life.
	prober
	more []*prober

	// tcp answers over TCP while the responder serves (ResponderConfig.TCP),
	// tls over TLS (ResponderConfig.TLSPort).
	tcp, tls tcpServer
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
		// Breaks ties between equally loaded servers; nothing secret
		// hangs on it (tickets are keyed with SipHash).
		cfg.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())) //nolint:gosec // G404: see above
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = defaultRetryAfter
	}
	r := &Responder{
		cfg: cfg,
		log: cfg.Logger,
		key: cfg.TicketKey,
	}
	r.open = r.openConn
	r.prober.init(r, cfg.Rand, max(cfg.Sockets, 1))
	r.tcp.init(r)
	r.tls.initTLS(r)
	return r
}

// probers returns the probers for n sockets, making any missing ones. It
// is called with r.mu held and no goroutine serving.
func (r *Responder) probers(n int) []*prober {
	for len(r.more) < n-1 {
		p := new(prober)
		p.init(r, rand.New(rand.NewPCG(r.cfg.Rand.Uint64(), r.cfg.Rand.Uint64())), max(r.cfg.Sockets, 1)) //nolint:gosec // G404: tie-breaking, as cfg.Rand
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
// SO_REUSEPORT siblings (and Stop closes them); with TCP, it also listens on
// TCP at conn's address (and Stop closes that listener and its
// connections), so the TCP listener follows the balancer address wherever
// the VIP holder serves it.
func (r *Responder) Serve(conn *net.UDPConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopLocked()
	conns := r.sockets(conn)
	r.conn = conn
	stop := make(chan struct{})
	r.stop = stop
	for i, p := range r.probers(len(conns)) {
		c := r.open(conns[i])
		r.wg.Go(func() { p.serve(c, stop) })
	}
	r.tcp.start(conn)
	r.tls.start(conn)
	r.log.Info("answering probes", "addr", conn.LocalAddr(), "sockets", len(conns), "batch", r.cfg.Batch)
}

// sockets returns the sockets to serve for conn: conn and the siblings
// Sockets asks for (kept in r.siblings), each with the receive buffer
// ReadBuffer asks for. What cannot be had is logged and done without. It
// is called with r.mu held.
func (r *Responder) sockets(conn *net.UDPConn) []*net.UDPConn {
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
	return conns
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
	r.tcp.stop()
	r.tls.stop()
	// A deadline in the past wakes the goroutines from their reads. It
	// fails only on a closed socket, whose reads have ended anyway.
	_ = r.conn.SetReadDeadline(time.Unix(1, 0))
	for _, c := range r.siblings {
		_ = c.SetReadDeadline(time.Unix(1, 0))
	}
	r.wg.Wait()
	_ = r.conn.SetReadDeadline(time.Time{})
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
	ps := append([]*prober{&r.prober, &r.tcp.p, &r.tls.p}, r.more...)
	r.mu.Unlock()
	st := ResponderStats{Drops: make(map[string]uint64)}
	for _, p := range ps {
		st.Answered += p.answered.Load()
		st.StockBindings += p.stockBindings.Load()
		st.Overloaded += p.overloaded.Load()
		st.UnknownAttribute += p.unknownAttr.Load()
		for k, n := range p.drops.snapshot() {
			st.Drops[k] += n
		}
	}
	return st
}

// Assigned returns how many sessions this responder assigned to each node,
// as of each socket's last view change.
func (r *Responder) Assigned() map[string]uint64 {
	r.mu.Lock()
	ps := append([]*prober{&r.prober, &r.tcp.p, &r.tls.p}, r.more...)
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

// SetTicketKey replaces the key tickets are issued with, from the next
// probe on. It is safe from any goroutine.
func (r *Responder) SetTicketKey(key []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.key = append([]byte(nil), key...)
	r.prober.keys.set(key)
	r.tcp.p.keys.set(key)
	r.tls.p.keys.set(key)
	for _, p := range r.more {
		p.keys.set(key)
	}
}
