//go:build linux

package e2e

import (
	"bufio"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usherlb/usher/internal/stats"
)

// Neighbours are the other programs of a busy server: CPU hogs and
// fsync-heavy writers that share the machine's cores and the disk of the
// agents' data directories. Each is this test binary run again as
// TestHelperNeighbour on a farm host (Host.Start), so it is an ordinary
// Proc: its own process group, SIGKILLed by PID on stop, on the test's
// cleanup and with the test process (parent-death signal).

// Neighbour kinds, the helper's first argument after the test flags.
const (
	neighbourHog    = "usher-e2e-hog"
	neighbourWriter = "usher-e2e-writer"
)

// writerBytes is what a writer writes before each fsync.
const writerBytes = 16 << 20

// TestHelperNeighbour is the body of a neighbour process: started with the
// argument neighbourHog it spins on one core, with neighbourWriter DIR it
// writes writerBytes to a file in DIR, fsyncs it, truncates it and starts
// again, printing each cycle's times. Either runs until killed. In a
// normal run (no such argument) it skips.
func TestHelperNeighbour(t *testing.T) {
	args := flag.Args()
	switch {
	case len(args) == 1 && args[0] == neighbourHog:
		runtime.GOMAXPROCS(1)
		fmt.Println("hog spinning")
		spin()
	case len(args) == 2 && args[0] == neighbourWriter:
		runtime.GOMAXPROCS(1)
		if err := writeLoop(args[1]); err != nil {
			fmt.Println("writer:", err)
			os.Exit(1)
		}
	default:
		t.Skip("neighbour process for the busy-host scenarios")
	}
}

// spinCount is what spin increments, so the loop has an effect.
var spinCount uint64

// spin burns one core until the process is killed.
func spin() {
	for {
		spinCount++
	}
}

// writeLoop rewrites a writerBytes file in dir and fsyncs it, forever,
// printing "cycle N write_ms W fsync_ms F" after each cycle.
func writeLoop(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, "neighbour.dat"), os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	rand.Read(chunk)
	for cycle := 1; ; cycle++ {
		if err := f.Truncate(0); err != nil {
			return fmt.Errorf("truncate: %w", err)
		}
		if _, err := f.Seek(0, 0); err != nil {
			return fmt.Errorf("seek: %w", err)
		}
		t0 := time.Now()
		for range writerBytes / len(chunk) {
			chunk[0]++ // no two chunks alike
			if _, err := f.Write(chunk); err != nil {
				return fmt.Errorf("write: %w", err)
			}
		}
		t1 := time.Now()
		if err := f.Sync(); err != nil {
			return fmt.Errorf("fsync: %w", err)
		}
		t2 := time.Now()
		fmt.Printf("cycle %d write_ms %.1f fsync_ms %.1f\n", cycle, ms(t1.Sub(t0)), ms(t2.Sub(t1)))
	}
}

// neighbours is a set of running neighbour processes.
type neighbours struct {
	hogs, writers []*Proc
	stopped       bool
}

// startNeighbours starts hogs CPU hogs and writers writers, spread round
// robin over hosts (counts are for the whole machine, which every farm
// host shares). Writer i writes into dirFor(host, i), which should be on
// the filesystem of that host's data directory. They are stopped on the
// test's cleanup, or earlier by stop.
func startNeighbours(t *testing.T, hosts []*Host, hogs, writers int, dirFor func(h *Host, i int) string) *neighbours {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatalf("neighbours: %v", err)
	}
	helper := []string{"-test.run=^TestHelperNeighbour$", "-test.count=1", "-test.timeout=0"}
	n := &neighbours{}
	t.Cleanup(n.stop)
	for i := range hogs {
		h := hosts[i%len(hosts)]
		n.hogs = append(n.hogs, h.Start(t, self, append(helper, neighbourHog)...))
	}
	for i := range writers {
		h := hosts[i%len(hosts)]
		n.writers = append(n.writers, h.Start(t, self, append(helper, neighbourWriter, dirFor(h, i))...))
	}
	return n
}

// stop kills every neighbour and waits for each; it is idempotent.
func (n *neighbours) stop() {
	if n.stopped {
		return
	}
	n.stopped = true
	for _, p := range append(append([]*Proc(nil), n.hogs...), n.writers...) {
		_ = p.Kill()
	}
}

// check fails the test if a neighbour exited by itself: the load it was
// to make stopped.
func (n *neighbours) check(t *testing.T) {
	t.Helper()
	for _, p := range append(append([]*Proc(nil), n.hogs...), n.writers...) {
		if done, err := p.Exited(); done {
			t.Errorf("neighbour %s on %s exited by itself (%v): %s", p.Name, p.Host.Name, err, tail(p.Log(), 3))
		}
	}
}

// writerStats reads the writers' logs: the cycles they completed and the
// median and longest fsync.
func (n *neighbours) writerStats() (cycles int, p50, longest time.Duration) {
	var fsyncs []time.Duration
	for _, p := range n.writers {
		sc := bufio.NewScanner(strings.NewReader(p.Log()))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 6 || f[0] != "cycle" || f[4] != "fsync_ms" {
				continue
			}
			v, err := strconv.ParseFloat(f[5], 64)
			if err != nil {
				continue
			}
			fsyncs = append(fsyncs, time.Duration(v*float64(time.Millisecond)))
		}
	}
	return len(fsyncs), stats.Percentile(fsyncs, 50), stats.Percentile(fsyncs, 100)
}
