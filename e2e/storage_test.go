//go:build linux

package e2e

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usherlb/usher/cluster"
	"github.com/usherlb/usher/internal/testutil"
)

// Bounds of TestDamagedStorage, generous enough for two busy cores.
const (
	// damagedExitBound is how long an agent started on damaged storage
	// may run before it exits: at once for a damaged log, after the
	// leader's next state message for a wiped voter.
	damagedExitBound = 60 * time.Second
	// damagedHold is how long after that exit the farm is watched
	// still answering.
	damagedHold = 5 * time.Second
	// stateSeen is how long the farm is given to record that a voter has
	// raft state once the voter vouches for it: its report is republished
	// every 250 ms and the voters' maintenance runs every second.
	stateSeen = 5 * time.Second
	// drainRounds is how many drain and undrain pairs the farm commits
	// before the damage: entries beyond the bootstrap in every log.
	drainRounds = 8
)

// damageCase is one way a voter's storage is damaged while the voter is
// stopped, and the error the agent must exit with when it starts on it.
type damageCase struct {
	name string
	// crash stops the voter with SIGKILL: SIGTERM makes it leave the farm,
	// and the leader then drops it from the raft configuration.
	crash  bool
	damage func(t *testing.T, dataDir string)
	want   error
	// names is what else the agent's message must name.
	names []string
}

var damageCases = []damageCase{
	{
		name: "truncated-wal", damage: truncateNewestSegment, want: cluster.ErrStorageDamaged,
		names: []string{cluster.LogMarkFile, "entries are lost", "to recover"},
	},
	{
		name: "wiped-voter", crash: true, damage: wipeDataDir, want: cluster.ErrWipedVoter,
		names: []string{"lists it among the voters", "to recover"},
	},
}

// TestDamagedStorage runs a three-voter farm of real agents (Raft over
// mutual TLS, a gossip key) on loopback, commits entries beyond the
// bootstrap, stops a follower (with SIGTERM, or SIGKILL for a voter that
// must stay in the raft configuration), damages its data directory and
// starts it again on it. The agent must exit with status 1 within
// damagedExitBound, its output naming the damage and the recovery, while
// the other two keep a leader and answer at least 99% of the probes sent
// to the VIP from the follower's stop until damagedHold after its exit.
func TestDamagedStorage(t *testing.T) {
	if testing.Short() {
		t.Skip("damaged-storage farm skipped in -short mode")
	}
	for _, tc := range damageCases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			c := newChaosCluster(t, false, 3, "fast")
			pr := startProber(c, probeEvery)
			l := c.waitHealthy(30 * time.Second)
			f := c.agents[slices.IndexFunc(c.agents, func(a *agent) bool { return a != l })]
			commitDrains(t, l, f)
			awaitVouched(t, f)

			t0, sent0 := pr.mark()
			if tc.crash {
				f.kill()
			} else {
				f.term()
			}
			tc.damage(t, filepath.Join(c.dir, f.name))
			f.start()
			log, took := awaitFailure(t, f)
			time.Sleep(damagedHold)
			t1, sent1 := pr.mark()
			time.Sleep(answerGrace)

			checkMessage(t, log, tc)
			checkAnswered(t, pr, t0, t1, sent1-sent0)
			if c.waitLeader(10*time.Second) == f {
				t.Errorf("the damaged %s leads", f.name)
			}
			t.Logf("%s exited %v after its start on damaged storage; case took %v",
				f.name, took.Round(time.Millisecond), time.Since(start).Round(time.Second))
		})
	}
}

// commitDrains drains follower f through leader l and undrains it,
// drainRounds times, waiting each time until f has applied the change:
// f's log then holds every entry.
func commitDrains(t *testing.T, l, f *agent) {
	t.Helper()
	for i := range drainRounds {
		for _, on := range []bool{true, false} {
			method := http.MethodPut
			if !on {
				method = http.MethodDelete
			}
			if err := l.do(method, "/v1/drain?node="+f.name, nil); err != nil {
				t.Fatalf("round %d: drain %v: %v", i, on, err)
			}
			testutil.Eventually(t, 10*time.Second, f.name+" applying its drain", func() bool {
				st, err := f.status()
				return err == nil && st.Draining == on
			})
		}
	}
}

// vouchLines are what an agent logs when it vouches for its raft state:
// after its own bootstrap, or seatGrace after the leader gave it one.
var vouchLines = []string{"bootstrapped raft", "its state is its own"}

