//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/usherlb/usher/assign"
	"github.com/usherlb/usher/internal/srclimit"
	"github.com/usherlb/usher/node"
)

// The probe-path servers `usher-bench` measures, each run in a child
// process (`usher-bench -serve NAME`) so that its CPU time is its own.
const (
	srvEcho       = "echo"        // plain Go UDP echo, one socket
	srvEchoBatch  = "echo-batch"  // x/net ipv4 ReadBatch/WriteBatch echo, one SO_REUSEPORT socket per core
	srvUsher      = "usher"       // the responder, one socket, one probe at a time
	srvUsherBatch = "usher-batch" // the responder, Batch and one socket per core

	// noLimit, appended to an Usher server's name, turns its per-source
	// limit off: TestBenchPairs measures what the limit costs with it.
	noLimit = "-nolimit"
)

// benchLimit is the per-source limit the Usher servers run with: on, as
// the agent runs it, at a rate and burst the generator never reaches from
// its one prefix (127.0.0.0/24), so every probe pays for its bucket and
// none is dropped.
var benchLimit = srclimit.Config{Rate: 1 << 30, Burst: 1 << 30}

// benchServerNames lists the servers in the order the report shows them.
var benchServerNames = []string{srvEcho, srvUsher, srvEchoBatch, srvUsherBatch}

// runBenchServer serves one benchmark server on a loopback port, writes its
// address as the first line of stdout, and serves until stdin is closed.
// Usher's modes redirect to targets, or to three loopback ports nobody uses
// when there are none.
func runBenchServer(name string, targets []netip.AddrPort, stdin io.Reader, stdout io.Writer) error {
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	var stop func()
	var addr netip.AddrPort
	switch name {
	case srvEcho:
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(lo))
		if err != nil {
			return err
		}
		addr = conn.LocalAddr().(*net.UDPAddr).AddrPort()
		done := make(chan struct{})
		go func() { defer close(done); plainEcho(conn) }()
		stop = func() { conn.Close(); <-done }
	case srvEchoBatch:
		conns, err := listenReuseport(lo, runtime.NumCPU())
		if err != nil {
			return err
		}
		addr = conns[0].LocalAddr().(*net.UDPAddr).AddrPort()
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Go(func() { batchEcho(c) })
		}
		stop = func() {
			for _, c := range conns {
				c.Close()
			}
			wg.Wait()
		}
	case srvUsher, srvUsherBatch, srvUsher + noLimit, srvUsherBatch + noLimit:
		f := newFakeFarm(targets)
		cfg := node.ResponderConfig{
			Assign:             assign.Config{StaleAfter: 3 * time.Second},
			View:               &f.view,
			TicketKey:          []byte("usher-bench-ticket-key-32-bytes!"),
			TicketTTL:          time.Hour,
			KeepaliveInterval:  time.Second,
			DeadAfter:          3 * time.Second,
			StockAmplification: 3,
			Backups:            2,
			SourceLimit:        benchLimit,
		}
		base, off := strings.CutSuffix(name, noLimit)
		if off {
			cfg.SourceLimit = srclimit.Config{}
		}
		if base == srvUsherBatch {
			cfg.Batch, cfg.Sockets = true, runtime.NumCPU()
		}
		r := node.NewResponder(cfg)
		f.resp = r
		if err := r.Listen(lo); err != nil {
			return err
		}
		addr = r.Addr()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); f.run(ctx) }()
		stop = func() { cancel(); <-done; r.Close() }
	default:
		return fmt.Errorf("unknown server %q", name)
	}
	fmt.Fprintln(stdout, addr)
	_, err := io.Copy(io.Discard, bufio.NewReader(stdin))
	stop()
	if err != nil {
		return fmt.Errorf("read stdin: %w", err)
	}
	return nil
}

// plainEcho sends every datagram back to its sender, one at a time.
func plainEcho(conn *net.UDPConn) {
	buf := make([]byte, 2048)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		_, _ = conn.WriteToUDPAddrPort(buf[:n], from) // a lost echo is a lost datagram, as on the wire
	}
}

// batchEcho sends every datagram back to its sender, reading whatever the
// socket holds (up to 64) with one recvmmsg and answering with sendmmsg.
func batchEcho(conn *net.UDPConn) {
	pc := ipv4.NewPacketConn(conn)
	msgs := make([]ipv4.Message, 64)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 2048)}
	}
	out := make([]ipv4.Message, 64)
	for {
		n, err := pc.ReadBatch(msgs, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		for i := range n {
			out[i].Buffers = [][]byte{msgs[i].Buffers[0][:msgs[i].N]}
			out[i].Addr = msgs[i].Addr
		}
		for sent := 0; sent < n; {
			k, err := pc.WriteBatch(out[sent:n], 0)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				k = max(k, 1) // skip the datagram the kernel refused
			}
			sent += k
		}
	}
}

// listenReuseport opens n UDP sockets in one SO_REUSEPORT group on addr
// (the first picks the port when addr's is 0).
func listenReuseport(addr netip.AddrPort, n int) ([]*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		return errors.Join(err, serr)
	}}
	var conns []*net.UDPConn
	for range n {
		pc, err := lc.ListenPacket(context.Background(), "udp4", addr.String())
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, err
		}
		c := pc.(*net.UDPConn)
		conns = append(conns, c)
		addr = c.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	return conns, nil
}

