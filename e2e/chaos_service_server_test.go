//go:build linux

package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/pion/stun/v3"
)

// serviceServerArg, as the test binary's first argument, makes TestMain
// run a service server instead of the tests: the binary re-executed on a
// farm host is a server the chaos suite can SIGKILL like any other, with
// no program to install or build.
const serviceServerArg = "usher-e2e-service-server"

// runServiceServer is the service server's main: args is the UDP address
// to listen on. It answers every STUN Binding request with a Binding
// success carrying XOR-MAPPED-ADDRESS, what a stun health check (and a
// TURN server such as coturn) answers, and ignores everything else, until
// it is killed. It returns an exit code only when it cannot serve.
func runServiceServer(args []string) int {
	if len(args) != 1 {
		fmt.Fprintf(os.Stderr, "usage: %s %s ADDRESS:PORT\n", filepath.Base(os.Args[0]), serviceServerArg)
		return 2
	}
	conn, err := net.ListenPacket("udp", args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "service server: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "service server: answering STUN Bindings on %s\n", conn.LocalAddr())
	if err := serveBindings(conn); err != nil {
		fmt.Fprintf(os.Stderr, "service server: %v\n", err)
		return 1
	}
	return 0
}

// serveBindings answers the Binding requests arriving on conn until a read
// fails.
func serveBindings(conn net.PacketConn) error {
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		udp, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		req := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if req.Decode() != nil || req.Type != stun.BindingRequest {
			continue
		}
		res, err := stun.Build(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
			&stun.XORMappedAddress{IP: udp.IP, Port: udp.Port}, stun.Fingerprint)
		if err != nil {
			return fmt.Errorf("build answer: %w", err)
		}
		// A lost answer is a failed check, which is the check's business.
		_, _ = conn.WriteTo(res.Raw, from)
	}
}

// serviceServer is one service server process of the chaos suite, run on
// an agent's host, restartable on the same address.
type serviceServer struct {
	c    *chaosCluster
	host *Host
	addr netip.AddrPort
	proc *Proc
}

// servicePort is the port every service server listens on, on its host's
// address.
const servicePort = 3490

// start runs the server (again) and waits until it answers a Binding from
// the client host; it returns the instant it was started.
func (s *serviceServer) start() time.Duration {
	s.c.t.Helper()
	self, err := os.Executable()
	if err != nil {
		s.c.t.Fatalf("service server: %v", err)
	}
	at := Monotonic()
	s.proc = s.host.StartIn(s.c.t, filepath.Join(s.c.dir, "logs"), self, serviceServerArg, s.addr.String())
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := stunBinding(s.c.topo.Client(), s.addr, 100*time.Millisecond)
		if err == nil {
			return at
		}
		if time.Now().After(deadline) {
			if done, _ := s.proc.Exited(); done {
				err = errors.Join(err, fmt.Errorf("it exited: %s", tail(s.proc.Log(), 3)))
			}
			s.c.t.Fatalf("service server on %s does not answer: %v", s.host.Name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill SIGKILLs the server, waits until it is reaped, and returns the
// instant read just before the signal.
func (s *serviceServer) kill() time.Duration {
	at := Monotonic()
	if err := s.proc.Kill(); err != nil {
		s.c.t.Fatalf("kill the service server on %s: %v", s.host.Name, err)
	}
	return at
}