// awaitVouched waits until a vouches for its raft state, and then
// stateSeen for the farm to record it: only then is a voter that loses
// its data directory recognized as wiped (cluster/wiped.go).
func awaitVouched(t *testing.T, a *agent) {
	t.Helper()
	a.mu.Lock()
	p := a.proc
	a.mu.Unlock()
	testutil.Eventually(t, 30*time.Second, a.name+" vouching for its raft state", func() bool {
		log := p.Log()
		return slices.ContainsFunc(vouchLines, func(s string) bool { return strings.Contains(log, s) })
	})
	time.Sleep(stateSeen)
}

// awaitFailure waits for the agent's current process, started on damaged
// storage, to exit with status 1, and returns its output and how long it
// ran.
func awaitFailure(t *testing.T, a *agent) (string, time.Duration) {
	t.Helper()
	a.mu.Lock()
	p := a.proc
	a.expected = true // its exit is what the test waits for
	from := a.lives[len(a.lives)-1].from
	a.mu.Unlock()
	select {
	case <-p.Done():
	case <-time.After(damagedExitBound):
		t.Fatalf("%s still runs %v after its start on damaged storage; its log ends:\n%s",
			a.name, damagedExitBound, tail(p.Log(), 20))
	}
	took := Monotonic() - from
	a.ended(Monotonic())
	_, err := p.Exited()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("%s exited with %v, want exit status 1", a.name, err)
	}
	return p.Log(), took
}

// checkMessage checks that the agent's output names the error of tc and
// everything tc.names.
func checkMessage(t *testing.T, log string, tc damageCase) {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, tc.want.Error()) {
			t.Logf("the agent said: %s", line)
			break
		}
	}
	for _, s := range append([]string{tc.want.Error()}, tc.names...) {
		if !strings.Contains(log, s) {
			t.Errorf("the agent's output does not name %q; it ends:\n%s", s, tail(log, 10))
		}
	}
}

// checkAnswered checks that at least minAnswered of the sent probes sent
// in [t0, t1) were answered (less the stall allowance of short windows,
// lossAllowed), and logs the longest gap between answered probes.
func checkAnswered(t *testing.T, pr *prober, t0, t1 time.Duration, sent int) {
	t.Helper()
	answered := 0
	var sentAt []time.Duration
	for _, a := range pr.snapshot() {
		if a.sent >= t0 && a.sent < t1 {
			answered++
			sentAt = append(sentAt, a.sent)
		}
	}
	slices.Sort(sentAt)
	var gap, gapAt time.Duration
	for i := 1; i < len(sentAt); i++ {
		if d := sentAt[i] - sentAt[i-1]; d > gap {
			gap, gapAt = d, sentAt[i-1]-t0
		}
	}
	if lost, allowed := sent-answered, lossAllowed(sent); lost > allowed {
		t.Errorf("%d of %d probes answered over %v, want at least %.0f%% (at most %d lost)",
			answered, sent, t1-t0, 100*minAnswered, allowed)
	}
	t.Logf("%d of %d probes answered over %v; longest gap between answered probes %v, %v into the window",
		answered, sent, (t1 - t0).Round(time.Millisecond), gap, gapAt.Round(time.Millisecond))
}

// mark returns now and the requests sent so far, all of them before now.
func (p *prober) mark() (time.Duration, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Monotonic(), p.sent
}

// truncateNewestSegment cuts off the newer half of what the newest
// raft-wal segment under dataDir holds (segments are preallocated with
// zeros): the entries last committed are gone, and the log ends short of
// the log mark.
func truncateNewestSegment(t *testing.T, dataDir string) {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dataDir, "raft", "wal", "*.wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no raft-wal segment under %s: %v", dataDir, err)
	}
	slices.Sort(segs) // named by zero-padded base index
	newest := segs[len(segs)-1]
	b, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	end := len(bytes.TrimRight(b, "\x00"))
	if err := os.Truncate(newest, int64(end/2)); err != nil {
		t.Fatal(err)
	}
	t.Logf("cut %s from %d to %d bytes of data", filepath.Base(newest), end, end/2)
}

// wipeDataDir replaces dataDir by an empty directory. The farm's
// credentials live beside the data directories, not in them.
func wipeDataDir(t *testing.T, dataDir string) {
	t.Helper()
	if err := os.RemoveAll(dataDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
}
