package node

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/internal/testutil"
	"github.com/usherlb/usher/wire"
)

// tcpTestResponder is a responder serving 127.0.0.1 with TCP on, each
// connection allowed conns at once and timeout of life, closed at the end
// of the test.
func tcpTestResponder(t *testing.T, serving ServingFunc, conns int, timeout time.Duration) *Responder {
	t.Helper()
	// The UDP port is the kernel's pick, and the same TCP port may be
	// some other socket's ephemeral port: try a few.
	for range 10 {
		r := testResponder(newFakeClock(), serving, server1)
		r.cfg.TCP, r.cfg.TCPConns, r.cfg.TCPTimeout = true, conns, timeout
		if err := r.Listen(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
			t.Fatal(err)
		}
		if r.tcp.addr().IsValid() {
			t.Cleanup(func() { r.Close() })
			return r
		}
		r.Close()
	}
	t.Fatal("not listening on TCP")
	return nil
}

// dialTCP connects to r's TCP listener, closed at the end of the test.
func dialTCP(t *testing.T, r *Responder) *net.TCPConn {
	t.Helper()
	c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(r.tcp.addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readToClose reads c until the responder closes it and returns what it
// sent, failing the test if c is still open after 5 s.
func readToClose(t *testing.T, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open after 5 s, having sent %d bytes", len(b))
	}
	return b
}

// TestTCPAnswers checks that a stock Allocate and an Usher probe over TCP
// get the 300 naming the server the UDP path would name, and a stock
// Binding a success naming the connection's peer; that the connection is
// closed after the one answer; and that each is counted.
func TestTCPAnswers(t *testing.T) {
	bind := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint).Raw
	tests := []struct {
		name string
		req  []byte
		bind bool
	}{
		{"allocate", stockAllocate(), false},
		{"probe", probe(t, wire.Probe{Session: wire.SessionID{7}, PadTo: wire.ProbeSize}), false},
		{"binding", bind, true},
	}
	r := tcpTestResponder(t, Solo, 0, 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialTCP(t, r)
			if _, err := c.Write(tt.req); err != nil {
				t.Fatal(err)
			}
			a := decode(t, readToClose(t, c))
			if a.TxID != [12]byte(tt.req[8:20]) {
				t.Fatalf("answer to another transaction: %+v", a)
			}
			self := c.LocalAddr().(*net.TCPAddr).AddrPort()
			if tt.bind && (!a.Success || a.Mapped != self) {
				t.Fatalf("answer %+v, want a success naming %v", a, self)
			}
			if !tt.bind && (a.Success || a.Code != stun.CodeTryAlternate || a.Server != server1) {
				t.Fatalf("answer %+v, want a 300 naming %v", a, server1)
			}
		})
	}
	if st := r.Stats(); st.Answered != 2 || st.StockBindings != 1 || len(st.Drops) != 0 {
		t.Errorf("stats %+v, want 2 redirects, 1 stock Binding, no drops", st)
	}
}

// TestTCPDropsWithoutAnswer checks that what is not one STUN request in
// time is closed without an answer and counted: garbage, a header that
// claims too long a message, and a slow client (nothing sent, half a
// header, half a body) that the connection's deadline cuts off.
func TestTCPDropsWithoutAnswer(t *testing.T) {
	alloc := stockAllocate()
	tests := []struct {
		name string
		send []byte
		drop string
	}{
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "not_stun"},
		{"too large", append([]byte{0, 1, 0x10, 0}, alloc[4:20]...), "too_large"},
		{"nothing", nil, "timeout"},
		{"half header", alloc[:10], "timeout"},
		{"half body", alloc[:len(alloc)-4], "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tcpTestResponder(t, Solo, 0, 300*time.Millisecond)
			c := dialTCP(t, r)
			if _, err := c.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			if b := readToClose(t, c); len(b) != 0 {
				t.Fatalf("answered %d bytes", len(b))
			}
			waitFor(t, func() bool { return r.Stats().Drops[tt.drop] == 1 })
		})
	}
}

// TestTCPConnLimit checks that a connection beyond TCPConns is closed at
// once, while the one within the limit is still answered.
func TestTCPConnLimit(t *testing.T) {
	r := tcpTestResponder(t, Solo, 1, time.Minute)
	first := dialTCP(t, r)
	// The listener accepts in order and counts the first before it
	// accepts the second.
	second := dialTCP(t, r)
	if b := readToClose(t, second); len(b) != 0 {
		t.Fatalf("the connection over the limit was answered %d bytes", len(b))
	}
	req := stockAllocate()
	if _, err := first.Write(req); err != nil {
		t.Fatal(err)
	}
	if a := decode(t, readToClose(t, first)); a.Server != server1 {
		t.Fatalf("answer %+v within the limit", a)
	}
	if n := r.Stats().Drops["conn_limit"]; n != 1 {
		t.Errorf("conn_limit drops = %d, want 1", n)
	}
}

