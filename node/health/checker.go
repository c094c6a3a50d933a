package health

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// jitterFraction is the largest share of an interval by which a run comes
// early, so that checks started together drift apart. Runs only ever come
// early, never late: the detection bound holds by construction.
const jitterFraction = 10

// Options configures a Checker.
type Options struct {
	// OnChange, if set, is called on every flip of the service between
	// passing and critical, in the order the flips happen, with what Status
	// returns right after the flip. It is called from a check's goroutine
	// and must neither block for long nor call Close.
	OnChange func(passing bool, reason string)
	// Rand returns a uniform number in [0, n) for the jitter; it must be
	// safe for concurrent use. Nil means math/rand/v2's Int64N.
	Rand func(n int64) int64
	// Logger logs flips. Nil means no logging.
	Logger hclog.Logger
}

// Checker runs one service's checks, each in a goroutine of its own, and
// says whether the service passes them all.
type Checker struct {
	checks []Check
	opts   Options
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	// notify serializes a state change with its OnChange call, so flips
	// are reported in the order they happen.
	notify sync.Mutex
	mu     sync.Mutex // guards states and passing
	states []threshold
	// passing is the service's state as OnChange last reported it.
	passing bool
}

// New builds specs and starts running them: each check's first run starts
// at once, the next ones every interval. The service starts critical and
// passes once every check has passed. A service with no checks passes.
func New(specs []Spec, opts Options) (*Checker, error) {
	checks, err := BuildAll(specs)
	if err != nil {
		return nil, err
	}
	if opts.Rand == nil {
		opts.Rand = rand.Int64N
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Checker{
		checks:  checks,
		opts:    opts,
		cancel:  cancel,
		states:  make([]threshold, len(checks)),
		passing: len(checks) == 0,
	}
	for i, ch := range checks {
		c.states[i] = newThreshold(ch.FailuresBeforeCritical, ch.SuccessesBeforePassing)
	}
	c.wg.Add(len(checks))
	for i := range checks {
		go c.run(ctx, i)
	}
	return c, nil
}

// Close stops every check, cancelling the runs in flight, and waits for
// their goroutines. It may be called more than once; no OnChange call
// starts after it returns.
func (c *Checker) Close() error {
	c.once.Do(func() {
		c.cancel()
		c.wg.Wait()
	})
	return nil
}

// Status reports whether every check passes and, if not, why: each
// critical check and its last error, as in check "coturn" (stun
// 10.0.0.7:3478): 2 failures in a row: read: connection refused. The
// reason is empty while the service passes.
func (c *Checker) Status() (passing bool, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.statusLocked()
}

func (c *Checker) statusLocked() (bool, string) {
	var reasons []string
	for i := range c.states {
		if r := c.states[i].reason(); r != "" {
			reasons = append(reasons, c.checks[i].String()+": "+r)
		}
	}
	return len(reasons) == 0, strings.Join(reasons, "; ")
}

// run runs check i until ctx ends. The next run starts one interval, less
// the jitter, after the previous one started.
func (c *Checker) run(ctx context.Context, i int) {
	defer c.wg.Done()
	ch := &c.checks[i]
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		err := c.runOnce(ctx, ch)
		if ctx.Err() != nil {
			return // a cancelled run says nothing about the target
		}
		c.record(i, err)
		next := ch.Interval - c.jitter(ch.Interval) - time.Since(start)
		timer.Reset(max(next, 0))
	}
}

func (c *Checker) runOnce(ctx context.Context, ch *Check) error {
	ctx, cancel := context.WithTimeout(ctx, ch.Timeout)
	defer cancel()
	return probe(ctx, ch)
}

func (c *Checker) jitter(interval time.Duration) time.Duration {
	n := int64(interval / jitterFraction)
	if n <= 0 {
		return 0
	}
	return time.Duration(c.opts.Rand(n))
}

// record feeds one result to check i's threshold and reports a flip of the
// service, if this result made one.
func (c *Checker) record(i int, err error) {
	c.notify.Lock()
	defer c.notify.Unlock()
	c.mu.Lock()
	if c.states[i].observe(err) {
		c.opts.Logger.Debug("check flipped", "check", c.checks[i].Name, "passing", c.states[i].passing, "error", err)
	}
	passing, reason := c.statusLocked()
	flipped := passing != c.passing
	c.passing = passing
	c.mu.Unlock()
	if !flipped {
		return
	}
	if passing {
		c.opts.Logger.Info("service passing", "checks", len(c.checks))
	} else {
		c.opts.Logger.Warn("service critical", "reason", reason)
	}
	if c.opts.OnChange != nil {
		c.opts.OnChange(passing, reason)
	}
}
