package udpio

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"
)

// modes are every back-end; outside Linux Open makes each of them Portable.
var modes = []Mode{Portable, Raw, MMsg}

// listen opens a UDP socket on addr, closed at the end of the test; it
// skips the test where the address family is missing.
func listen(tb testing.TB, addr string) *net.UDPConn {
	tb.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		tb.Skipf("cannot listen on %s: %v", addr, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// open is Open that fails the test on error.
func open(tb testing.TB, conn *net.UDPConn, m Mode) Conn {
	tb.Helper()
	c, err := Open(conn, m)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// addrOf returns conn's bound address, unmapped.
func addrOf(conn *net.UDPConn) netip.AddrPort {
	return unmap(conn.LocalAddr().(*net.UDPAddr).AddrPort())
}

// echo reads n datagrams on c and sends each back to its source with 'y'
// appended, checking that every source is from; it returns how many reads
// it took.
func echo(tb testing.TB, c Conn, n int, from netip.AddrPort) int {
	tb.Helper()
	in, out := NewMessages(MaxBatch), NewMessages(MaxBatch)
	reads := 0
	for got := 0; got < n; reads++ {
		k, err := c.ReadBatch(in)
		if err != nil {
			tb.Fatalf("read %d of %d: %v", got, n, err)
		}
		for i := range k {
			if in[i].Addr != from {
				tb.Errorf("source %v, want %v", in[i].Addr, from)
			}
			out[i].Buf = append(append(out[i].Buf[:0], in[i].Buf...), 'y')
			out[i].Addr = in[i].Addr
		}
		if sent, err := c.WriteBatch(out[:k]); sent != k || err != nil {
			tb.Fatalf("sent %d of %d: %v", sent, k, err)
		}
		got += k
	}
	return reads
}

// TestConnEcho reads datagrams with their sources and answers them in
// every mode, on IPv4, dual-stack and IPv6 sockets: the raw back-ends parse
// and write the sockaddrs themselves.
func TestConnEcho(t *testing.T) {
	tests := []struct {
		name, server, client string
	}{
		{"ipv4", "127.0.0.1:0", "127.0.0.1:0"},
		{"dual-stack socket, ipv4 client", "[::]:0", "127.0.0.1:0"},
		{"ipv6", "[::1]:0", "[::1]:0"},
	}
	for _, m := range modes {
		for _, tt := range tests {
			t.Run(m.String()+"/"+tt.name, func(t *testing.T) {
				srv, cli := listen(t, tt.server), listen(t, tt.client)
				dst := netip.AddrPortFrom(addrOf(cli).Addr(), addrOf(srv).Port())
				const n = 5
				for i := range n {
					if _, err := cli.WriteToUDPAddrPort([]byte{byte(i), 'x'}, dst); err != nil {
						t.Fatal(err)
					}
				}
				srv.SetReadDeadline(time.Now().Add(5 * time.Second))
				echo(t, open(t, srv, m), n, addrOf(cli))
				cli.SetReadDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 64)
				for i := range n {
					k, err := cli.Read(buf)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(buf[:k], []byte{byte(i), 'x', 'y'}) {
						t.Errorf("answer %d = %q", i, buf[:k])
					}
				}
			})
		}
	}
}

// TestConnWriteSkipsUnreachable writes a batch in which one destination
// is IPv6, which an IPv4 socket cannot reach: that one is skipped and the
// others still go.
func TestConnWriteSkipsUnreachable(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			srv, cli := listen(t, "127.0.0.1:0"), listen(t, "127.0.0.1:0")
			to := addrOf(cli)
			msgs := []Message{
				{Buf: []byte("one"), Addr: to},
				{Buf: []byte("lost"), Addr: netip.MustParseAddrPort("[2001:db8::1]:9")},
				{Buf: []byte("two"), Addr: to},
			}
			if sent, err := open(t, srv, m).WriteBatch(msgs); sent != 2 || err != nil {
				t.Fatalf("sent %d, %v; want 2, nil", sent, err)
			}
			cli.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 64)
			for _, want := range []string{"one", "two"} {
				k, err := cli.Read(buf)
				if err != nil || string(buf[:k]) != want {
					t.Fatalf("got %q, %v; want %q", buf[:k], err, want)
				}
			}
		})
	}
}

