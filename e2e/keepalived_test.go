//go:build linux

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usherlb/usher/wire"
)

// Environment variables of the keepalived comparison. It is a benchmark, not
// a test: it installs a system package and runs for minutes, so it only runs
// when asked.
const (
	// KeepalivedEnv opts in to TestKeepalivedFailover when set to "1".
	KeepalivedEnv = "USHER_BENCH_KEEPALIVED"
	// KeepalivedRepsEnv is how many holder deaths each advert interval
	// gets (default 20).
	KeepalivedRepsEnv = "USHER_KEEPALIVED_REPS"
)

// keepalivedRouterID is the VRRP virtual router id of the comparison.
const keepalivedRouterID = 51

// keepalivedSetting is one advert interval to measure.
type keepalivedSetting struct {
	name    string // the results' profile: keepalived-<name>-netns.json
	advert  string // advert_int as keepalived reads it
	version int    // vrrp_version
}

// keepalivedSettings are Debian's defaults (VRRPv2, one advert a second) and
// the tuned setting (VRRPv3, which allows centisecond adverts, at 0.1 s).
var keepalivedSettings = []keepalivedSetting{
	{name: "1s", advert: "1", version: 2},
	{name: "100ms", advert: "0.1", version: 3},
}

// keepalivedPriorities are the VRRP priorities of h1, h2 and h3: h1 is the
// preferred holder and takes the VIP back (preempts) when it returns.
var keepalivedPriorities = []int{150, 100, 50}

// TestKeepalivedFailover measures the VIP failover gap of keepalived (VRRP)
// in the chaos suite's namespace farm, with the chaos suite's prober, so the
// numbers sit beside Usher's leader-death results: each server runs
// keepalived and a responder on VIP:3478, the holder dies as in
// leader-death (its link goes down, then keepalived is SIGKILLed), and the
// gap is the death to the first answered probe. The busy-<interval>
// variants (keepalived-busy-<interval>-netns.json) run the busy-host
// scenario's neighbours (chaos_busy_test.go) on the servers throughout,
// watch the VIP for $USHER_CHAOS_BUSY first, then kill the holder as
// above. It rebuilds the results README when done.
func TestKeepalivedFailover(t *testing.T) {
	if os.Getenv(KeepalivedEnv) != "1" {
		t.Skipf("keepalived comparison is a benchmark: set %s=1 (as root) to run it", KeepalivedEnv)
	}
	if reason := farmUnsupported(); reason != "" {
		t.Skip(reason)
	}
	reps := 20
	if s := os.Getenv(KeepalivedRepsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive integer", KeepalivedRepsEnv, s)
		}
		reps = n
	}
	bin := ensureKeepalived(t)
	dir := os.Getenv(ResultsEnv)
	if dir == "" {
		dir = "results"
	}
	for _, busy := range []bool{false, true} {
		for _, set := range keepalivedSettings {
			name, scenario := set.name, "keepalived"
			if busy {
				name, scenario = "busy-"+set.name, "keepalived-busy"
			}
			t.Run(name, func(t *testing.T) {
				var load *busyLoad
				if busy {
					l := loadBusyLoad(t)
					load = &l
				}
				res := newResult(scenario, set.name, "netns")
				start := time.Now()
				runKeepalived(t, bin, set, reps, load, res)
				res.Seconds = time.Since(start).Seconds()
				res.LoadEnd = loadAvg()
				res.log(t.Logf)
				if err := res.write(dir); err != nil {
					t.Errorf("writing results: %v", err)
				}
			})
		}
	}
	if err := writeTable(dir); err != nil {
		t.Errorf("writing results table: %v", err)
	}
}

// ensureKeepalived returns the keepalived binary, installing Debian's
// package first if it is missing.
func ensureKeepalived(t *testing.T) string {
	t.Helper()
	if p, err := keepalivedPath(); err == nil {
		return p
	}
	aptInstall(t, "keepalived")
	p, err := keepalivedPath()
	if err != nil {
		t.Fatalf("keepalived installed but not found: %v", err)
	}
	return p
}

// keepalivedPath finds keepalived on PATH or in /usr/sbin and checks that it
// runs.
func keepalivedPath() (string, error) {
	p, err := exec.LookPath("keepalived")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/keepalived"); serr != nil {
			return "", err
		}
		p = "/usr/sbin/keepalived"
	}
	if out, err := exec.Command(p, "--version").CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s --version: %w: %s", p, err, out)
	}
	return p, nil
}

