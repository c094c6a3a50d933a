//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/usherlb/usher/node"
	"github.com/usherlb/usher/wire"
)

// Part 2: the same client sessions through an in-path proxy (nginx's UDP
// stream module, least_conn) and through Usher's redirect, to the same
// session servers (Usher's own endpoints, in this process).
const (
	balNginx = "nginx"
	balUsher = "usher"

	proxyServers  = 3
	proxyInterval = 100 * time.Millisecond // between keepalives of one session
	proxySetupPar = 64                     // sessions set up at once
	// proxyKillMargin is how many keepalive intervals after the balancer's
	// kill a session's answered keepalive must have been sent for the
	// session to count as surviving, so that none in flight at the kill
	// counts.
	proxyKillMargin = 3
)

// proxyBalancers lists the balancers in report order.
var proxyBalancers = []string{balNginx, balUsher}

// proxyFigures are part 2's measurements, by balancer.
type proxyFigures struct {
	Sessions  int               `json:"sessions"`
	Nginx     string            `json:"nginx"`        // nginx -v
	Install   string            `json:"install"`      // how nginx got here
	SetupRate map[string]spread `json:"setup_rate"`   // sessions set up per second
	CPUPerM   map[string]spread `json:"cpu_per_m"`    // balancer CPU seconds per million session packets
	Survived  map[string]spread `json:"survived"`     // share of sessions still answered after the balancer's SIGKILL
	SetupP50  map[string]spread `json:"setup_p50_ms"` // setup latency, ms
}

// benchProxy runs part 2: nginx's stream proxy and Usher's redirect,
// interleaved, each repeat: set up the sessions, run them for a while
// measuring the balancer's CPU, then SIGKILL the balancer and see which
// sessions are still answered.
func benchProxy(ctx context.Context, o benchOpts) (*proxyFigures, error) {
	pf := &proxyFigures{Sessions: 3000, SetupRate: map[string]spread{}, CPUPerM: map[string]spread{},
		Survived: map[string]spread{}, SetupP50: map[string]spread{}}
	if o.quick {
		pf.Sessions = 1000
	}
	var err error
	if pf.Install, err = ensureNginx(ctx, o); err != nil {
		return nil, err
	}
	if out, err := exec.Command(nginxBin, "-v").CombinedOutput(); err == nil {
		pf.Nginx = strings.TrimSpace(string(out))
	}
	var servers []*node.Endpoint
	var addrs []netip.AddrPort
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	for range proxyServers {
		ep, err := node.ListenEndpoint(netip.MustParseAddrPort("127.0.0.1:0"), node.EndpointConfig{
			SessionTTL: time.Minute, StockAmplification: 3})
		if err != nil {
			return nil, err
		}
		servers = append(servers, ep)
		addrs = append(addrs, ep.Addr())
	}
	for r := range o.repeats {
		for _, bal := range flip([2]string{balNginx, balUsher}, r) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			res, err := proxyRun(ctx, o, bal, addrs, pf.Sessions)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", bal, err)
			}
			pf.SetupRate[bal] = append(pf.SetupRate[bal], res.setupRate)
			pf.SetupP50[bal] = append(pf.SetupP50[bal], res.setupP50)
			pf.CPUPerM[bal] = append(pf.CPUPerM[bal], res.cpuPerM)
			pf.Survived[bal] = append(pf.Survived[bal], res.survived)
			fmt.Fprintf(o.log, "sessions %d/%d %-5s %7.0f setups/s (p50 %.2f ms) %6.2f CPU s per M packets, %5.1f%% answered after the kill\n",
				r+1, o.repeats, bal, res.setupRate, res.setupP50, res.cpuPerM, 100*res.survived)
		}
	}
	return pf, nil
}

// proxyResult is one run of part 2 with one balancer.
type proxyResult struct {
	setupRate, setupP50, cpuPerM, survived float64
}

// balancer is a running nginx or Usher responder.
type balancer struct {
	addr netip.AddrPort
	cpu  func() time.Duration
	kill func() error // SIGKILL, every process of it
	stop func() error
}

