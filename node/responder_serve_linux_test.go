//go:build linux

package node

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usherlb/usher/internal/udpio"
	"github.com/usherlb/usher/wire"
)

// TestReuseportSiblings checks that Serve on a caller's socket adds bound
// siblings, answers on all of them, and closes only its own on Stop. The
// socket is bound with IP_FREEBIND, as in netlink mode, and the siblings
// must be too.
func TestReuseportSiblings(t *testing.T) {
	conn, err := udpio.ListenFreebind(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := testResponder(newFakeClock(), Solo, server1)
	r.cfg.Sockets, r.cfg.Batch = 3, true
	defer r.Close()
	r.Serve(conn)
	r.mu.Lock()
	sib := r.siblings
	r.mu.Unlock()
	if len(sib) != 2 {
		t.Fatalf("%d siblings, want 2", len(sib))
	}
	for _, s := range sib {
		if s.LocalAddr().String() != conn.LocalAddr().String() {
			t.Errorf("sibling on %v, want %v", s.LocalAddr(), conn.LocalAddr())
		}
	}
	addr := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	for i := range 16 {
		if got := askOnce(t, addr, wire.SessionID{byte(i)}); got != server1 {
			t.Fatalf("got %v", got)
		}
	}
	r.Stop()
	if _, err := sib[0].WriteToUDPAddrPort([]byte("x"), addr); err == nil {
		t.Error("sibling still open after Stop")
	}
	if _, err := conn.WriteToUDPAddrPort([]byte("x"), addr); err != nil {
		t.Errorf("caller's socket closed by Stop: %v", err)
	}
}

// TestBatchFlushes sends one batch larger than flushEvery to a batched
// responder at once and holds the Serving call of one probe until the
// test has read what should have left before it: the first flushEvery
// answers when deciding is slow (the fake clock moves 10 µs a probe), none
// when it is fast (the batch leaves in one sendmmsg). Then every probe
// must be answered once.
func TestBatchFlushes(t *testing.T) {
	const n = 3*flushEvery + 5
	tests := []struct {
		name      string
		perProbe  time.Duration // how far the clock moves while a probe is decided
		holdAt    int32         // the Serving call that waits for the test
		wantEarly int           // answers that arrive while it waits
	}{
		// A slow batch flushes at the first check past flushAfter.
		{name: "slow", perProbe: 10 * time.Microsecond, holdAt: flushEvery + 1, wantEarly: flushEvery},
		// A fast batch leaves in one sendmmsg: nothing before its last
		// probe is decided.
		{name: "fast", perProbe: 0, holdAt: n, wantEarly: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			var calls atomic.Int32
			release := make(chan struct{})
			serving := func() (uint64, bool) {
				clk.Advance(tt.perProbe)
				if calls.Add(1) == tt.holdAt {
					<-release
				}
				return 1, true
			}
			r := testResponder(clk, serving, server1, server2)
			r.cfg.Batch = true
			srv := listenUDP(t, "127.0.0.1:0")
			cli := listenUDP(t, "127.0.0.1:0")
			dst := srv.LocalAddr().(*net.UDPAddr).AddrPort()
			sent := map[[12]byte]bool{}
			for i := range n {
				pkt := probe(t, wire.Probe{Session: wire.SessionID{byte(i)}, PadTo: wire.ProbeSize})
				sent[[12]byte(pkt[8:20])] = true
				if _, err := cli.WriteToUDPAddrPort(pkt, dst); err != nil {
					t.Fatal(err)
				}
			}
			// All are queued before the responder reads: one batch.
			r.Serve(srv)
			released := false
			unhold := func() {
				if !released {
					close(release)
					released = true
				}
			}
			defer r.Stop()
			defer unhold()
			buf := make([]byte, 1500)
			read := func(deadline time.Duration) error {
				cli.SetReadDeadline(time.Now().Add(deadline))
				k, _, err := cli.ReadFromUDPAddrPort(buf)
				if err != nil {
					return err
				}
				if tx := [12]byte(buf[8:20]); k < 20 || !sent[tx] {
					t.Fatalf("an answer to no probe sent, or twice: %x", buf[:k])
				}
				delete(sent, [12]byte(buf[8:20]))
				return nil
			}
			got := 0
			for ; got < tt.wantEarly; got++ {
				if err := read(5 * time.Second); err != nil {
					t.Fatalf("%d answers before the batch was decided, want %d: %v", got, tt.wantEarly, err)
				}
			}
			if err := read(200 * time.Millisecond); err == nil {
				t.Fatalf("more than %d answers before the batch was decided", tt.wantEarly)
			}
			unhold()
			for ; got < n; got++ {
				if err := read(5 * time.Second); err != nil {
					t.Fatalf("%d of %d answers: %v (stats %+v)", got, n, err, r.Stats())
				}
			}
			// The count follows the send, so it may trail the last answer a little.
			waitFor(t, func() bool { return r.Stats().Answered == n })
		})
	}
}

