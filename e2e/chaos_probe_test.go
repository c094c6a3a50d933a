//go:build linux

package e2e

import (
	"crypto/rand"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/wire"
)

// stockAmplification is the agents' stock_amplification: the chaos agents
// run with the default, so a stock request's answer may be three times its
// size (docs/protocol.md, "The size rule").
const stockAmplification = 3

// probeKind is one kind of request a prober sends, with what the size rule
// allows its answer.
type probeKind struct {
	name string
	// stock marks a request without USHER-SESSION: its answer may be
	// stockAmplification times its size, an Usher request's no larger
	// than the request.
	stock bool
	// build appends the request, with transaction ID tx, to buf.
	build func(enc *wire.Encoder, buf []byte, tx [stun.TransactionIDSize]byte) []byte
}

// limit is the largest answer the size rule allows to a request of req
// bytes of kind k.
func (k *probeKind) limit(req int) int {
	if k.stock {
		return stockAmplification * req
	}
	return req
}

// usherProbe is an Usher probe with a fresh session, padded to padTo bytes
// (0: not padded, 40 bytes).
func usherProbe(name string, padTo int) *probeKind {
	return &probeKind{name: name, build: func(enc *wire.Encoder, buf []byte, tx [stun.TransactionIDSize]byte) []byte {
		p := wire.Probe{TxID: tx, PadTo: padTo}
		rand.Read(p.Session[:])
		out, _ := enc.AppendProbe(buf, &p)
		return out
	}}
}

// The kinds of request the probers send.
var (
	// probePadded is what clients send: padded to wire.ProbeSize, so the
	// whole redirect fits.
	probePadded = usherProbe("probe-padded", wire.ProbeSize)
	// probeBare is an Usher probe without padding (40 bytes): the
	// redirect must shrink to its required attributes.
	probeBare = usherProbe("probe-bare", 0)
	// probeSmall has room for USHER-TERM and USHER-TIMERS but not the
	// ticket (72 bytes).
	probeSmall = usherProbe("probe-72", 72)
	// stockBinding is a stock STUN Binding request: a bare 20-byte header.
	stockBinding = &probeKind{name: "stock-binding", stock: true, build: func(_ *wire.Encoder, buf []byte, tx [stun.TransactionIDSize]byte) []byte {
		m := &stun.Message{Type: stun.BindingRequest, TransactionID: tx}
		m.WriteHeader()
		return append(buf, m.Raw...)
	}}
	// stockAllocate is a stock TURN Allocate request as a TURN client
	// starts one: REQUESTED-TRANSPORT UDP and FINGERPRINT (36 bytes).
	stockAllocate = &probeKind{name: "stock-allocate", stock: true, build: func(_ *wire.Encoder, buf []byte, tx [stun.TransactionIDSize]byte) []byte {
		m := &stun.Message{Type: stun.NewType(stun.MethodAllocate, stun.ClassRequest), TransactionID: tx}
		m.WriteHeader()
		m.Add(stun.AttrRequestedTransport, []byte{17, 0, 0, 0})
		_ = stun.Fingerprint.AddTo(m)
		return append(buf, m.Raw...)
	}}
)

// keepaliveBare is an Usher keepalive without ticket or padding (40 bytes)
// in session s: one session per prober and server, so the probing adds
// one session to each server's load.
func keepaliveBare(s wire.SessionID) *probeKind {
	return &probeKind{name: "keepalive-bare", build: func(enc *wire.Encoder, buf []byte, tx [stun.TransactionIDSize]byte) []byte {
		out, _ := enc.AppendKeepalive(buf, &wire.Keepalive{TxID: tx, Session: s})
		return out
	}}
}

// target is one destination of a prober and the kind of request it gets.
type target struct {
	to   netip.AddrPort
	kind *probeKind
	vip  bool // the balancer address, which must answer with a redirect
}

// answer is one request answered, timed on Monotonic: sent is read before
// the request was sent, recv when its answer had been read.
type answer struct {
	sent, recv time.Duration
	term       uint64
	server     netip.AddrPort
	size, req  int
	kind       *probeKind
	vip        bool
	// redirect: a 300 Try Alternate of the request's method.
	redirect bool
	// success: a success response of the request's method (what a stock
	// Binding gets at the VIP, as anywhere).
	success bool
	// code is the error code of an error response (0 for a success).
	code stun.ErrorCode
}

// pendingReq is a request sent and not yet answered.
type pendingReq struct {
	sent   time.Duration
	size   int
	method stun.Method
	t      *target
}

// prober sends a fresh request (new transaction; for a probe, a new
// session) from the client host every interval, to its targets in turn,
// and records every answer.
type prober struct {
	conn    *net.UDPConn
	targets []target
	every   time.Duration

	mu      sync.Mutex
	pending map[[stun.TransactionIDSize]byte]pendingReq
	answers []answer
	sent    int
	// unmatched counts answers to no pending request: a second answer
	// to one request, or an answer to one pruned after 5 s.
	unmatched int

	stop chan struct{}
	wg   sync.WaitGroup
}

// startProber starts the prober the scenarios time failovers with: a
// padded probe to the VIP every interval.
func startProber(c *chaosCluster, every time.Duration) *prober {
	return startProberTo(c, every, []target{{to: netip.AddrPortFrom(c.topo.VIP(), vipPort), kind: probePadded, vip: true}})
}

