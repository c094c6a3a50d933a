//go:build linux

package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"golang.org/x/sys/unix"

	"github.com/usherlb/usher/internal/testutil"
	"github.com/usherlb/usher/wire"
)

// The busy-host watches probe the balancer address from a process of
// their own on the client host, the test binary run again as
// TestHelperWatch: one thread at the agents' nice value that sends, sleeps
// and reads in the kernel (ppoll), with Go's garbage collector off and its
// memory locked. In the test process the prober also waited, now and then,
// for the runtime (a stop of the world for the collector needs every thread
// of the process to run, at normal priority beside the hogs), and those
// waits, not the farm, made the longest gaps; unlocked, the watch process
// once stalled 1.6 s, its own pages read back from the disk the writers
// keep busy, where a real client's disk is its own.

// watchHelperArg is the helper's first argument after the test flags; a
// JSON watchSpec follows it.
const watchHelperArg = "usher-e2e-watch"

// watchSpec is what a watch process probes, how often, for how long, and
// at which nice value.
type watchSpec struct {
	To    netip.AddrPort `json:"to"`
	Every time.Duration  `json:"every"`
	For   time.Duration  `json:"for"`
	Grace time.Duration  `json:"grace"` // for the last probes' answers
	Nice  int            `json:"nice"`
}

// pause is a stretch between two of a watch process's sends, on
// Monotonic.
type pause struct{ from, to time.Duration }

// stallAfter is how long a pause between two of a watch process's sends
// must be for it to be recorded (see watchResult.longestPause).
const stallAfter = 10 * time.Millisecond

// watchResult is what a watch process saw: the Monotonic instant its
// first probe went out, the probes sent, their answers, and its own
// pauses between sends longer than stallAfter.
type watchResult struct {
	start  time.Duration
	sent   int
	answer []answer
	pauses []pause
}

// TestHelperWatch is the body of a watch process: it probes the watchSpec
// of its second argument, then prints what it saw (see printWatch). In a
// normal run it skips.
func TestHelperWatch(t *testing.T) {
	args := flag.Args()
	if len(args) != 2 || args[0] != watchHelperArg {
		t.Skip("watch process for the busy-host scenarios")
	}
	var s watchSpec
	if err := json.Unmarshal([]byte(args[1]), &s); err != nil {
		fmt.Println("watch:", err)
		os.Exit(1)
	}
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(-1) // a few MB in ten minutes
	if err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE); err != nil {
		fmt.Println("watch: mlockall:", err)
		os.Exit(1)
	}
	lockNiced(s.Nice)
	res, err := watch(s)
	if err != nil {
		fmt.Println("watch:", err)
		os.Exit(1)
	}
	printWatch(os.Stdout, res)
}

// watch sends a padded probe to s.To every s.Every for s.For and records
// every answer that comes within s.Grace of the last probe.
func watch(s watchSpec) (*watchResult, error) {
	c, err := net.ListenUDP("udp4", nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	w := &watcher{spec: s, pending: map[[stun.TransactionIDSize]byte]time.Duration{}, buf: make([]byte, 2048)}
	var loopErr error
	if err := rc.Control(func(fd uintptr) { loopErr = w.loop(int(fd)) }); err != nil {
		return nil, err
	}
	return &w.res, loopErr
}

// watcher is a watch in progress, owned by its one thread.
type watcher struct {
	spec    watchSpec
	res     watchResult
	pending map[[stun.TransactionIDSize]byte]time.Duration
	enc     wire.Encoder
	dec     wire.Decoder
	resp    wire.Response
	pkt     []byte
	buf     []byte
}

// loop sends on schedule and reads answers in between, on the socket fd.
func (w *watcher) loop(fd int) error {
	to := &unix.SockaddrInet4{Port: int(w.spec.To.Port()), Addr: w.spec.To.Addr().As4()}
	start := Monotonic()
	w.res.start = start
	end, next, last := start+w.spec.For, start, time.Duration(0)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		now := Monotonic()
		if now >= next && now < end {
			if last != 0 && now-last > stallAfter {
				w.res.pauses = append(w.res.pauses, pause{from: last, to: now})
			}
			last = now
			w.send(fd, to, now)
			next = max(next+w.spec.Every, now)
		}
		wake := next
		if now >= end {
			wake = end + w.spec.Grace
		}
		if now >= end+w.spec.Grace {
			return nil
		}
		ts := unix.NsecToTimespec(int64(max(wake-Monotonic(), 0)))
		if _, err := unix.Ppoll(fds, &ts, nil); err != nil && err != unix.EINTR {
			return err
		}
		w.drain(fd)
	}
}

// send sends one probe with a fresh transaction and session at now.
func (w *watcher) send(fd int, to unix.Sockaddr, now time.Duration) {
	p := wire.Probe{PadTo: wire.ProbeSize}
	rand.Read(p.TxID[:])
	rand.Read(p.Session[:])
	w.pkt, _ = w.enc.AppendProbe(w.pkt[:0], &p)
	w.pending[p.TxID] = now
	w.res.sent++
	// A send error (no route, link down) is a lost probe.
	_ = unix.Sendto(fd, w.pkt, unix.MSG_DONTWAIT, to)
}