// proxyRun sets up n sessions through bal, runs them, kills bal, and
// reports.
func proxyRun(ctx context.Context, o benchOpts, bal string, servers []netip.AddrPort, n int) (res proxyResult, err error) {
	var b *balancer
	if bal == balNginx {
		b, err = startNginx(servers)
	} else {
		b, err = startUsherBalancer(o.exe, servers)
	}
	if err != nil {
		return proxyResult{}, err
	}
	defer func() { err = errors.Join(err, b.stop()) }()
	if err := checkLoopback(b.addr); err != nil {
		return proxyResult{}, err
	}
	cpu0 := b.cpu()
	t0 := time.Now()
	sess, lat, err := setupSessions(bal, b.addr, n)
	setup := time.Since(t0)
	defer func() {
		for _, s := range sess {
			if s != nil {
				s.conn.Close()
			}
		}
	}()
	if err != nil {
		return res, err
	}
	res.setupRate = float64(n) / setup.Seconds()
	res.setupP50 = lat.median()
	res.cpuPerM, res.survived, err = runAndKill(ctx, o, bal, b, sess, cpu0)
	return res, err
}

// setupSessions sets up n sessions through the balancer bal at addr,
// proxySetupPar at a time, and returns them with each one's setup time in
// ms; on an error, the sessions set up so far are returned too.
func setupSessions(bal string, addr netip.AddrPort, n int) ([]*benchSession, spread, error) {
	sess := make([]*benchSession, n)
	lat := make(spread, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, proxySetupPar)
	for w := range proxySetupPar {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano()))) //nolint:gosec // G404: varied test traffic
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				s, d, err := setupSession(bal, addr, rng)
				if err != nil {
					errs <- err
					return
				}
				sess[i], lat[i] = s, float64(d.Microseconds())/1e3
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return sess, lat, err
	default:
		return sess, lat, nil
	}
}

// runAndKill runs the sessions: a keepalive every proxyInterval each, for
// o.duration (at least 20 keepalives each). The balancer's CPU counts from
// cpu0, taken before the setups, to the kill, against every packet of the
// sessions' lives so far: setup (Usher: probe, redirect, keepalive,
// answer; nginx: keepalive, answer) and keepalives. Then it kills the
// balancer and watches; it returns the CPU seconds per million packets and
// the share of sessions that survived, or why the balancer could not be
// killed.
func runAndKill(ctx context.Context, o benchOpts, bal string, b *balancer, sess []*benchSession, cpu0 time.Duration) (cpuPerM, survived float64, err error) {
	n := len(sess)
	runCtx, cancel := context.WithCancel(ctx)
	var (
		packets atomic.Uint64
		wg      sync.WaitGroup
	)
	setupPackets := uint64(2 * n)
	if bal == balUsher {
		setupPackets = uint64(4 * n)
	}
	packets.Add(setupPackets)
	for _, s := range sess {
		wg.Go(func() { s.run(runCtx, &packets) })
	}
	time.Sleep(max(o.duration, 20*proxyInterval))
	p1, c1 := packets.Load(), b.cpu()
	cpuPerM = (c1 - cpu0).Seconds() / (float64(p1) / 1e6)
	if err := b.kill(); err != nil {
		cancel()
		wg.Wait()
		return 0, 0, err
	}
	killed := time.Now()
	time.Sleep(max(o.duration, 10*proxyInterval))
	cancel()
	wg.Wait()
	// A session survived if a keepalive sent well after the kill was
	// answered.
	alive := 0
	for _, s := range sess {
		if time.Unix(0, s.lastAnswered.Load()).After(killed.Add(proxyKillMargin * proxyInterval)) {
			alive++
		}
	}
	return cpuPerM, float64(alive) / float64(n), nil
}

// benchSession is one client session: its socket, where its keepalives go,
// and when it last got an answer.
type benchSession struct {
	conn         *net.UDPConn
	to           netip.AddrPort
	id           wire.SessionID
	ticket       []byte
	lastAnswered atomic.Int64 // unix ns
}

// setupSession opens a session through the balancer: with nginx, the first
// keepalive through the proxy answered; with Usher, a probe answered with a
// redirect, then the first keepalive to the assigned server answered.
func setupSession(bal string, addr netip.AddrPort, rng *rand.Rand) (*benchSession, time.Duration, error) {
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		return nil, 0, err
	}
	s := &benchSession{conn: conn, to: addr}
	for i := range s.id {
		s.id[i] = byte(rng.Uint32())
	}
	start := time.Now()
	var enc wire.Encoder
	var dec wire.Decoder
	buf := make([]byte, 2048)
	if bal == balUsher {
		var p wire.Probe
		p.Session, p.PadTo = s.id, wire.ProbeSize
		fillTxID(&p.TxID, rng)
		pkt, err := enc.AppendProbe(nil, &p)
		if err != nil {
			conn.Close()
			return nil, 0, err
		}
		resp, err := exchange(conn, addr, pkt, buf, &dec)
		if err != nil || resp.Server == (netip.AddrPort{}) {
			conn.Close()
			return nil, 0, fmt.Errorf("probe: no redirect: %v", err)
		}
		s.to, s.ticket = resp.Server, append([]byte(nil), resp.Ticket...)
	}
	if _, err := exchange(conn, s.to, s.keepalive(&enc, rng), buf, &dec); err != nil {
		conn.Close()
		return nil, 0, fmt.Errorf("first keepalive: %w", err)
	}
	return s, time.Since(start), nil
}