// keepalivedConfig returns the configuration of one server's keepalived.
func keepalivedConfig(set keepalivedSetting, prio int, vip netip.Addr, dir string) string {
	return fmt.Sprintf(`global_defs {
	router_id %s
	vrrp_version %d
	script_user root
	enable_script_security
}

vrrp_instance usher_e2e {
	state BACKUP
	interface eth0
	virtual_router_id %d
	priority %d
	advert_int %s
	virtual_ipaddress {
		%s/32 dev eth0
	}
}
`, filepath.Base(dir), set.version, keepalivedRouterID, prio, set.advert, vip)
}

// kaNode is one server of the keepalived farm.
type kaNode struct {
	host *Host
	bin  string
	dir  string // config and pid files
	proc *Proc
}

// start runs keepalived in the foreground, VRRP only, logging to the
// console, with pid files of its own so instances on one machine do not
// clash. It first removes the pid files a SIGKILLed keepalived left, as a
// reboot clears /run: keepalived refuses to start while the pid in one
// still exists, and the killed VRRP child may linger a moment as a zombie.
func (n *kaNode) start(t *testing.T) {
	for _, f := range []string{"keepalived.pid", "vrrp.pid", "checkers.pid"} {
		if err := os.Remove(filepath.Join(n.dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	n.proc = n.host.Start(t, n.bin,
		"--dont-fork", "--log-console", "--log-detail", "--vrrp",
		"--use-file", filepath.Join(n.dir, "keepalived.conf"),
		"--pid", filepath.Join(n.dir, "keepalived.pid"),
		"--vrrp_pid", filepath.Join(n.dir, "vrrp.pid"),
		"--checkers_pid", filepath.Join(n.dir, "checkers.pid"),
	)
}

// reboot brings the node's host back after its death, as if rebooted:
// without the VIP that SIGKILL left on its interface, then keepalived starts
// again. keepalived usually removed it already: it saw the carrier go and
// entered its fault state before the SIGKILL landed, which changes nothing
// on the wire, as the link was down.
func (n *kaNode) reboot(t *testing.T, rep int, vip netip.Addr) {
	if _, err := ip("-n", n.host.NS, "addr", "del", netip.PrefixFrom(vip, 32).String(), "dev", n.host.Iface); err != nil &&
		!strings.Contains(err.Error(), "Address not found") {
		t.Errorf("rep %d: removing the stale VIP from %s: %v", rep, n.host.Name, err)
	}
	if err := n.host.LinkUp(); err != nil {
		t.Fatal(err)
	}
	n.start(t)
}

// holds reports whether the node's eth0 carries vip.
func (n *kaNode) holds(vip netip.Addr) (bool, error) {
	out, err := ip("-n", n.host.NS, "-4", "-o", "addr", "show", "dev", n.host.Iface)
	if err != nil {
		return false, err
	}
	return strings.Contains(out, " "+vip.String()+"/"), nil
}

// runKeepalived measures reps holder deaths on a fresh farm with setting
// set, beside busy neighbours when load is not nil.
func runKeepalived(t *testing.T, bin string, set keepalivedSetting, reps int, load *busyLoad, res *chaosResult) {
	farm := NewFarm(t, len(keepalivedPriorities))
	vip := farm.VIP()
	base := t.TempDir()
	var nodes []*kaNode
	for i, h := range farm.Servers() {
		n := &kaNode{host: h, bin: bin, dir: filepath.Join(base, h.Name)}
		if err := os.MkdirAll(n.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		conf := keepalivedConfig(set, keepalivedPriorities[i], vip, n.dir)
		if err := os.WriteFile(filepath.Join(n.dir, "keepalived.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		startResponder(t, h, netip.AddrPortFrom(vip, vipPort), uint64(i+1))
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		n.start(t)
	}
	// The chaos suite's prober needs only the test and the topology.
	pr := startProber(&chaosCluster{t: t, topo: farm}, probeEvery)
	first := nodes[0]
	answeredBy := func(n *kaNode) netip.AddrPort { return netip.AddrPortFrom(n.host.Addr, vipPort) }
	finish := func() {}
	if load != nil {
		finish = keepalivedBusyWatch(t, *load, farm.Client(), nodes, vip, pr, answeredBy(first), res)
	}

	for rep := range reps {
		// Steady state: h1 alone holds the VIP and answers.
		waitSteady(t, rep, nodes, vip, pr, answeredBy(first))
		if err := first.host.LinkDown(); err != nil {
			t.Fatal(err)
		}
		t0 := Monotonic()
		if err := first.proc.Kill(); err != nil {
			t.Fatalf("kill keepalived on %s: %v", first.host.Name, err)
		}
		a, ok := pr.firstAfter(t0, answerTimeout)
		if !ok {
			res.violation("no-failover")
			t.Errorf("rep %d: no answer at the VIP within %v of %s's death", rep, answerTimeout, first.host.Name)
		} else {
			res.observe("vip-failover-gap", a.recv-t0)
			if a.server != answeredBy(nodes[1]) {
				// Beside busy neighbours the next backup's adverts may
				// come late, and the lowest priority takes over first:
				// counted, not a failure of the measurement.
				res.violation("unexpected-holder")
				report := t.Errorf
				if load != nil {
					report = res.note
				}
				report("rep %d: first answer after the death came from %v, want %v", rep, a.server, answeredBy(nodes[1]))
			}
		}
		first.reboot(t, rep, vip)
		res.repDone()
	}
	waitSteady(t, reps, nodes, vip, pr, answeredBy(first))
	finish()
	res.Answers = len(pr.snapshot())
	m := res.Metrics["vip-failover-gap"]
	if m != nil {
		res.summarize()
		res.note("%s, VRRPv%d, advert_int %s, priorities %v, preempt; holder death = link down, then SIGKILL of keepalived; "+
			"a balancer in the path behind this VIP stalls every session for the whole gap (p50 %.0f ms, max %.0f ms), "+
			"while Usher's sessions talk to their servers directly, off the VIP's path (leader-death checks them undisturbed)",
			keepalivedVersion(bin), set.version, set.advert, keepalivedPriorities, m.P50, m.Max)
	}
}

// waitSteady waits until only the first node holds the VIP and a probe sent
// now is answered by it.
func waitSteady(t *testing.T, rep int, nodes []*kaNode, vip netip.Addr, pr *prober, want netip.AddrPort) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		for i, n := range nodes {
			h, err := n.holds(vip)
			if err != nil {
				t.Fatal(err)
			}
			if h != (i == 0) {
				ok = false
			}
		}
		if ok {
			if a, got := pr.firstAfter(Monotonic(), time.Second); got && a.server == want {
				// One more, so a late answer of the old holder does not
				// count as steady.
				if a, got := pr.firstAfter(Monotonic(), time.Second); got && a.server == want {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("rep %d: the VIP did not settle on %v within 30s", rep, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// keepalivedVersion returns the first line of `keepalived --version`.
func keepalivedVersion(bin string) string {
	out, _ := exec.Command(bin, "--version").CombinedOutput()
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

// startResponder answers every probe to addr on h with a redirect naming h
// (ALTERNATE-SERVER h.Addr:vipPort, USHER-TERM term), the way a balancer
// would, so the chaos prober can tell which host answered. The socket binds
// the VIP with IP_FREEBIND, so it exists before the host holds the address
// and answers only while it does.
func startResponder(t *testing.T, h *Host, addr netip.AddrPort, term uint64) {
	t.Helper()
	var conn net.PacketConn
	if err := h.Do(func() error {
		lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
			}); err != nil {
				return err
			}
			return serr
		}}
		var err error
		conn, err = lc.ListenPacket(context.Background(), "udp4", addr.String())
		return err
	}); err != nil {
		t.Fatalf("responder on %s: %v", h.Name, err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var dec wire.Decoder
		var enc wire.Encoder
		var req wire.Request
		buf := make([]byte, 2048)
		var out []byte
		redirect := &wire.Redirect{Server: netip.AddrPortFrom(h.Addr, vipPort), Term: term}
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			if dec.DecodeRequest(buf[:n], &req) != nil {
				continue
			}
			out, err = enc.AppendRedirect(out[:0], &req, redirect, wire.Limit(&req, 1))
			if err != nil {
				continue
			}
			_, _ = conn.WriteTo(out, from)
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		wg.Wait()
	})
}