// TestConnReadEnds checks that a read deadline in the past and closing the
// socket both end a ReadBatch that waits: that is how a serving loop is
// stopped.
func TestConnReadEnds(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			srv := listen(t, "127.0.0.1:0")
			c := open(t, srv, m)
			msgs := NewMessages(MaxBatch)
			done := make(chan error, 1)
			go func() { _, err := c.ReadBatch(msgs); done <- err }()
			time.Sleep(10 * time.Millisecond) // most likely waiting by now; either way it must end
			srv.SetReadDeadline(time.Unix(1, 0))
			if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("after a past deadline: %v", err)
			}
			srv.SetReadDeadline(time.Time{})
			go func() { _, err := c.ReadBatch(msgs); done <- err }()
			time.Sleep(10 * time.Millisecond)
			srv.Close()
			if err := <-done; !errors.Is(err, net.ErrClosed) {
				t.Errorf("after Close: %v", err)
			}
		})
	}
}

// TestConnAllocs checks that a round of reads and writes allocates nothing
// once the Conn is open.
func TestConnAllocs(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			srv, cli := listen(t, "127.0.0.1:0"), listen(t, "127.0.0.1:0")
			c := open(t, srv, m)
			to := addrOf(srv)
			in, out := NewMessages(MaxBatch), NewMessages(MaxBatch)
			pkt, buf := []byte("probe"), make([]byte, 64)
			round := func() {
				for range 4 {
					cli.WriteToUDPAddrPort(pkt, to)
				}
				for got := 0; got < 4; {
					n, err := c.ReadBatch(in)
					if err != nil {
						t.Fatal(err)
					}
					for i := range n {
						out[i].Buf = append(out[i].Buf[:0], in[i].Buf...)
						out[i].Addr = in[i].Addr
					}
					if sent, err := c.WriteBatch(out[:n]); sent != n || err != nil {
						t.Fatalf("sent %d of %d: %v", sent, n, err)
					}
					got += n
				}
				for range 4 {
					cli.ReadFromUDPAddrPort(buf)
				}
			}
			round()
			if n := testing.AllocsPerRun(100, round); n != 0 {
				t.Errorf("%v allocs per round of 4 datagrams", n)
			}
		})
	}
}

// TestConnYieldsWhenFull queues more datagrams than MaxBatch before the
// raw back-ends read them: they must read them all and, when as many
// loops as there are processors are flooded, yield the processor at
// least once on the way, which is what keeps a flood from holding every
// processor their raw system calls never give up. A lone flooded Raw
// loop with a processor to spare must not yield (a yield then only moves
// it between threads), while an MMsg loop yields after every full batch
// (see sock.pace); and no loop whose socket runs dry between reads may.
func TestConnYieldsWhenFull(t *testing.T) {
	tests := []struct {
		name       string
		procs      int // GOMAXPROCS during the test
		others     int // other loops counted as flooded
		queued     int // datagrams queued before each round of reads
		rounds     int
		wantYields bool
	}{
		{"flooded on every processor", 1, 0, 3 * MaxBatch, 1, true},
		{"flooded beside another flooded loop", 2, 1, 3 * MaxBatch, 1, true},
		{"flooded with a processor to spare", 2, 0, 3 * MaxBatch, 1, false}, // Raw only: MMsg always yields
		{"trickle beside a flooded loop", 1, 1, 1, 3 * MaxBatch, false},
	}
	for _, m := range []Mode{Raw, MMsg} {
		for _, tt := range tests {
			t.Run(m.String()+"/"+tt.name, func(t *testing.T) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(tt.procs))
				setBusy(tt.others)
				defer resetBusy()
				srv, cli := listen(t, "127.0.0.1:0"), listen(t, "127.0.0.1:0")
				c := open(t, srv, m)
				yields := 0
				if !setYield(c, func() { yields++ }) {
					t.Skip("no raw back-end here")
				}
				srv.SetReadDeadline(time.Now().Add(5 * time.Second))
				for range tt.rounds {
					for range tt.queued {
						if _, err := cli.WriteToUDPAddrPort([]byte("x"), addrOf(srv)); err != nil {
							t.Fatal(err)
						}
					}
					echo(t, c, tt.queued, addrOf(cli))
				}
				want := tt.wantYields || m == MMsg && tt.queued > MaxBatch
				if got := yields > 0; got != want {
					t.Errorf("%d datagrams queued at once, GOMAXPROCS %d, %d other loops flooded: %d yields", tt.queued, tt.procs, tt.others, yields)
				}
			})
		}
	}
}

