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

// newRaftTransport listens on the raft bind address and builds the network
// transport. wrap, if not nil, wraps the stream layer (tests use it to cut
// a node off).
func newRaftTransport(bind string, advertise net.Addr, timeout time.Duration, logger hclog.Logger,
	wrap func(raft.StreamLayer) raft.StreamLayer) (*raft.NetworkTransport, error) {
	l, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	var stream raft.StreamLayer = &tcpStream{Listener: l, advertise: advertise}
	if a, ok := stream.Addr().(*net.TCPAddr); !ok || a.IP == nil || a.IP.IsUnspecified() {
		l.Close()
		return nil, errors.New("raft address is not advertisable")
	}
	if a := stream.Addr().(*net.TCPAddr); a.Port == 0 {
		l.Close()
		return nil, fmt.Errorf("raft advertise address %s has no port", a)
	}
	if wrap != nil {
		stream = wrap(stream)
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: 3,
		Timeout: timeout,
		Logger:  logger,
	}), nil
}
