//go:build linux

package loadsrc

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

func countSockets(t *testing.T, spec Spec) int {
	t.Helper()
	set, err := spec.Validate()
	if err != nil {
		t.Fatal(err)
	}
	r, err := newSockets(set).Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r.Load
}

// udpFarm opens on 127.0.0.1: one unconnected socket bound to port P (a
// server), bound more unconnected sockets sharing P (like coturn's relay
// sockets), local sockets bound to P and connected to distinct peers, and
// peer client sockets connected to P.
func udpFarm(t *testing.T, bound, local, peer int) int {
	t.Helper()
	lc := net.ListenConfig{Control: reusePort}
	srv, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	port := srv.LocalAddr().(*net.UDPAddr).Port
	for range bound - 1 {
		c, err := lc.ListenPacket(context.Background(), "udp4", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	for range local {
		peerSock, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { peerSock.Close() })
		d := net.Dialer{Control: reusePort, LocalAddr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}}
		c, err := d.Dial("udp4", peerSock.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	for range peer {
		c, err := net.Dial("udp4", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	return port
}

func TestSocketsUDP(t *testing.T) {
	port := udpFarm(t, 3, 4, 5)
	cases := []socketCase{
		{"connected, local port", Spec{Protocol: "udp", Port: port}, 4},
		{"connected, peer port", Spec{Protocol: "udp", Port: port, Direction: "peer"}, 5},
		{"bound, local port", Spec{Protocol: "udp", Port: port, State: "bound"}, 3 + 4},
		{"bound, range", Spec{Protocol: "udp", PortRange: fmt.Sprintf("%d-%d", port, port), State: "bound"}, 3 + 4},
	}
	runSocketCases(t, cases)
}

// socketCase is one count a sockets source must read.
type socketCase struct {
	name string
	spec Spec
	want int
}

// runSocketCases checks each case's count as a subtest.
func runSocketCases(t *testing.T, cases []socketCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Source = "sockets"
			if got := countSockets(t, tc.spec); got != tc.want {
				t.Fatalf("count = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestSocketsTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	const n = 6
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
	}
	cases := []socketCase{
		{"established, local port", Spec{Protocol: "tcp", Port: port}, n},
		{"established, peer port", Spec{Protocol: "tcp", Port: port, Direction: "peer"}, n},
		{"bound: the listener is not counted", Spec{Protocol: "tcp", Port: port, State: "bound"}, n},
	}
	runSocketCases(t, cases)
}

// TestSocketsIPv6: a socket of the AF_INET6 family is counted too.
func TestSocketsIPv6(t *testing.T) {
	srv, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no ::1: %v", err)
	}
	defer srv.Close()
	port := srv.LocalAddr().(*net.UDPAddr).Port
	c, err := net.Dial("udp6", srv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := countSockets(t, Spec{Source: "sockets", Protocol: "udp", Port: port, Direction: "peer"}); got != 1 {
		t.Fatalf("count = %d, want 1", got)
	}
}
