package node

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/usherlb/usher/internal/srclimit"
)

// Defaults of the TCP listener's bounds (see ResponderConfig).
const (
	defaultTCPConns   = 256
	defaultTCPTimeout = 2 * time.Second
)

// maxTCPMessage is the largest STUN message read from a TCP connection: the
// largest datagram the UDP path reads, so that both decide the same
// requests.
const maxTCPMessage = maxDatagram

// stunHeaderLen is the length of a STUN message's header, and stunCookie the
// magic cookie it carries (RFC 8489 §5).
const (
	stunHeaderLen = 20
	stunCookie    = 0x2112A442
)

// tcpServer answers STUN requests over TCP on the balancer address (RFC 8489
// §6.2.2), for clients whose UDP is blocked: a browser configured with
// turn:VIP:3478?transport=tcp. It answers the first request of each
// connection with what the UDP path answers for it (an Allocate gets the
// 300 naming the assigned server, a stock Binding a Binding success naming
// the connection's peer), then closes the connection; a TURN client then
// connects to the alternate. It listens only while the responder serves
// (Serve starts it, Stop ends it), so it moves with the balancer address,
// and each answer is gated by Serving as on UDP.
//
// Its connections are unauthenticated, so their cost is bounded: at most
// TCPConns at once (an excess one is closed at once), TCPTimeout for a
// connection's whole life, and maxTCPMessage per message.
//
// A Responder has two: one for TCP, and one for TLS (RFC 8489 §6.2.3),
// for clients configured with turns:VIP:5349, that runs the TLS handshake
// on each connection, within the same deadline, before reading the
// request, and puts the alternate's domain (ALTERNATE-DOMAIN) in its
// redirects so that the client checks the alternate's certificate
// against it. Both have the same bounds, each its own.
type tcpServer struct {
	r *Responder

	// proto is "TCP" or "TLS", for the logs; tls is the TLS
	// configuration, nil for plain TCP.
	proto string
	tls   *tls.Config

	// mu guards p: the connections take turns deciding with one prober
	// (and its ledger), which is plenty at the rate TCP clients come.
	mu sync.Mutex
	p  prober

	// limit is the per-source-prefix limit on accepted connections, owned
	// by the accept loop; p's own is off, so a connection takes one token.
	limit *srclimit.Table

	// connMu guards ln and conns, which Stop closes.
	connMu sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup // the accept loop and the connections' goroutines
}

// init prepares t to answer over TCP for r, as r.cfg says.
func (t *tcpServer) init(r *Responder) {
	t.r = r
	t.proto = "TCP"
	t.p.init(r, rand.New(rand.NewPCG(r.cfg.Rand.Uint64(), r.cfg.Rand.Uint64())), 1) //nolint:gosec // G404: tie-breaking, as cfg.Rand
	t.limit, t.p.limit = t.p.limit, nil
}

// initTLS prepares t to answer over TLS for r, as r.cfg says: on TLSPort,
// with the certificate TLSCertificate returns at each handshake.
func (t *tcpServer) initTLS(r *Responder) {
	t.init(r)
	t.proto = "TLS"
	t.tls = &tls.Config{
		MinVersion: tls.VersionTLS12,
		// A client asks once and goes to its server: a ticket would
		// cost the balancer a sealing and a record per connection, for
		// a resumption that the next leader, with keys of its own,
		// could not honour anyway.
		SessionTicketsDisabled: true,
		GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return t.r.cfg.TLSCertificate(h)
		},
	}
	t.p.tls = true
}

// listens says whether t listens, and on which port (zero: the UDP
// socket's), as r.cfg says.
func (t *tcpServer) listens() (on bool, port uint16) {
	cfg := &t.r.cfg
	if t.tls != nil {
		return cfg.TLSPort != 0 && cfg.TLSCertificate != nil, cfg.TLSPort
	}
	return cfg.TCP, cfg.TCPPort
}

// start listens on TCP at the address udp is bound to (on t.port, if set)
// and starts accepting, unless t is off. A failure is logged: the UDP
// path serves without it. It is called with r.mu held and t stopped.
func (t *tcpServer) start(udp *net.UDPConn) {
	on, port := t.listens()
	if !on {
		return
	}
	addr := unmapAddrPort(udp.LocalAddr().(*net.UDPAddr).AddrPort())
	if port != 0 {
		addr = netip.AddrPortFrom(addr.Addr(), port)
	}
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr))
	if err != nil {
		t.r.log.Warn("not answering over "+t.proto, "addr", addr, "error", err)
		return
	}
	t.connMu.Lock()
	t.ln = ln
	t.conns = make(map[net.Conn]struct{})
	t.connMu.Unlock()
	t.wg.Go(func() { t.accept(ln) })
	t.r.log.Info("answering over "+t.proto, "addr", ln.Addr())
}

// stop closes the listener and every open connection and waits for their
// goroutines to end. It does nothing when t is not listening.
func (t *tcpServer) stop() {
	t.connMu.Lock()
	ln := t.ln
	if ln != nil {
		ln.Close()
		for c := range t.conns {
			c.Close()
		}
		t.ln, t.conns = nil, nil
	}
	t.connMu.Unlock()
	t.wg.Wait()
	if ln != nil {
		t.r.log.Info("stopped answering over "+t.proto, "addr", ln.Addr())
	}
}

