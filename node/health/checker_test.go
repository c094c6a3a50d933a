package health

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// flips records a Checker's OnChange calls.
type flips struct {
	mu  sync.Mutex
	got []bool
	ch  chan flip
}

type flip struct {
	passing bool
	reason  string
	at      time.Time
}

func newFlips() *flips { return &flips{ch: make(chan flip, 100)} }

func (f *flips) onChange(passing bool, reason string) {
	f.mu.Lock()
	f.got = append(f.got, passing)
	f.mu.Unlock()
	f.ch <- flip{passing, reason, time.Now()}
}

func (f *flips) all() []bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]bool(nil), f.got...)
}

// wait returns the next flip, failing the test if none comes within d.
func (f *flips) wait(t *testing.T, d time.Duration) flip {
	t.Helper()
	select {
	case fl := <-f.ch:
		return fl
	case <-time.After(d):
		t.Fatalf("no flip within %v (flips so far %v)", d, f.all())
		return flip{}
	}
}

func stunSpec(name, addr string) Spec {
	return Spec{Name: name, Type: "stun", Address: addr, Interval: "50ms", Timeout: "40ms"}
}

func newChecker(t *testing.T, specs []Spec, f *flips) *Checker {
	t.Helper()
	c, err := New(specs, Options{OnChange: f.onChange})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestCheckerStartsCritical: a service is critical until its checks have
// passed, then OnChange reports it passing once.
func TestCheckerStartsCritical(t *testing.T) {
	srv := newFakeSTUN(t, answerNothing)
	f := newFlips()
	c := newChecker(t, []Spec{stunSpec("coturn", srv.Addr())}, f)
	if passing, reason := c.Status(); passing || !strings.Contains(reason, `check "coturn"`) {
		t.Fatalf("fresh Status() = %v, %q; want critical naming the check", passing, reason)
	}
	srv.SetMode(answer401)
	if fl := f.wait(t, 2*time.Second); !fl.passing || fl.reason != "" {
		t.Fatalf("flip %+v, want passing with no reason", fl)
	}
	if passing, reason := c.Status(); !passing || reason != "" {
		t.Fatalf("Status() = %v, %q after the flip", passing, reason)
	}
}

// TestCheckerNoChecksPasses: a service without checks passes at once and
// never flips.
func TestCheckerNoChecksPasses(t *testing.T) {
	f := newFlips()
	c := newChecker(t, nil, f)
	if passing, reason := c.Status(); !passing || reason != "" {
		t.Fatalf("Status() = %v, %q; want passing", passing, reason)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := f.all(); len(got) != 0 {
		t.Fatalf("flips %v, want none", got)
	}
}

// TestCheckerAllMustPass: with one of two checks failing the service is
// critical and the reason names the failing check and its error; it passes
// once both do, and each flip is reported exactly once.
func TestCheckerAllMustPass(t *testing.T) {
	good := newFakeSTUN(t, answerSuccess)
	bad := newFakeSTUN(t, answer400)
	f := newFlips()
	c := newChecker(t, []Spec{stunSpec("good", good.Addr()), stunSpec("bad", bad.Addr())}, f)

	// Several runs of both checks: the service must stay critical.
	time.Sleep(300 * time.Millisecond)
	passing, reason := c.Status()
	if passing {
		t.Fatal("passing with one check failing")
	}
	wantReason := `check "bad" (stun ` + bad.Addr() + `): `
	if !strings.HasPrefix(reason, wantReason) || !strings.Contains(reason, "failure") ||
		!strings.Contains(reason, "error response 400") || strings.Contains(reason, `"good"`) {
		t.Fatalf("reason %q, want it to name only check \"bad\" and its error", reason)
	}
	if got := f.all(); len(got) != 0 {
		t.Fatalf("flips %v while critical from the start, want none", got)
	}

	bad.SetMode(answerSuccess)
	if fl := f.wait(t, 2*time.Second); !fl.passing {
		t.Fatalf("flip %+v, want passing", fl)
	}
	bad.SetMode(answerGarbage)
	fl := f.wait(t, 2*time.Second)
	if fl.passing || !strings.Contains(fl.reason, `check "bad"`) || !strings.Contains(fl.reason, "2 failures in a row: not a stun message") {
		t.Fatalf("flip %+v, want critical naming check \"bad\"", fl)
	}
	bad.SetMode(answerSuccess)
	f.wait(t, 2*time.Second)
	c.Close()
	if got, want := f.all(), []bool{true, false, true}; !slices.Equal(got, want) {
		t.Fatalf("flips %v, want %v: one per change", got, want)
	}
}

// TestCheckerClose: Close cancels a run in flight at once (a command that
// would sleep for seconds), is idempotent, and leaves no goroutine behind
// (TestMain's goleak) and no flip after it returns.
func TestCheckerClose(t *testing.T) {
	f := newFlips()
	c, err := New([]Spec{
		{Name: "slow", Type: "command", Command: []string{"sleep", "5"}, Interval: "10s", Timeout: "9s"},
		stunSpec("refused", closedUDPPort(t)),
	}, Options{OnChange: f.onChange})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the runs start
	start := time.Now()
	c.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v, want the run in flight cancelled", d)
	}
	c.Close()
	if passing, _ := c.Status(); passing {
		t.Error("passing after a cancelled run")
	}
	if got := f.all(); len(got) != 0 {
		t.Fatalf("flips %v, want none", got)
	}
}

// TestCheckerDetectsDeathInTime: with interval 250ms, timeout 200ms and
// failures_before_critical 2, a server that goes silent is reported
// critical within 2 intervals plus the timeout (700ms) plus slack. The clock
// is read before the server dies, so the bound holds however slow the host.
func TestCheckerDetectsDeathInTime(t *testing.T) {
	for _, death := range []struct {
		name string
		kill func(*fakeServer)
	}{
		{"silent", func(s *fakeServer) { s.SetMode(answerNothing) }},
		{"closed", func(s *fakeServer) { s.Close() }},
	} {
		t.Run(death.name, func(t *testing.T) {
			srv := newFakeSTUN(t, answerSuccess)
			f := newFlips()
			spec := Spec{Name: "coturn", Type: "stun", Address: srv.Addr(),
				Interval: "250ms", Timeout: "200ms", FailuresBeforeCritical: 2}
			newChecker(t, []Spec{spec}, f)
			if fl := f.wait(t, 2*time.Second); !fl.passing {
				t.Fatalf("flip %+v, want passing", fl)
			}
			// Die at a random point of the interval.
			time.Sleep(time.Duration(time.Now().UnixNano() % int64(250*time.Millisecond)))
			died := time.Now()
			death.kill(srv)
			fl := f.wait(t, 3*time.Second)
			if fl.passing {
				t.Fatalf("flip %+v, want critical", fl)
			}
			if d := fl.at.Sub(died); d > 1500*time.Millisecond {
				t.Fatalf("critical %v after the server died, want at most 1.5s (2*250ms+200ms+slack)", d)
			}
			t.Logf("critical %v after the server died: %s", fl.at.Sub(died), fl.reason)
		})
	}
}

// TestCheckerFirstRunAtOnceThenJitter: the first run starts at once, not an
// interval later (a restarted node passes as soon as its server answers),
// and the injected Rand draws the jitter, at most a tenth of the interval.
func TestCheckerFirstRunAtOnceThenJitter(t *testing.T) {
	srv := newFakeSTUN(t, answerSuccess)
	f := newFlips()
	var (
		mu    sync.Mutex
		drawn []int64
	)
	start := time.Now()
	c, err := New([]Spec{{Name: "coturn", Type: "stun", Address: srv.Addr(), Interval: "4s", Timeout: "1s"}}, Options{
		OnChange: f.onChange,
		Rand: func(n int64) int64 {
			mu.Lock()
			defer mu.Unlock()
			drawn = append(drawn, n)
			return n - 1
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fl := f.wait(t, 3*time.Second)
	if d := fl.at.Sub(start); !fl.passing || d > 3*time.Second {
		t.Fatalf("flip %+v after %v, want passing well before the 4s interval", fl, d)
	}
	c.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(drawn) != 1 || drawn[0] != int64(400*time.Millisecond) {
		t.Fatalf("Rand drawn with %v, want once with n = interval/10 = 400ms", drawn)
	}
}

// TestCheckerCloseDiscardsCancelledRun: a run that Close cancels says
// nothing about the target, so a passing check with
// failures_before_critical 1 stays passing and no flip is reported.
func TestCheckerCloseDiscardsCancelledRun(t *testing.T) {
	dir := t.TempDir()
	second := filepath.Join(dir, "second")
	// The first run passes; the second one hangs until it is killed.
	cmd := script(t, `if [ -e "$1/ran" ]; then touch "$1/second"; exec sleep 5; fi; touch "$1/ran"`)
	f := newFlips()
	c, err := New([]Spec{{Name: "app", Type: "command", Command: []string{cmd, dir},
		Interval: "1s", Timeout: "900ms", FailuresBeforeCritical: 1}}, Options{OnChange: f.onChange})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if fl := f.wait(t, 3*time.Second); !fl.passing {
		t.Fatalf("flip %+v, want passing", fl)
	}
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(second); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second run did not start")
		}
	}
	c.Close()
	if passing, reason := c.Status(); !passing {
		t.Fatalf("Status() = critical (%s) after Close cancelled a run", reason)
	}
	if got := f.all(); !slices.Equal(got, []bool{true}) {
		t.Fatalf("flips %v, want [true]", got)
	}
}