// TestResponderReadBuffer checks that Serve sizes the receive buffer of the
// socket it is given and of every SO_REUSEPORT sibling it opens: below
// rmem_max for anyone, past it with CAP_NET_ADMIN (SO_RCVBUFFORCE).
func TestResponderReadBuffer(t *testing.T) {
	rmemMax := readSysctlInt(t, "/proc/sys/net/core/rmem_max")
	rmemDefault := readSysctlInt(t, "/proc/sys/net/core/rmem_default")
	// Below rmem_max and unlike the default, so that a socket left alone
	// shows; the kernel's smallest rmem_max default is far above it.
	small := 96 << 10
	if small >= rmemMax || small == rmemDefault {
		t.Skipf("rmem_max %d, rmem_default %d: no size between them to tell", rmemMax, rmemDefault)
	}
	tests := []struct {
		name      string
		bytes     int
		needForce bool
	}{
		{"below rmem_max", small, false},
		{"past rmem_max", rmemMax + 64<<10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needForce && os.Geteuid() != 0 {
				t.Skip("SO_RCVBUFFORCE needs CAP_NET_ADMIN")
			}
			r := testResponder(newFakeClock(), Solo, netip.MustParseAddrPort("127.0.0.1:40001"))
			r.cfg.ReadBuffer = tt.bytes
			r.cfg.Sockets = 2
			r.Serve(listenUDP(t, "127.0.0.1:0"))
			defer r.Close()
			r.mu.Lock()
			conns := append([]*net.UDPConn{r.conn}, r.siblings...)
			r.mu.Unlock()
			if len(conns) != 2 {
				t.Fatalf("serving %d sockets, want 2", len(conns))
			}
			for i, c := range conns {
				// Linux reports twice what was set (its bookkeeping overhead).
				if got := rcvbuf(t, c); got != 2*tt.bytes {
					t.Errorf("socket %d: SO_RCVBUF = %d, want %d", i, got, 2*tt.bytes)
				}
			}
		})
	}
}

// rcvbuf returns conn's SO_RCVBUF as the kernel reports it.
func rcvbuf(t *testing.T, conn *net.UDPConn) int {
	t.Helper()
	rc, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		got, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	return got
}

// readSysctlInt reads an integer sysctl from its /proc file.
func readSysctlInt(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("cannot read %s: %v", path, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

// queuingModes are the serving modes whose back-ends make raw system calls
// and read several probes before the responder answers any: udpio.Raw and
// udpio.MMsg.
func queuingModes() []serveMode {
	var ms []serveMode
	for _, m := range serveModes {
		if !m.portable && m.sockets == 1 {
			ms = append(ms, m)
		}
	}
	return ms
}

// TestResponderGroupsMixed queues valid probes from two clients between
// datagrams that are not STUN before serving: every probe must get exactly
// one answer, at its own client, and every other datagram be counted as
// dropped.
func TestResponderGroupsMixed(t *testing.T) {
	for _, m := range queuingModes() {
		t.Run(m.name, func(t *testing.T) {
			r := modeResponder(t, m, newFakeClock(), Solo, server1, server2)
			srv := listenUDP(t, "127.0.0.1:0")
			dst := srv.LocalAddr().(*net.UDPAddr).AddrPort()
			const perClient = 40 // more than two of udpio.Raw's groups each
			clients := []*net.UDPConn{listenUDP(t, "127.0.0.1:0"), listenUDP(t, "127.0.0.1:0")}
			for j := range perClient {
				for i, c := range clients {
					if _, err := c.WriteToUDPAddrPort(probe(t, wire.Probe{Session: wire.SessionID{byte(i), byte(j)}}), dst); err != nil {
						t.Fatal(err)
					}
					if _, err := c.WriteToUDPAddrPort([]byte("not a probe"), dst); err != nil {
						t.Fatal(err)
					}
				}
			}
			r.Serve(srv)
			defer r.Stop()
			buf := make([]byte, 2048)
			for i, c := range clients {
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				for j := range perClient {
					n, err := c.Read(buf)
					if err != nil {
						t.Fatalf("client %d, answer %d: %v", i, j+1, err)
					}
					var d wire.Decoder
					var resp wire.Response
					if err := d.DecodeResponse(buf[:n], &resp); err != nil || !resp.Server.IsValid() {
						t.Fatalf("client %d: %+v, %v", i, resp, err)
					}
				}
				c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				if _, err := c.Read(buf); err == nil {
					t.Errorf("client %d: an answer beyond its %d probes", i, perClient)
				}
			}
			if got := r.Stats().Drops["not_stun"]; got != 2*perClient {
				t.Errorf("dropped as not STUN: %d, want %d", got, 2*perClient)
			}
			// The count follows the sends, so it may trail the answers.
			waitFor(t, func() bool { return r.Stats().Answered == 2*perClient })
		})
	}
}