// exchange sends pkt to addr until an answer comes (200 ms apart, five
// tries) and decodes it.
func exchange(conn *net.UDPConn, addr netip.AddrPort, pkt, buf []byte, dec *wire.Decoder) (wire.Response, error) {
	var resp wire.Response
	for range 5 {
		if _, err := conn.WriteToUDPAddrPort(pkt, addr); err != nil {
			return resp, err
		}
		if err := conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
			return resp, err
		}
		n, _, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			return resp, err
		}
		err = dec.DecodeResponse(buf[:n], &resp)
		return resp, err
	}
	return resp, errors.New("no answer")
}

// keepalive encodes one keepalive of the session.
func (s *benchSession) keepalive(enc *wire.Encoder, rng *rand.Rand) []byte {
	k := wire.Keepalive{Session: s.id, Ticket: s.ticket, PadTo: wire.KeepaliveSize}
	fillTxID(&k.TxID, rng)
	out, err := enc.AppendKeepalive(nil, &k)
	if err != nil {
		panic(err) // a fixed, valid keepalive
	}
	return out
}

// run sends a keepalive every proxyInterval (starting at a random point of
// the first) and notes each answer, until ctx ends. packets counts the
// session's datagrams both ways.
func (s *benchSession) run(ctx context.Context, packets *atomic.Uint64) {
	rng := rand.New(rand.NewPCG(rand.Uint64(), 1)) //nolint:gosec // G404: spreads the sessions' send times
	var enc wire.Encoder
	buf := make([]byte, 2048)
	next := time.Now().Add(time.Duration(rng.Int64N(int64(proxyInterval))))
	for ctx.Err() == nil {
		if err := s.conn.SetReadDeadline(next); err != nil {
			return // a closed socket
		}
		for {
			if _, _, err := s.conn.ReadFromUDPAddrPort(buf); err != nil {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					// ICMP port unreachable, once the balancer is gone.
					time.Sleep(time.Until(next))
				}
				break
			}
			s.lastAnswered.Store(time.Now().UnixNano())
			packets.Add(1)
		}
		// A send fails once the balancer is gone (ICMP port unreachable);
		// the answer it does not get is what the run counts.
		_, _ = s.conn.WriteToUDPAddrPort(s.keepalive(&enc, rng), s.to)
		packets.Add(1)
		next = next.Add(proxyInterval)
	}
}

// fillTxID fills a transaction ID with random bytes.
func fillTxID(tx *[12]byte, rng *rand.Rand) {
	for i := range tx {
		tx[i] = byte(rng.Uint32())
	}
}

// startUsherBalancer runs Usher's batched responder in a child process,
// redirecting to servers.
func startUsherBalancer(exe string, servers []netip.AddrPort) (*balancer, error) {
	s, err := startBenchServer(exe, srvUsherBatch, servers...)
	if err != nil {
		return nil, err
	}
	return &balancer{
		addr: s.addr,
		cpu:  s.cpu,
		kill: s.kill,
		stop: s.stop,
	}, nil
}

// nginx's binary and stream module, as Debian installs them.
const (
	nginxBin    = "/usr/sbin/nginx"
	nginxStream = "/usr/lib/nginx/modules/ngx_stream_module.so"
)

// ensureNginx installs nginx and its stream module with apt-get if either
// is missing, and says what it did.
func ensureNginx(ctx context.Context, o benchOpts) (string, error) {
	_, errBin := os.Stat(nginxBin)
	_, errMod := os.Stat(nginxStream)
	if errBin == nil && errMod == nil {
		return "already installed; `usher-bench` installs it with `apt-get install -y --no-install-recommends nginx-light libnginx-mod-stream` when missing", nil
	}
	args := []string{"install", "-y", "--no-install-recommends", "nginx-light", "libnginx-mod-stream"}
	fmt.Fprintf(o.log, "nginx or its stream module is missing: apt-get %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	if _, err := os.Stat(nginxStream); err != nil {
		return "", fmt.Errorf("nginx stream module still missing after apt-get: %w", err)
	}
	return "installed by this run: `apt-get " + strings.Join(args, " ") + "`", nil
}

