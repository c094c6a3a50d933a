package client

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"github.com/usherlb/usher/internal/testutil"
	"github.com/usherlb/usher/wire"
)

// seenReq is a copy of a request a fake node received.
type seenReq struct {
	TxID       txID
	Session    wire.SessionID
	HasSession bool
	Ticket     string
	LostServer netip.AddrPort
	Size       int
	From       netip.AddrPort
	At         time.Time // when the fake read it
}

// handler answers one request to a fake node; n counts the requests the
// node received, this one included. It returns the answer, or nil for none.
type handler func(n int, req *wire.Request, from netip.AddrPort) []byte

// fakeNode is a UDP endpoint on 127.0.0.1 that stands in for the balancer
// or a server: it records every request and answers with its handler.
type fakeNode struct {
	conn   *net.UDPConn
	addr   netip.AddrPort
	silent atomic.Bool
	done   chan struct{}

	mu   sync.Mutex
	h    handler
	reqs []seenReq
}

// newFake starts a fake node answering with h; it is closed at test end.
func newFake(t *testing.T, h handler) *fakeNode {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	n := &fakeNode{
		conn: conn,
		addr: conn.LocalAddr().(*net.UDPAddr).AddrPort(),
		done: make(chan struct{}),
		h:    h,
	}
	go n.serve()
	t.Cleanup(func() {
		conn.Close()
		<-n.done
	})
	return n
}

func (n *fakeNode) serve() {
	defer close(n.done)
	var (
		dec wire.Decoder
		req wire.Request
		buf = make([]byte, 2048)
	)
	for {
		size, from, err := n.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if dec.DecodeRequest(buf[:size], &req) != nil {
			continue
		}
		n.mu.Lock()
		n.reqs = append(n.reqs, seenReq{
			TxID: req.TxID, Session: req.Session, HasSession: req.HasSession,
			Ticket: string(req.Ticket), LostServer: req.LostServer, Size: req.Size, From: from,
			At: time.Now(),
		})
		count, h := len(n.reqs), n.h
		n.mu.Unlock()
		if n.silent.Load() || h == nil {
			continue
		}
		if b := h(count, &req, from); b != nil {
			n.conn.WriteToUDPAddrPort(b, from)
		}
	}
}

// setHandler replaces the node's handler.
func (n *fakeNode) setHandler(h handler) {
	n.mu.Lock()
	n.h = h
	n.mu.Unlock()
}

// requests returns a copy of the requests received so far.
func (n *fakeNode) requests() []seenReq {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]seenReq(nil), n.reqs...)
}

// times returns when each request so far was read.
func (n *fakeNode) times() []time.Time {
	var ts []time.Time
	for _, r := range n.requests() {
		ts = append(ts, r.At)
	}
	return ts
}

// redirect encodes the redirect r as the answer to req.
func redirect(req *wire.Request, r *wire.Redirect) []byte {
	var e wire.Encoder
	b, err := e.AppendRedirect(nil, req, r, wire.Limit(req, 3))
	if err != nil {
		panic(err)
	}
	return b
}

// redirectTo is a balancer handler that always redirects to r.
func redirectTo(r wire.Redirect) handler {
	return func(_ int, req *wire.Request, _ netip.AddrPort) []byte { return redirect(req, &r) }
}

// keepaliveAnswer encodes a success answer to the keepalive req from from.
func keepaliveAnswer(req *wire.Request, from netip.AddrPort, drain bool) []byte {
	var e wire.Encoder
	b, err := e.AppendKeepaliveAnswer(nil, req, &wire.KeepaliveAnswer{Mapped: from, Drain: drain}, req.Size)
	if err != nil {
		panic(err)
	}
	return b
}

// errorAnswer encodes an error answer with code to req.
func errorAnswer(req *wire.Request, code stun.ErrorCode) []byte {
	var e wire.Encoder
	b, err := e.AppendErrorAnswer(nil, req, code, req.Size)
	if err != nil {
		panic(err)
	}
	return b
}

// serverHandler answers every keepalive.
func serverHandler(_ int, req *wire.Request, from netip.AddrPort) []byte {
	return keepaliveAnswer(req, from, false)
}

// newServer starts a fake server that answers every keepalive.
func newServer(t *testing.T) *fakeNode { return newFake(t, serverHandler) }

// testOptions are short timers for loopback tests.
func testOptions() Options {
	return Options{
		RTO:               20 * time.Millisecond,
		Retries:           3,
		KeepaliveInterval: 30 * time.Millisecond,
		DeadAfter:         300 * time.Millisecond,
		ReprobeBackoff:    30 * time.Millisecond,
		LocalAddr:         netip.MustParseAddrPort("127.0.0.1:0"),
	}
}

// dial dials bal with opts and closes the session at test end.
func dial(t *testing.T, bal *fakeNode, opts Options) *Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := Dial(ctx, bal.addr, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitFor is how long a test waits for an eventual outcome.
const waitFor = 5 * time.Second

// waitEvent reads events until one of kind k arrives and returns it along
// with every event read before it.
func waitEvent(t *testing.T, s *Session, k EventKind) (Event, []Event) {
	t.Helper()
	var before []Event
	deadline := time.After(waitFor)
	for {
		select {
		case ev, ok := <-s.Events():
			if !ok {
				t.Fatalf("event channel closed waiting for %v (saw %v)", k, before)
			}
			if ev.Kind == k {
				return ev, before
			}
			before = append(before, ev)
		case <-deadline:
			t.Fatalf("no %v event within %v (saw %v)", k, waitFor, before)
		}
	}
}

// eventually fails the test unless cond becomes true within waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, waitFor, what, cond)
}

// kinds lists the kinds of evs.
func kinds(evs []Event) []EventKind {
	out := make([]EventKind, len(evs))
	for i, e := range evs {
		out[i] = e.Kind
	}
	return out
}
