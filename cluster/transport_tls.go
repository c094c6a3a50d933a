package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-metrics"
	"github.com/hashicorp/raft"
)

// TLS is the certificate material of Raft's mutual TLS (Config.TLS). Its
// methods are called at every handshake, so a certificate reloaded behind
// them applies to the next connection without a restart. The internal/pki
// package's Store implements it.
type TLS interface {
	// Certificate returns this node's current certificate chain and key.
	Certificate() *tls.Certificate
	// VerifyPeer checks a peer's certificate chain, leaf first, against
	// the farm's CA and the farm's identity at the current time, and
	// returns the node name it certifies.
	VerifyPeer(chain []*x509.Certificate) (node string, err error)
}

// peerPolicy says which authenticated farm nodes Raft talks to; the Cluster
// implements it from its Raft configuration.
type peerPolicy interface {
	// admitRaftPeer returns an error unless node may open Raft
	// connections to this node.
	admitRaftPeer(node string) error
	// raftPeerAt returns the server ID that the Raft configuration gives
	// address, if any.
	raftPeerAt(address raft.ServerAddress) (string, bool)
}

// Limits of the accept side of the TLS stream: how long a peer has to
// complete its handshake, and how many handshakes may be in flight (more
// are refused at once, so a flood of silent connections costs a bounded
// number of goroutines and sockets).
const (
	tlsHandshakeTimeout = 3 * time.Second
	maxTLSHandshakes    = 64
)

// rejectLogEvery is the least time between two warnings about refused
// Raft connections; the ones in between are counted in the next warning.
const rejectLogEvery = 5 * time.Second

// tlsStream is raft's stream layer under mutual TLS 1.3. The accept side
// runs its own accept loop: each new TCP connection completes its handshake
// (with a deadline) on a goroutine of its own, and only a connection whose
// peer proved a certificate of this farm, naming a node the peerPolicy
// admits, is handed to raft; every other one is closed before raft reads a
// byte, counted and logged. The dial side checks the server's certificate
// the same way and, when the Raft configuration names the server at that
// address, that the certificate names that server.
type tlsStream struct {
	ln        *tcpStream
	src       TLS
	peers     peerPolicy
	logger    hclog.Logger
	timeout   time.Duration // handshake deadline
	serverCfg *tls.Config

	ready chan net.Conn // handshaken, admitted connections
	slots chan struct{} // one per handshake in flight
	done  chan struct{}
	wg    sync.WaitGroup

	mu       sync.Mutex
	inflight map[net.Conn]struct{}
	closed   bool

	rejected   atomic.Uint64 // connections refused, for Stats
	lastWarn   atomic.Int64  // Monotonic() of the last warning
	suppressed atomic.Uint64 // refusals not logged since then
}

// newTLSStream wraps ln's listener and dialer with mutual TLS and starts
// the accept loop; a peer has handshake to complete its handshake.
func newTLSStream(ln *tcpStream, src TLS, peers peerPolicy, logger hclog.Logger, handshake time.Duration) *tlsStream {
	s := &tlsStream{
		ln:       ln,
		src:      src,
		peers:    peers,
		logger:   logger,
		timeout:  handshake,
		ready:    make(chan net.Conn),
		slots:    make(chan struct{}, maxTLSHandshakes),
		done:     make(chan struct{}),
		inflight: map[net.Conn]struct{}{},
	}
	s.serverCfg = &tls.Config{
		MinVersion: tls.VersionTLS13,
		ClientAuth: tls.RequireAnyClientCert,
		// A peer checking this node's address (addrcheck.go) asks for
		// alpnVerify; raft's own connections ask for no protocol.
		NextProtos: []string{alpnVerify},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.src.Certificate(), nil
		},
		// The chain is checked by VerifyConnection, against the farm's
		// CA and identity, and the node against the policy.
		VerifyConnection: func(cs tls.ConnectionState) error {
			node, err := s.src.VerifyPeer(cs.PeerCertificates)
			if err != nil {
				return err
			}
			if cs.NegotiatedProtocol == alpnVerify {
				return nil // any node of the farm may check the address
			}
			if err := s.peers.admitRaftPeer(node); err != nil {
				return fmt.Errorf("node %q: %w", node, err)
			}
			return nil
		},
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

// acceptLoop accepts TCP connections and starts a handshake for each, or
// refuses it when maxTLSHandshakes are in flight.
func (s *tlsStream) acceptLoop() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-s.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		select {
		case s.slots <- struct{}{}:
		default:
			conn.Close()
			s.reject(conn.RemoteAddr(), errors.New("too many handshakes in flight"))
			continue
		}
		if !s.track(conn) {
			<-s.slots
			conn.Close()
			return
		}
		s.wg.Add(1)
		go s.handshake(conn)
	}
}

// track records conn as in flight, so Close can end its handshake; it
// returns false once the stream is closed.
func (s *tlsStream) track(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.inflight[conn] = struct{}{}
	return true
}

