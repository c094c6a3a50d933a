package loadsrc

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Source is a service's load source as the agent sees it: a Tracker for
// polled kinds, a *Push for push.
type Source interface {
	// Status says what the figure is worth at now.
	Status(now time.Time) Status
	// Close stops the source; it is idempotent.
	Close() error
}

// Poller reads one figure; the Tracker calls it with a context bounded by
// the spec's timeout. It must honour the context's cancellation.
type Poller interface {
	Poll(ctx context.Context) (Reading, error)
}

// PollerFunc adapts a function to a Poller.
type PollerFunc func(ctx context.Context) (Reading, error)

// Poll calls f.
func (f PollerFunc) Poll(ctx context.Context) (Reading, error) { return f(ctx) }

// Options are a Tracker's collaborators, all optional.
type Options struct {
	// OnChange is called, on the Tracker's goroutine, when Status's OK
	// flips, so the agent can republish its load at once. It must not
	// block for long nor call Close.
	OnChange func()
	// Logger receives a line when OK flips (default: none).
	Logger hclog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time

	// tick makes the ticker; export_test.go sets it to a fake.
	tick func(time.Duration) (<-chan time.Time, func())
}

// Tracker runs one polled source on its own goroutine: a reading at once,
// then one per interval, each bounded by the timeout. It keeps the last
// figure and answers Status from it.
type Tracker struct {
	name   string
	poller Poller
	set    Settings
	opts   Options

	mu    sync.Mutex
	state state

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// NewTracker starts polling p for the service name with the validated
// settings set; Close stops it.
func NewTracker(name string, p Poller, set Settings, opts Options) *Tracker {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.tick == nil {
		opts.tick = realTicker
	}
	ctx, cancel := context.WithCancel(context.Background()) //nolint:gosec // G118: Close calls cancel
	t := &Tracker{
		name: name, poller: p, set: set, opts: opts,
		state:  newState(set),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go t.run(ctx)
	return t
}

func realTicker(d time.Duration) (<-chan time.Time, func()) {
	tk := time.NewTicker(d)
	return tk.C, tk.Stop
}

// Status says what the last figure is worth at now.
func (t *Tracker) Status(now time.Time) Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state.status(now)
}

// Close stops the polling goroutine and waits for it; it is idempotent.
func (t *Tracker) Close() error {
	t.closeOnce.Do(t.cancel)
	<-t.done
	return nil
}

func (t *Tracker) run(ctx context.Context) {
	defer close(t.done)
	ticks, stop := t.opts.tick(t.set.Interval)
	defer stop()
	wasOK := false
	for {
		wasOK = t.pollOnce(ctx, wasOK)
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
	}
}

// pollOnce takes one reading, records it and reports a flip of OK.
func (t *Tracker) pollOnce(ctx context.Context, wasOK bool) bool {
	pctx, cancel := context.WithTimeout(ctx, t.set.Timeout)
	r, err := t.poller.Poll(pctx)
	cancel()
	if ctx.Err() != nil {
		return wasOK // closing: the reading was cut short, not failed
	}
	now := t.opts.Now()
	t.mu.Lock()
	t.state.record(r, err, now)
	st := t.state.status(now)
	t.mu.Unlock()
	if st.OK == wasOK {
		return wasOK
	}
	if st.OK {
		t.opts.Logger.Info("load source ok", "service", t.name, "source", t.set.Kind, "load", st.Load)
	} else {
		t.opts.Logger.Warn("load source not ok", "service", t.name, "reason", st.Reason)
	}
	if t.opts.OnChange != nil {
		t.opts.OnChange()
	}
	return st.OK
}
