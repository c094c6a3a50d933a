package cluster

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// tcpStream is raft's stream layer: a TCP listener plus a dialer,
// advertising a configured address when the bind address is not one.
type tcpStream struct {
	net.Listener
	advertise net.Addr
}

// Dial implements raft.StreamLayer.
func (s *tcpStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(address), timeout)
}

// Addr implements net.Listener, returning the advertised address.
func (s *tcpStream) Addr() net.Addr {
	if s.advertise != nil {
		return s.advertise
	}
	return s.Listener.Addr()
}

// transportConfig configures newRaftTransport.
type transportConfig struct {
	bind      string
	advertise net.Addr // nil: the bound address
	timeout   time.Duration
	logger    hclog.Logger
	// tls, when set, puts every Raft connection under mutual TLS
	// (transport_tls.go); peers decides which peers are acceptable.
	tls   TLS
	peers peerPolicy
	// wrap, if not nil, wraps the stream layer (tests use it to cut a
	// node off).
	wrap func(raft.StreamLayer) raft.StreamLayer
}

// newRaftTransport listens on the raft bind address and builds the network
// transport. It also returns the TLS stream layer, nil without TLS.
func newRaftTransport(tc transportConfig) (*raft.NetworkTransport, *tlsStream, error) {
	l, err := net.Listen("tcp", tc.bind)
	if err != nil {
		return nil, nil, err
	}
	plain := &tcpStream{Listener: l, advertise: tc.advertise}
	if a, ok := plain.Addr().(*net.TCPAddr); !ok || a.IP == nil || a.IP.IsUnspecified() {
		l.Close()
		return nil, nil, errors.New("raft address is not advertisable")
	}
	if a := plain.Addr().(*net.TCPAddr); a.Port == 0 {
		l.Close()
		return nil, nil, fmt.Errorf("raft advertise address %s has no port", a)
	}
	var (
		stream raft.StreamLayer = plain
		secure *tlsStream
	)
	if tc.tls != nil {
		secure = newTLSStream(plain, tc.tls, tc.peers, tc.logger, tlsHandshakeTimeout)
		stream = secure
	}
	if tc.wrap != nil {
		stream = tc.wrap(stream)
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: 3,
		Timeout: tc.timeout,
		Logger:  tc.logger,
	}), secure, nil
}