// startSizeProber starts a prober that checks the size rule on requests of
// every kind: bare, small and stock probes to the VIP, and stock Binding
// requests and bare keepalives to every agent's session endpoint.
func startSizeProber(c *chaosCluster, every time.Duration) *prober {
	vip := netip.AddrPortFrom(c.topo.VIP(), vipPort)
	ts := []target{
		{to: vip, kind: probeBare, vip: true},
		{to: vip, kind: probeSmall, vip: true},
		{to: vip, kind: stockBinding, vip: true},
		{to: vip, kind: stockAllocate, vip: true},
	}
	for _, a := range c.agents {
		var s wire.SessionID
		rand.Read(s[:])
		ts = append(ts, target{to: a.sessionAddr(), kind: stockBinding}, target{to: a.sessionAddr(), kind: keepaliveBare(s)})
	}
	return startProberTo(c, every, ts)
}

// startProberTo opens a prober's socket on the client host and starts
// sending to targets.
func startProberTo(c *chaosCluster, every time.Duration, targets []target) *prober {
	c.t.Helper()
	cl := c.topo.Client()
	p := &prober{
		targets: targets, every: every,
		pending: make(map[[stun.TransactionIDSize]byte]pendingReq), stop: make(chan struct{}),
	}
	if err := cl.Do(func() (err error) {
		p.conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: cl.Addr.AsSlice()})
		return err
	}); err != nil {
		c.t.Fatalf("prober socket: %v", err)
	}
	p.wg.Add(2)
	go p.send()
	go p.read()
	c.t.Cleanup(p.close)
	return p
}

// close stops the prober; it is idempotent.
func (p *prober) close() {
	select {
	case <-p.stop:
		return
	default:
	}
	close(p.stop)
	p.conn.Close()
	p.wg.Wait()
}

// send sends the requests, every p.every, from a thread of its own at
// proberNice, sleeping in the kernel between sends (see lockNiced).
func (p *prober) send() {
	defer p.wg.Done()
	lockNiced(proberNice)
	var enc wire.Encoder
	var buf []byte
	next := Monotonic()
	for i := 0; ; i++ {
		tg := &p.targets[i%len(p.targets)]
		var tx [stun.TransactionIDSize]byte
		rand.Read(tx[:])
		buf = tg.kind.build(&enc, buf[:0], tx)
		if len(buf) > 0 {
			p.sendOne(buf, tx, tg)
		}
		select {
		case <-p.stop:
			return
		default:
		}
		// Late (the thread was kept from running), the prober sends at
		// once and keeps its interval from then, as a ticker drops the
		// ticks it missed.
		next = max(next+p.every, Monotonic())
		sleepUntil(next)
	}
}

// sendOne records the request buf, with transaction tx, as pending, then
// sends it to tg.
func (p *prober) sendOne(buf []byte, tx [stun.TransactionIDSize]byte, tg *target) {
	// Read the clock under the lock, so that a window counted by sentBy
	// holds exactly the requests sent before it.
	p.mu.Lock()
	now := Monotonic()
	p.pending[tx] = pendingReq{sent: now, size: len(buf), method: methodOf(buf), t: tg}
	p.sent++
	if p.sent%500 == 0 {
		for id, r := range p.pending {
			if now-r.sent > 5*time.Second {
				delete(p.pending, id)
			}
		}
	}
	p.mu.Unlock()
	// A send error (no route, link down) is a lost request.
	_, _ = p.conn.WriteToUDPAddrPort(buf, tg.to)
}

// read records every answer, from a thread of its own at proberNice,
// waiting in poll(2) (see readPolled).
func (p *prober) read() {
	defer p.wg.Done()
	lockNiced(proberNice)
	var dec wire.Decoder
	var r wire.Response
	_ = readPolled(p.conn, p.stop, make([]byte, 2048), func(b []byte, now time.Duration) {
		if dec.DecodeResponse(b, &r) == nil {
			p.record(&r, len(b), now)
		}
	})
}

// record matches the answer r, n bytes read at now, to its pending
// request and keeps it.
func (p *prober) record(r *wire.Response, n int, now time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	req, ok := p.pending[r.TxID]
	if !ok {
		p.unmatched++
		return
	}
	delete(p.pending, r.TxID)
	p.answers = append(p.answers, answer{
		sent: req.sent, recv: now, term: r.Term, server: r.Server,
		size: n, req: req.size, kind: req.t.kind, vip: req.t.vip,
		redirect: !r.Success && r.Code == stun.CodeTryAlternate && r.Method == req.method,
		success:  r.Success && r.Method == req.method,
		code:     r.Code,
	})
}

// methodOf returns the method of the STUN message b (a header at least).
func methodOf(b []byte) stun.Method {
	var t stun.MessageType
	t.ReadValue(uint16(b[0])<<8 | uint16(b[1]))
	return t.Method
}

// snapshot returns a copy of the answers so far, in arrival order.
func (p *prober) snapshot() []answer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]answer(nil), p.answers...)
}

// firstAfter returns the arrival of the first answer to a probe sent at or
// after t0, waiting up to timeout for it.
func (p *prober) firstAfter(t0, timeout time.Duration) (answer, bool) {
	return p.firstWhere(timeout, func(a answer) bool { return a.sent >= t0 })
}

// firstWhere returns the first answer, among those recorded and those to
// come, for which match holds, waiting up to timeout for it.
func (p *prober) firstWhere(timeout time.Duration, match func(answer) bool) (answer, bool) {
	deadline := time.Now().Add(timeout)
	seen := 0
	for {
		p.mu.Lock()
		for _, a := range p.answers[seen:] {
			if match(a) {
				p.mu.Unlock()
				return a, true
			}
		}
		seen = len(p.answers)
		p.mu.Unlock()
		if time.Now().After(deadline) {
			return answer{}, false
		}
		time.Sleep(2 * time.Millisecond)
	}
}