// TestTCPNotServing checks that while the node is not serving a connection
// is closed at once, before it sends anything, and that a request on a
// connection opened while serving gets no answer once serving has ended
// (the lease fence, as on UDP).
func TestTCPNotServing(t *testing.T) {
	var serving atomic.Bool
	r := tcpTestResponder(t, func() (uint64, bool) { return 1, serving.Load() }, 0, time.Minute)

	c := dialTCP(t, r)
	if b := readToClose(t, c); len(b) != 0 {
		t.Fatalf("answered %d bytes while not serving", len(b))
	}
	waitFor(t, func() bool { return r.Stats().Drops["not_leader"] == 1 })

	serving.Store(true)
	c = dialTCP(t, r)
	// Whether the listener accepted c before serving ends or after, the
	// request goes after it, and one check or the other refuses it. (A
	// write to a connection already closed may fail: no answer either.)
	serving.Store(false)
	_, _ = c.Write(stockAllocate())
	if b := readToClose(t, c); len(b) != 0 {
		t.Fatalf("answered %d bytes after serving ended", len(b))
	}
	if st := r.Stats(); st.Answered != 0 {
		t.Errorf("%d answers counted", st.Answered)
	}
}

// TestTCPFollowsServe checks that the TCP listener is open only while the
// responder serves: Stop closes it and every open connection, a later
// Serve opens it again on the same port, and Close leaves no goroutine
// (TestMain's goleak).
func TestTCPFollowsServe(t *testing.T) {
	r := tcpTestResponder(t, Solo, 0, time.Minute)
	addr := r.tcp.addr()
	if addr.Port() != r.Addr().Port() {
		t.Errorf("TCP on %v, UDP on %v: want the same port", addr, r.Addr())
	}
	idle := dialTCP(t, r)
	r.Stop()
	if b := readToClose(t, idle); len(b) != 0 {
		t.Fatalf("answered %d bytes", len(b))
	}
	if r.tcp.addr().IsValid() {
		t.Fatal("still listening after Stop")
	}
	if c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(addr)); err == nil {
		c.Close()
		t.Fatal("connected after Stop")
	}
	r.Serve(r.owned)
	c := dialTCP(t, r)
	if _, err := c.Write(stockAllocate()); err != nil {
		t.Fatal(err)
	}
	if a := decode(t, readToClose(t, c)); a.Server != server1 {
		t.Fatalf("answer %+v after a second Serve", a)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if r.tcp.addr().IsValid() {
		t.Fatal("still listening after Close")
	}
}

// TestTCPOff checks that without TCP the balancer address has no TCP
// listener.
func TestTCPOff(t *testing.T) {
	r := testResponder(newFakeClock(), Solo, server1)
	if err := r.Listen(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.tcp.addr().IsValid() {
		t.Fatal("listening on TCP with TCP off")
	}
}

// allocateTCP sends a stock Allocate over TCP to addr and returns the
// answer, failing the test if none comes.
func allocateTCP(t *testing.T, addr netip.AddrPort) wire.Response {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(stockAllocate()); err != nil {
		t.Fatal(err)
	}
	return decode(t, readToClose(t, c))
}

// exchangeTCP sends req over a new TCP connection to addr and returns all
// it reads until the server closes it.
func exchangeTCP(addr netip.AddrPort, req []byte) ([]byte, error) {
	c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return nil, err
	}
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	return io.ReadAll(c)
}

// TestAgentTCP checks that an agent answers over TCP on the balancer
// address by default, naming its session address, and that it has no TCP
// listener there with balancer_tcp = false, nor once it is closed.
func TestAgentTCP(t *testing.T) {
	a := startAgent(t, testConfig())
	vip := a.VIPAddr()
	// As a client retransmits: a node whose own report is late (a busy
	// test machine) leaves the first probe unanswered.
	var r wire.Response
	testutil.Eventually(t, 5*time.Second, "a redirect over TCP", func() bool {
		var dec wire.Decoder
		raw, err := exchangeTCP(vip, stockAllocate())
		return err == nil && dec.DecodeResponse(raw, &r) == nil &&
			r.Code == stun.CodeTryAlternate && r.Server == a.SessionAddr()
	})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", vip.String()); err == nil {
		c.Close()
		t.Error("connected to the balancer address of a closed agent")
	}

	c := testConfig()
	c.BalancerTCP = "false"
	b := startAgent(t, c)
	if b.resp.tcp.addr().IsValid() {
		t.Error("listening on TCP with balancer_tcp = false")
	}
}

// TestFarmTCPFollowsLeader checks that the TCP listener moves with the
// balancer address: only the leader listens, and once it leaves (handing
// leadership on, its agent still running) its listener is gone and the
// next leader's answers on the same address.
func TestFarmTCPFollowsLeader(t *testing.T) {
	f := newTestFarm(t, 3, 3, nil)
	f.viewed(3)
	old := f.leader()
	// The listener opens as the responder starts serving, a moment after
	// the UDP path; a busy machine can show the moment.
	waitFor(t, func() bool { return old.resp.tcp.addr() == f.vip })
	for _, a := range f.agents {
		if got := a.resp.tcp.addr(); a != old && got.IsValid() {
			t.Errorf("%s: TCP listener %v, leader %s", a.cfg.NodeName, got, old.cfg.NodeName)
		}
	}
	if r := allocateTCP(t, f.vip); r.Code != stun.CodeTryAlternate || !r.Server.IsValid() {
		t.Fatalf("answer %+v from the first leader", r)
	}
	if err := old.Leave(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return !old.resp.tcp.addr().IsValid() })
	next := f.leader()
	if next == old {
		t.Fatal("the leader that left still serves")
	}
	waitFor(t, func() bool { return next.resp.tcp.addr() == f.vip })
	// The next leader answers once its view has a server in it.
	waitFor(t, func() bool { return len(next.view.Load().Nodes()) > 0 })
	if r := allocateTCP(t, f.vip); r.Code != stun.CodeTryAlternate || !r.Server.IsValid() {
		t.Fatalf("answer %+v from the next leader", r)
	}
}