// TestParkedLoopNotFlooded reads a flood in full groups, which never find
// the socket empty, so the loop counts as flooded; once the socket is
// empty and the loop waits on it, it holds no processor and must no
// longer count.
func TestParkedLoopNotFlooded(t *testing.T) {
	for _, m := range []Mode{Raw, MMsg} {
		t.Run(m.String(), func(t *testing.T) {
			resetBusy()
			srv, cli := listen(t, "127.0.0.1:0"), listen(t, "127.0.0.1:0")
			srv.SetReadDeadline(time.Now().Add(5 * time.Second))
			c := open(t, srv, m)
			if !setYield(c, func() {}) {
				t.Skip("no raw back-end here")
			}
			const group = 16
			for range 4 * group {
				if _, err := cli.WriteToUDPAddrPort([]byte("x"), addrOf(srv)); err != nil {
					t.Fatal(err)
				}
			}
			msgs := NewMessages(group)
			for read := 0; read < 4*group; {
				n, err := c.ReadBatch(msgs)
				if err != nil {
					t.Fatal(err)
				}
				read += n
			}
			if n := busyLoops.Load(); n != 1 {
				t.Fatalf("after reading full groups: %d loops counted as flooded, want 1", n)
			}
			done := make(chan error, 1)
			go func() { _, err := c.ReadBatch(msgs); done <- err }()
			deadline := time.Now().Add(2 * time.Second)
			for busyLoops.Load() != 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if n := busyLoops.Load(); n != 0 {
				t.Errorf("a loop waiting on its empty socket still counted as flooded (%d)", n)
			}
			if _, err := cli.WriteToUDPAddrPort([]byte("x"), addrOf(srv)); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestTwoFloodedLoopsYield floods two sockets at once on two processors:
// with every processor held by a flooded loop, each must yield on the way.
func TestTwoFloodedLoopsYield(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	resetBusy()
	for _, m := range []Mode{Raw, MMsg} {
		t.Run(m.String(), func(t *testing.T) {
			cli := listen(t, "127.0.0.1:0")
			var conns [2]Conn
			var yields [2]int
			for i := range conns {
				srv := listen(t, "127.0.0.1:0")
				srv.SetReadDeadline(time.Now().Add(5 * time.Second))
				conns[i] = open(t, srv, m)
				if !setYield(conns[i], func() { yields[i]++ }) {
					t.Skip("no raw back-end here")
				}
				for range 4 * MaxBatch {
					if _, err := cli.WriteToUDPAddrPort([]byte("x"), addrOf(srv)); err != nil {
						t.Fatal(err)
					}
				}
			}
			msgs := NewMessages(MaxBatch)
			left := [2]int{4 * MaxBatch, 4 * MaxBatch}
			for left[0] > 0 || left[1] > 0 {
				for i, c := range conns {
					if left[i] == 0 {
						continue
					}
					n, err := c.ReadBatch(msgs[:min(16, left[i])])
					if err != nil {
						t.Fatal(err)
					}
					left[i] -= n
				}
			}
			if yields[0] == 0 || yields[1] == 0 {
				t.Errorf("two loops flooded on two processors yielded %v times, want both at least once", yields)
			}
		})
	}
}
