package loadsrc

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// scripted answers each Poll with the next result and signals it on polled.
type scripted struct {
	results chan error
	polled  chan struct{}
}

func (s *scripted) Poll(ctx context.Context) (Reading, error) {
	defer func() { s.polled <- struct{}{} }()
	select {
	case err := <-s.results:
		return Reading{Load: 5}, err
	case <-ctx.Done():
		return Reading{}, ctx.Err()
	}
}

// TestTrackerFlips drives a Tracker with a fake ticker and clock: OnChange
// fires once when the first figure comes, once when the failures reach the
// threshold, and once when a reading succeeds again.
func TestTrackerFlips(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: t0}
	ticks := make(chan time.Time)
	src := &scripted{results: make(chan error, 1), polled: make(chan struct{})}
	changes := make(chan bool, 10)
	var tr *Tracker
	opts := withTicks(Options{Now: clock.Now, OnChange: func() { changes <- tr.Status(clock.Now()).OK }}, ticks)
	set := Settings{Kind: "command", Interval: time.Second, Timeout: time.Minute, Failures: 2}
	refused := errors.New("refused")
	steps := []struct {
		err    error
		change []bool // OnChange calls expected after this reading
	}{
		{nil, []bool{true}},
		{refused, nil},
		{refused, []bool{false}},
		{refused, nil},
		{nil, []bool{true}},
	}
	tr = NewTracker("game", src, set, opts)
	defer tr.Close()
	for i, st := range steps {
		if i > 0 {
			clock.Set(t0.Add(time.Duration(i) * time.Second))
			ticks <- clock.Now()
		}
		src.results <- st.err
		<-src.polled
		for _, want := range st.change {
			select {
			case got := <-changes:
				if got != want {
					t.Fatalf("step %d: OnChange saw OK %v, want %v", i, got, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("step %d: no OnChange (want OK %v)", i, want)
			}
		}
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case ok := <-changes:
		t.Fatalf("unexpected OnChange (OK %v)", ok)
	default:
	}
	if st := tr.Status(clock.Now()); !st.OK || st.Load != 5 {
		t.Fatalf("final status %+v", st)
	}
}

// TestTrackerTimeout: a reading that hangs is cut by the timeout and counts
// as a failure; Close is idempotent and leaves no goroutine (TestMain).
func TestTrackerTimeout(t *testing.T) {
	hang := PollerFunc(func(ctx context.Context) (Reading, error) {
		<-ctx.Done()
		return Reading{}, ctx.Err()
	})
	ticks := make(chan time.Time)
	set := Settings{Kind: "command", Interval: time.Second, Timeout: 10 * time.Millisecond, Failures: 1}
	changed := make(chan struct{}, 1)
	tr := NewTracker("game", hang, set, withTicks(Options{OnChange: func() { changed <- struct{}{} }}, ticks))
	ticks <- time.Now() // the first reading has ended once the tick is taken
	st := tr.Status(time.Now())
	if st.OK || st.Reason != "command: 1 failures in a row: context deadline exceeded" {
		t.Fatalf("status %+v", st)
	}
	select {
	case <-changed:
		t.Fatal("OnChange fired, but OK never flipped (it starts false)")
	default:
	}
	tr.Close()
	tr.Close()
}

// TestTrackerRealTicker runs a sessions source on the real ticker.
func TestTrackerRealTicker(t *testing.T) {
	n := 0
	var mu sync.Mutex
	spec := Spec{Source: "sessions", Interval: "10ms", Timeout: "5ms"}
	polled := make(chan struct{}, 100)
	src, err := spec.Build("game", Env{Sessions: func() int {
		mu.Lock()
		defer mu.Unlock()
		n++
		polled <- struct{}{}
		return n
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for range 3 {
		<-polled
	}
	if st := src.Status(time.Now()); !st.OK || st.Load < 2 {
		t.Fatalf("status %+v", st)
	}
}