// startNginx runs nginx in the foreground from a configuration of its own
// in a temporary directory: one UDP stream server on a free loopback port,
// least_conn over servers, one worker per core on SO_REUSEPORT sockets.
func startNginx(servers []netip.AddrPort) (*balancer, error) {
	port, err := freeUDPPort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "usher-bench-nginx-")
	if err != nil {
		return nil, err
	}
	path, err := writeNginxConf(dir, servers, port)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmd := exec.Command(nginxBin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if out, err := exec.Command(nginxBin, "-t", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", path).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("nginx -t: %w\n%s", err, out)
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	master := cmd.Process.Pid
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the status of an nginx this run stops tells nothing
		close(done)
	}()
	// Ready once every worker runs.
	for deadline := time.Now().Add(5 * time.Second); len(childPIDs(master)) < 1; {
		if time.Now().After(deadline) {
			err := killProcess(cmd.Process)
			if err == nil {
				<-done
			}
			return nil, errors.Join(errors.New("nginx started no worker"), err, os.RemoveAll(dir))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	return nginxBalancer(cmd, done, dir, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))), nil
}

// writeNginxConf writes the configuration of an nginx UDP stream proxy on
// 127.0.0.1:port, least_conn over servers, into dir and returns its path.
func writeNginxConf(dir string, servers []netip.AddrPort, port int) (string, error) {
	var up strings.Builder
	for _, s := range servers {
		fmt.Fprintf(&up, "        server %s;\n", s)
	}
	conf := fmt.Sprintf(`load_module %s;
worker_processes auto;
worker_rlimit_nofile 40000;
daemon off;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 16384; }
stream {
    upstream servers {
        least_conn;
%s    }
    server {
        listen 127.0.0.1:%d udp reuseport;
        proxy_pass servers;
        proxy_timeout 60s;
    }
}
`, nginxStream, dir, dir, up.String(), port)
	path := filepath.Join(dir, "nginx.conf")
	return path, os.WriteFile(path, []byte(conf), 0o600)
}

// nginxBalancer returns the running nginx, master cmd (reaped by whoever
// closes done) with its scratch directory dir, as a balancer at addr.
func nginxBalancer(cmd *exec.Cmd, done <-chan struct{}, dir string, addr netip.AddrPort) *balancer {
	master := cmd.Process.Pid
	pids := func() []int { return append([]int{master}, childPIDs(master)...) }
	return &balancer{
		addr: addr,
		cpu: func() time.Duration {
			var t time.Duration
			for _, p := range pids() {
				t += procCPU(p)
			}
			return t
		},
		kill: func() error {
			var errs []error
			for _, p := range pids() {
				errs = append(errs, killPID(p))
			}
			return errors.Join(errs...)
		},
		stop: func() error {
			workers := childPIDs(master)
			errs := []error{signalProcess(cmd.Process, syscall.SIGTERM)}
			select {
			case <-done:
			case <-time.After(3 * time.Second):
				if err := killProcess(cmd.Process); err != nil {
					return errors.Join(append(errs, err)...) // still running: keep its directory
				}
				<-done
			}
			for _, p := range workers {
				errs = append(errs, killPID(p)) // orphans of a killed master
			}
			return errors.Join(append(errs, os.RemoveAll(dir))...)
		},
	}
}

// childPIDs returns the processes whose parent is pid, from /proc.
func childPIDs(pid int) []int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err == nil {
		var out []int
		for f := range strings.FieldsSeq(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
		return out
	}
	return nil
}

// freeUDPPort returns a UDP port on 127.0.0.1 nobody was bound to a moment
// ago.
func freeUDPPort() (int, error) {
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// plot draws part 2's charts into dir.
func (pf *proxyFigures) plot(dir string) ([]string, error) {
	charts := []struct {
		file, title, ylabel string
		by                  map[string]spread
		k                   float64
	}{
		{"proxy_cpu.png", "Balancer CPU per million session packets (median, min–max)", "CPU seconds", pf.CPUPerM, 1},
		{"proxy_setup.png", "Sessions set up per second (median, min–max)", "sessions/s", pf.SetupRate, 1},
		{"proxy_kill.png", "Sessions still answered after SIGKILL of the balancer", "% of sessions", pf.Survived, 100},
	}
	var files []string
	for _, c := range charts {
		var vals []spread
		for _, b := range proxyBalancers {
			vals = append(vals, scale(c.by[b], c.k))
		}
		if err := barChart(filepath.Join(dir, c.file), c.title, c.ylabel, proxyBalancers, []barSeries{{"", vals}}); err != nil {
			return files, err
		}
		files = append(files, c.file)
	}
	return files, nil
}