// The fake farm behind Usher's probe-path servers: fakeFarmSize servers
// on loopback ports nobody uses, their reports republished every
// fakeFarmPublish.
const (
	fakeFarmSize    = 3
	fakeFarmPublish = 100 * time.Millisecond
)

// fakeFarm stands in for a farm's load reports: every fakeFarmPublish it
// publishes a fresh view in which each server has accepted exactly the
// sessions the responder sent it, as real servers' reports would say, so
// the pending ledger stays as small as in service.
type fakeFarm struct {
	view  atomic.Pointer[assign.View]
	resp  *node.Responder
	nodes []assign.Node
}

// newFakeFarm returns a farm of the servers at addrs, or of fakeFarmSize
// on loopback ports nobody uses.
func newFakeFarm(addrs []netip.AddrPort) *fakeFarm {
	if len(addrs) == 0 {
		lo := netip.MustParseAddr("127.0.0.1")
		for i := range fakeFarmSize {
			addrs = append(addrs, netip.AddrPortFrom(lo, uint16(40001+i)))
		}
	}
	f := &fakeFarm{}
	for i, a := range addrs {
		f.nodes = append(f.nodes, assign.Node{ID: fmt.Sprintf("s%d", i+1), Addr: a, Capacity: 1 << 30})
	}
	f.publish()
	return f
}

// publish installs a view with the responder's assignment counts.
func (f *fakeFarm) publish() {
	var assigned map[string]uint64
	if f.resp != nil {
		assigned = f.resp.Assigned()
	}
	now := time.Now()
	for i := range f.nodes {
		f.nodes[i].Accepted = assigned[f.nodes[i].ID]
		f.nodes[i].ReportedAt = now
	}
	f.view.Store(assign.NewView(f.nodes))
}

// run publishes a view every fakeFarmPublish until ctx ends.
func (f *fakeFarm) run(ctx context.Context) {
	t := time.NewTicker(fakeFarmPublish)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.publish()
		}
	}
}

// benchServer is a benchmark server running in a child process.
type benchServer struct {
	name  string
	addr  netip.AddrPort
	pid   int // whose CPU time counts
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{} // closed when the server has exited

	killed bool // kill sent SIGKILL: its exit status tells nothing
}

// startBenchServer starts `usher-bench -serve name` and waits for its
// address; targets are the servers Usher's modes redirect to.
func startBenchServer(exe, name string, targets ...netip.AddrPort) (*benchServer, error) {
	args := []string{"-serve", name}
	if len(targets) > 0 {
		var ts []string
		for _, t := range targets {
			ts = append(ts, t.String())
		}
		args = append(args, "-targets", strings.Join(ts, ","))
	}
	cmd := exec.Command(exe, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err == nil {
		var addr netip.AddrPort
		if addr, err = netip.ParseAddrPort(strings.TrimSpace(line)); err == nil {
			return &benchServer{name: name, addr: addr, pid: cmd.Process.Pid, cmd: cmd, stdin: stdin}, nil
		}
	}
	err = fmt.Errorf("server %s: no address: %w", name, err)
	if kerr := killProcess(cmd.Process); kerr != nil {
		return nil, errors.Join(err, kerr)
	}
	_ = cmd.Wait() // reaps it; its status is the SIGKILL just sent
	return nil, err
}

// cpu returns the CPU time the server has used so far.
func (s *benchServer) cpu() time.Duration { return procCPU(s.pid) }

// kill sends SIGKILL to the server process.
func (s *benchServer) kill() error {
	s.killed = true
	return killPID(s.pid)
}

// stop ends the server: it closes its stdin, and kills it if it lingers.
// It returns an error if a server process lingered or failed (unless kill
// had ended it).
func (s *benchServer) stop() error {
	s.stdin.Close()
	if s.cmd == nil {
		<-s.done
		return nil
	}
	killed := make(chan error, 1)
	t := time.AfterFunc(3*time.Second, func() { killed <- killProcess(s.cmd.Process) })
	err := s.cmd.Wait()
	switch {
	case !t.Stop(): // the timer fired
		return errors.Join(fmt.Errorf("server %s did not exit within 3s of its stdin closing", s.name), <-killed)
	case err != nil && !s.killed:
		return fmt.Errorf("server %s: %w", s.name, err)
	}
	return nil
}

// killPID sends SIGKILL to process pid; one already gone is no error.
func killPID(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	return nil
}

// killProcess sends SIGKILL to p; one already reaped is no error.
func killProcess(p *os.Process) error {
	return signalProcess(p, syscall.SIGKILL)
}

// signalProcess sends sig to p; one already reaped is no error.
func signalProcess(p *os.Process, sig syscall.Signal) error {
	if err := p.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%v to %d: %w", sig, p.Pid, err)
	}
	return nil
}

// procCPU returns the user plus system CPU time of process pid, all its
// threads, from /proc (in clock ticks of 10 ms); zero if it cannot be read.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start at ")".
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / clockTicks)
}

// clockTicks is USER_HZ, the unit of /proc CPU times: 100 on every Linux
// port Go supports.
const clockTicks = 100