func (s *tlsStream) untrack(conn net.Conn) {
	s.mu.Lock()
	delete(s.inflight, conn)
	s.mu.Unlock()
}

// handshake completes conn's server handshake within the deadline and
// hands it to Accept, or closes it.
func (s *tlsStream) handshake(conn net.Conn) {
	defer s.wg.Done()
	defer func() { <-s.slots }()
	defer s.untrack(conn)
	tc := tls.Server(conn, s.serverCfg)
	if err := conn.SetDeadline(time.Now().Add(s.timeout)); err != nil {
		conn.Close()
		return
	}
	if err := tc.Handshake(); err != nil {
		conn.Close()
		select {
		case <-s.done: // closed under it by Close
		default:
			s.reject(conn.RemoteAddr(), err)
		}
		return
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		tc.Close()
		return
	}
	if tc.ConnectionState().NegotiatedProtocol == alpnVerify {
		tc.Close() // an address check: it never reaches raft
		return
	}
	select {
	case s.ready <- tc:
	case <-s.done:
		tc.Close()
	}
}

// reject counts a refused connection and logs it at Warn, at most once per
// rejectLogEvery (with the number of refusals not logged since).
func (s *tlsStream) reject(from net.Addr, err error) {
	s.rejected.Add(1)
	metrics.IncrCounter([]string{"cluster", "raft", "rejected"}, 1)
	now := int64(Monotonic())
	last := s.lastWarn.Load()
	if last != 0 && now-last < int64(rejectLogEvery) || !s.lastWarn.CompareAndSwap(last, now) {
		s.suppressed.Add(1)
		return
	}
	s.logger.Warn("refused a raft connection", "peer", from.String(), "error", err,
		"refused_since_last_warning", s.suppressed.Swap(0))
}

// Accept implements net.Listener: it returns the next connection whose
// handshake succeeded.
func (s *tlsStream) Accept() (net.Conn, error) {
	select {
	case c := <-s.ready:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener: it stops the accept loop and ends the
// handshakes in flight.
func (s *tlsStream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	for c := range s.inflight {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

// Addr implements net.Listener, returning the advertised address.
func (s *tlsStream) Addr() net.Addr { return s.ln.Addr() }

// Dial implements raft.StreamLayer: a TLS 1.3 client handshake within
// timeout, presenting this node's certificate and accepting only a server
// of this farm that, if the Raft configuration names the server at
// address, is that server.
func (s *tlsStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", string(address), timeout)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return s.src.Certificate(), nil
		},
		// Go's own verification would check a host name; the farm's
		// identity is in a URI instead, so VerifyConnection checks the
		// whole chain itself (TLS.VerifyPeer).
		InsecureSkipVerify: true, //nolint:gosec // VerifyConnection checks the chain against the farm CA
		VerifyConnection: func(cs tls.ConnectionState) error {
			node, err := s.src.VerifyPeer(cs.PeerCertificates)
			if err != nil {
				return err
			}
			if want, ok := s.peers.raftPeerAt(address); ok && node != want {
				return fmt.Errorf("raft server at %s is node %q, the configuration names %q there", address, node, want)
			}
			return nil
		},
	}
	tc := tls.Client(conn, cfg)
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("raft tls handshake with %s: %w", address, err)
	}
	if err := tc.Handshake(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("raft tls handshake with %s: %w", address, err)
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		tc.Close()
		return nil, fmt.Errorf("raft tls connection to %s: %w", address, err)
	}
	return tc, nil
}

// errRaftStarting refuses Raft connections in the moment between the
// transport's start and raft's, on a node that has Raft state.
var errRaftStarting = errors.New("raft is starting")

// admitRaftPeer implements peerPolicy. A node of this farm may open Raft
// connections to this one when it is a server of this node's latest Raft
// configuration (which on the leader includes a server being added before
// the change commits), when this node has no Raft configuration yet (it is
// new: whoever bootstraps or adds it dials it first), or when it is the
// leader or a voter that the leader's latest state message names (a node
// whose configuration is stale, for example one removed while it was down,
// must still accept the leader that adds it back).
func (c *Cluster) admitRaftPeer(node string) error {
	r := c.raftReady.Load()
	if r == nil {
		if c.bootstrapped.Load() {
			return errRaftStarting
		}
		return nil
	}
	servers := r.GetConfiguration().Configuration().Servers
	if len(servers) == 0 {
		return nil
	}
	for _, s := range servers {
		if string(s.ID) == node {
			return nil
		}
	}
	if d := c.freshDelivery(); d != nil && (d.leader == node || slices.Contains(d.voters, node)) {
		return nil
	}
	return errors.New("not a server of this node's raft configuration")
}

// raftPeerAt implements peerPolicy from the latest Raft configuration.
func (c *Cluster) raftPeerAt(address raft.ServerAddress) (string, bool) {
	r := c.raftReady.Load()
	if r == nil {
		return "", false
	}
	for _, s := range r.GetConfiguration().Configuration().Servers {
		if s.Address == address {
			return string(s.ID), true
		}
	}
	return "", false
}
