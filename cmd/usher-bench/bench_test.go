//go:build linux

package main

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/usherlb/usher/wire"
)

// startInProcess runs a benchmark server in this process, as `usher-bench
// -serve` would in a child.
func startInProcess(t *testing.T, name string) *benchServer {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer outW.Close()
		if err := runBenchServer(name, nil, inR, outW); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}()
	br := bufio.NewReader(outR)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go io.Copy(io.Discard, br)
	addr := netip.MustParseAddrPort(strings.TrimSpace(line))
	return &benchServer{name: name, addr: addr, pid: os.Getpid(), stdin: inW, done: done}
}

// TestBenchServers checks that every probe-path server answers a probe:
// the echoes with the probe itself, Usher's with a redirect to a fake
// server.
func TestBenchServers(t *testing.T) {
	var enc wire.Encoder
	pkt, err := enc.AppendProbe(nil, &wire.Probe{Session: wire.SessionID{1}, PadTo: wire.ProbeSize})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range benchServerNames {
		t.Run(name, func(t *testing.T) {
			s := startInProcess(t, name)
			defer s.stop()
			c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(s.addr))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			c.Write(pkt)
			buf := make([]byte, 2048)
			n, err := c.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(name, "echo") {
				if string(buf[:n]) != string(pkt) {
					t.Error("echo changed the probe")
				}
				return
			}
			var d wire.Decoder
			var r wire.Response
			if err := d.DecodeResponse(buf[:n], &r); err != nil || !r.Server.IsValid() {
				t.Errorf("redirect %+v: %v", r, err)
			}
		})
	}
}

// TestLoadGenerator runs both load shapes briefly against the plain echo.
func TestLoadGenerator(t *testing.T) {
	s := startInProcess(t, srvEcho)
	defer s.stop()
	sat, err := saturate(s, 100*time.Millisecond)
	if err != nil || sat.rate <= 0 {
		t.Fatalf("saturate: %+v, %v", sat, err)
	}
	lat, err := paced([]*benchServer{s}, 2000, 200*time.Millisecond)
	if err != nil || lat[0].p50 <= 0 || lat[0].p99 < lat[0].p50 {
		t.Fatalf("paced: %+v, %v", lat, err)
	}
}

// TestPacedTurns runs a paced load against two servers at once: each must
// get its share of the probes, in turns, and answer them.
func TestPacedTurns(t *testing.T) {
	a, b := startInProcess(t, srvEcho), startInProcess(t, srvEchoBatch)
	defer a.stop()
	defer b.stop()
	lat, err := paced([]*benchServer{a, b}, 4000, 4*pacedSlice)
	if err != nil {
		t.Fatal(err)
	}
	// 4000/s for 8 slices after the warm-up: 3200 probes, half each.
	for i, l := range lat {
		if l.p50 <= 0 || l.p99 < l.p50 || l.answered < 1200 || l.answered > 2000 {
			t.Errorf("server %d: %+v", i, l)
		}
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, tt := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:1", true},
		{"127.18.3.4:3478", true},
		{"[::ffff:127.0.0.1]:1", true},
		{"10.0.0.1:1", false},
		{"[::1]:1", false},
		{"198.18.0.100:3478", false},
	} {
		if err := checkLoopback(netip.MustParseAddrPort(tt.addr)); (err == nil) != tt.ok {
			t.Errorf("%s: %v", tt.addr, err)
		}
	}
}

// TestBenchReport writes a report and its plots from made-up figures.
func TestBenchReport(t *testing.T) {
	probe := map[string]*probeFigures{}
	for i, n := range benchServerNames {
		f := float64(i + 1)
		probe[n] = &probeFigures{
			Rate: spread{100 * f, 110 * f, 90 * f}, CPU: spread{1000, 1100, 900},
			P50: map[int]spread{50: {10, 11}, 90: {20, 21}}, P99: map[int]spread{50: {30, 31}, 90: {40, 41}},
			Lost: map[int]spread{50: {0, 0}, 90: {0.01, 0}}, Offered: map[int]float64{50: 50, 90: 90},
		}
	}
	proxy := &proxyFigures{Sessions: 10, Nginx: "nginx/test", Install: "already installed",
		SetupRate: map[string]spread{balNginx: {1, 2}, balUsher: {2, 3}},
		CPUPerM:   map[string]spread{balNginx: {20, 21}, balUsher: {0.5, 0.6}},
		Survived:  map[string]spread{balNginx: {0, 0}, balUsher: {1, 1}},
		SetupP50:  map[string]spread{balNginx: {1, 1}, balUsher: {2, 2}},
	}
	r := &benchReport{
		Started: time.Now(), Finished: time.Now(), Probe: probe, Proxy: proxy, Repeats: 2, Duration: time.Second,
		Allocs: allocFigures{Command: "go test", Lines: []string{"BenchmarkX-2 10 100 ns/op 0 B/op 0 allocs/op"}},
	}
	dir := t.TempDir()
	files, err := r.plot(dir)
	if err != nil || len(files) != 6 {
		t.Fatalf("plots %v: %v", files, err)
	}
	for _, f := range files {
		if st, err := os.Stat(dir + "/" + f); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	var b strings.Builder
	r.write(&b)
	out := b.String()
	reportHas(t, out, "report",
		"| usher batched ÷ batched echo, probes/s at saturation | ≥ 0.90x | 1.33x (1.33x–1.33x) | met |",
		"| allocations per probe (`go test -bench`, every serving mode) | 0 | 0 | met |",
		"| sessions answered after the balancer's SIGKILL (%) | 0.0 (0.0–0.0) | 100.0 (100.0–100.0) |",
		"## 3. Failover against keepalived",
	)
	if strings.Contains(out, "Why the missed goals miss") {
		t.Error("a report whose goals are all met explains misses")
	}

	// A missed goal is explained under the goals.
	probe[srvUsher].P99[50] = spread{60, 62}
	probe[srvUsherBatch].CPU = spread{1300, 1430}
	probe[srvUsherBatch].P99[50] = spread{15, 93} // 0.5x and 3x the batched echo's
	b.Reset()
	r.write(&b)
	out = b.String()
	reportHas(t, out, "report with misses",
		"| usher ÷ plain echo, p99 at 50% load | ≤ 1.10x | 2.00x (2.00x–2.00x) | **not met** |",
		"Why the missed goals miss:",
		"- *usher ÷ plain echo, p99 at 50% load*: the per-repeat ratios run from 2.00x to 2.00x, every repeat misses it.",
		"- *usher batched ÷ batched echo, CPU per answer*: the median misses the bound by 18% of it; the per-repeat ratios run from 1.30x to 1.30x, every repeat misses it.",
		"- *usher batched ÷ batched echo, p99 at 50% load*: the per-repeat ratios run from 0.50x to 3.00x, on both sides of the bound.",
		// The unbatched pair's CPU is level, the batched responder's above.
		"The responder's CPU per answer was 1.00x (1.00x–1.00x) of the echo's at saturation in the same run, so its own work does not lengthen the tail",
		"What is ours in it is the responder's CPU per answer, 1.30x (1.30x–1.30x) of the echo's",
		// At 50% load a CPU ratio c predicts a tail ratio of 2c−1, and
		// the 1.10x bound asks for c at most 1.05.
		"drains the same backlog (c−0.50)/0.50 times as long, 1.60x at this run's median, and the bound asks for c at most 1.050x.",
	)
}

// reportHas fails the test for every one of wants that out lacks.
func reportHas(t *testing.T, out, what string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("%s lacks %q", what, want)
		}
	}
}