// drain reads every answer the socket holds.
func (w *watcher) drain(fd int) {
	for {
		n, _, err := unix.Recvfrom(fd, w.buf, unix.MSG_DONTWAIT)
		if err != nil && !recvAgain(err) {
			return // drained (EAGAIN), or failing: poll again
		}
		if err != nil || w.dec.DecodeResponse(w.buf[:n], &w.resp) != nil {
			continue // an ICMP error surfaced on the socket, or junk
		}
		sent, ok := w.pending[w.resp.TxID]
		if !ok {
			continue
		}
		delete(w.pending, w.resp.TxID)
		w.res.answer = append(w.res.answer, answer{sent: sent, recv: Monotonic(), term: w.resp.Term, server: w.resp.Server, vip: true,
			redirect: !w.resp.Success && w.resp.Code == stun.CodeTryAlternate})
	}
}

// printWatch writes r as lines: "start NS SENT", then "a SENT_NS
// RECV_NS TERM SERVER" per answer and "p FROM_NS TO_NS" per pause.
func printWatch(f *os.File, r *watchResult) {
	b := bufio.NewWriter(f)
	fmt.Fprintf(b, "start %d %d\n", r.start, r.sent)
	for _, a := range r.answer {
		fmt.Fprintf(b, "a %d %d %d %s\n", a.sent, a.recv, a.term, a.server)
	}
	for _, p := range r.pauses {
		fmt.Fprintf(b, "p %d %d\n", p.from, p.to)
	}
	b.Flush()
}

// parseWatch reads printWatch's lines back.
func parseWatch(out string) (*watchResult, error) {
	r := &watchResult{}
	seen := false
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		n := make([]int64, 0, 3)
		for _, s := range f[1:min(len(f), 4)] {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				break
			}
			n = append(n, v)
		}
		switch {
		case f[0] == "start" && len(n) == 2:
			r.start, r.sent, seen = time.Duration(n[0]), int(n[1]), true
		case f[0] == "a" && len(f) == 5 && len(n) == 3:
			server, err := netip.ParseAddrPort(f[4])
			if err != nil {
				return nil, fmt.Errorf("watch line %q: %w", line, err)
			}
			r.answer = append(r.answer, answer{sent: time.Duration(n[0]), recv: time.Duration(n[1]), term: uint64(n[2]), server: server, vip: true})
		case f[0] == "p" && len(n) == 2:
			r.pauses = append(r.pauses, pause{from: time.Duration(n[0]), to: time.Duration(n[1])})
		}
	}
	if !seen {
		return nil, fmt.Errorf("watch process printed no start line: %s", tail(out, 3))
	}
	return r, nil
}

// watchProc is a watch process running.
type watchProc struct {
	p    *Proc
	spec watchSpec
}

// startWatch starts a watch of vip from host h for d, probing every
// probeEvery from a thread at proberNice.
func startWatch(t *testing.T, h *Host, vip netip.AddrPort, d time.Duration) *watchProc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := watchSpec{To: vip, Every: probeEvery, For: d, Grace: busyAnswerGrace, Nice: proberNice}
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return &watchProc{h.Start(t, self, "-test.run=^TestHelperWatch$", "-test.count=1", "-test.timeout=0", watchHelperArg, string(raw)), s}
}

// wait waits for the watch to end and returns what it saw.
func (w *watchProc) wait(t *testing.T) *watchResult {
	t.Helper()
	select {
	case <-w.p.Done():
	case <-time.After(w.spec.For + w.spec.Grace + 30*time.Second):
		_ = w.p.Kill()
		t.Fatalf("watch process still running long after its end: %s", tail(w.p.Log(), 3))
	}
	r, err := parseWatch(w.p.Log())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// longestPause returns the watch's longest pause between two sends.
func (r *watchResult) longestPause() time.Duration {
	var longest time.Duration
	for _, p := range r.pauses {
		longest = max(longest, p.to-p.from)
	}
	return longest
}

// TestWatch runs a watch against a responder on loopback: every probe is
// answered with the responder's term and server, and what the watch saw
// survives printWatch and parseWatch.
func TestWatch(t *testing.T) {
	h := &Host{Name: "lo", Addr: netip.MustParseAddr("127.0.0.1")}
	to := netip.AddrPortFrom(h.Addr, testutil.FreeUDPPort(t))
	startResponder(t, h, to, 7)
	r, err := watch(watchSpec{To: to, Every: 5 * time.Millisecond, For: 300 * time.Millisecond, Grace: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.sent < 30 || len(r.answer) != r.sent {
		t.Fatalf("%d probes sent, %d answered; want 30 or more, all answered", r.sent, len(r.answer))
	}
	for _, a := range r.answer {
		if a.term != 7 || a.server != netip.AddrPortFrom(h.Addr, vipPort) || a.recv < a.sent || a.sent < r.start {
			t.Fatalf("answer %+v, watch started at %v", a, r.start)
		}
	}
	f, err := os.CreateTemp(t.TempDir(), "watch")
	if err != nil {
		t.Fatal(err)
	}
	r.pauses = append(r.pauses, pause{from: 5, to: 90})
	printWatch(f, r)
	f.Close()
	out, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	back, err := parseWatch("PASS\n" + string(out) + "ok\n")
	if err != nil {
		t.Fatal(err)
	}
	if back.start != r.start || back.sent != r.sent || len(back.answer) != len(r.answer) || back.answer[0].recv != r.answer[0].recv ||
		back.answer[0].server != r.answer[0].server || back.longestPause() != 85 {
		t.Errorf("parsed back %+v, want %+v", back, r)
	}
}