// accept accepts connections on ln until it is closed, closing at once
// those that arrive while this node is not serving or TCPConns are open.
func (t *tcpServer) accept(ln net.Listener) {
	limit := t.r.cfg.TCPConns
	if limit <= 0 {
		limit = defaultTCPConns
	}
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors, most likely: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			t.r.log.Warn("accept failed", "error", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !t.limit.Allow(remoteAddr(c), t.r.cfg.Now()) {
			t.p.drops.add(dropRateLimited)
			c.Close()
			continue
		}
		if _, ok := t.r.cfg.Serving(); !ok {
			t.p.drops.add(dropNotLeader)
			c.Close()
			continue
		}
		if !t.track(c, limit) {
			t.p.drops.add(dropConnLimit)
			c.Close()
			continue
		}
		t.wg.Go(func() {
			defer t.untrack(c)
			t.answerConn(c)
		})
	}
}

// track records c as open and reports true, or reports false when limit
// connections are open already or t has stopped.
func (t *tcpServer) track(c net.Conn, limit int) bool {
	t.connMu.Lock()
	defer t.connMu.Unlock()
	if t.conns == nil || len(t.conns) >= limit {
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

// untrack closes c and forgets it.
func (t *tcpServer) untrack(c net.Conn) {
	t.connMu.Lock()
	delete(t.conns, c)
	t.connMu.Unlock()
	c.Close()
}

// answerConn reads the first STUN message on c, within the connection's
// deadline (over TLS, after the handshake, within the same deadline), and
// sends it what the UDP path would answer; anything else ends the
// connection without an answer, counted as a drop.
func (t *tcpServer) answerConn(c net.Conn) {
	timeout := t.r.cfg.TCPTimeout
	if timeout <= 0 {
		timeout = defaultTCPTimeout
	}
	// One deadline for the connection's whole life: a client that trickles
	// bytes, or handshake messages, cannot keep it.
	_ = c.SetDeadline(time.Now().Add(timeout))
	if t.tls != nil {
		tc := tls.Server(c, t.tls)
		if err := tc.Handshake(); err != nil {
			t.p.drops.add(handshakeDrop(err))
			return
		}
		c = tc
	}
	msg, why := readSTUN(c, make([]byte, maxTCPMessage))
	if why != dropNone {
		t.p.drops.add(why)
		return
	}
	from := unmapAddrPort(c.RemoteAddr().(*net.TCPAddr).AddrPort())
	t.mu.Lock()
	ans, why := t.p.answerAt(make([]byte, 0, maxTCPMessage), msg, from, t.r.cfg.Now())
	t.mu.Unlock()
	if why != dropNone {
		t.p.drops.add(why)
		return
	}
	if _, err := c.Write(ans); err != nil {
		t.p.drops.add(dropWriteError)
		return
	}
	t.p.sent(kindOf(ans)).Add(1)
	linger(c)
}

// linger ends c gracefully after the answer: it sends FIN and reads until
// the client closes (or the deadline passes), so that bytes the client sent
// after its request do not make the close a reset that could discard the
// answer before the client reads it.
func linger(c net.Conn) {
	// A TLS connection's CloseWrite sends close_notify, which its client
	// reads as the end; the TCP close follows when the client closes or
	// the read deadline passes.
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(c, maxTCPMessage))
}

// readSTUN reads one STUN message from c into buf (RFC 8489 §6.2.2: the
// length comes from the 20-byte header) and returns it, or the reason
// there is none: not_stun for a header that is not STUN's or a connection
// closed early, too_large for a message longer than buf, timeout when the
// deadline passes first.
func readSTUN(c net.Conn, buf []byte) ([]byte, dropReason) {
	h := buf[:stunHeaderLen]
	if _, err := io.ReadFull(c, h); err != nil {
		return nil, readDrop(err)
	}
	length := int(binary.BigEndian.Uint16(h[2:4]))
	if h[0]&0xc0 != 0 || binary.BigEndian.Uint32(h[4:8]) != stunCookie || length%4 != 0 {
		return nil, dropNotSTUN
	}
	if stunHeaderLen+length > len(buf) {
		return nil, dropTooLarge
	}
	msg := buf[:stunHeaderLen+length]
	if _, err := io.ReadFull(c, msg[stunHeaderLen:]); err != nil {
		return nil, readDrop(err)
	}
	return msg, dropNone
}

// readDrop is the drop reason of a failed read: timeout when the deadline
// passed, not_stun otherwise (the client closed or reset mid-message).
func readDrop(err error) dropReason {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return dropTimeout
	}
	return dropNotSTUN
}

// handshakeDrop is the drop reason of a failed TLS handshake: timeout when
// the deadline passed, tls_handshake otherwise.
func handshakeDrop(err error) dropReason {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return dropTimeout
	}
	return dropTLSHandshake
}

// remoteAddr returns the address c comes from, or the zero address, which
// the limit groups with no one else, when it is not TCP.
func remoteAddr(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr()
	}
	return netip.Addr{}
}
