package health

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pion/stun/v3"
)

// stunMode is how a fake STUN server answers a Binding request.
type stunMode int32

const (
	answerSuccess  stunMode = iota // a Binding success
	answer401                      // an error response 401, as coturn asks for auth
	answer400                      // an error response 400
	answerGarbage                  // a datagram that is not STUN
	answerWrongTID                 // a Binding success for another transaction
	answerNothing                  // silence
)

// fakeServer is a UDP server on loopback whose answers a test can change
// (mode) and that a test can kill (Close).
type fakeServer struct {
	conn   net.PacketConn
	mode   atomic.Int32
	answer func(mode stunMode, req []byte) []byte
	wg     sync.WaitGroup
	once   sync.Once
}

// newFakeSTUN starts a STUN responder answering in mode.
func newFakeSTUN(t *testing.T, mode stunMode) *fakeServer {
	return newFakeServer(t, mode, stunAnswer)
}

// newUDPEcho starts a server that sends every datagram back.
func newUDPEcho(t *testing.T) *fakeServer {
	return newFakeServer(t, 0, func(_ stunMode, req []byte) []byte { return req })
}

func newFakeServer(t *testing.T, mode stunMode, answer func(stunMode, []byte) []byte) *fakeServer {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{conn: conn, answer: answer}
	s.mode.Store(int32(mode))
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

func (s *fakeServer) Addr() string { return s.conn.LocalAddr().String() }

func (s *fakeServer) SetMode(m stunMode) { s.mode.Store(int32(m)) }

// Close kills the server: its port then answers with ICMP port unreachable.
func (s *fakeServer) Close() {
	s.once.Do(func() {
		s.conn.Close()
		s.wg.Wait()
	})
}

func (s *fakeServer) serve() {
	defer s.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if out := s.answer(stunMode(s.mode.Load()), buf[:n]); out != nil {
			s.conn.WriteTo(out, from)
		}
	}
}

func stunAnswer(mode stunMode, raw []byte) []byte {
	req := &stun.Message{Raw: append([]byte(nil), raw...)}
	if err := req.Decode(); err != nil {
		return nil
	}
	tid := stun.NewTransactionIDSetter(req.TransactionID)
	var (
		res *stun.Message
		err error
	)
	switch mode {
	case answerSuccess:
		res, err = stun.Build(tid, stun.BindingSuccess, &stun.XORMappedAddress{IP: net.IPv4(127, 0, 0, 1), Port: 1}, stun.Fingerprint)
	case answer401:
		res, err = stun.Build(tid, stun.BindingError, stun.CodeUnauthorized, stun.NewRealm("usher"), stun.NewNonce("n"))
	case answer400:
		res, err = stun.Build(tid, stun.BindingError, stun.CodeBadRequest)
	case answerGarbage:
		return []byte("HTTP/1.1 400 Bad Request\r\n\r\n")
	case answerWrongTID:
		res, err = stun.Build(stun.TransactionID, stun.BindingSuccess)
	default:
		return nil
	}
	if err != nil {
		panic(err)
	}
	return res.Raw
}
