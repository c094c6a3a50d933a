package loadsrc

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Push is the push source: the application reports its load itself (the
// agent's PUT /v1/services/NAME/load calls Set). A figure not renewed for
// 3 × interval is stale and not OK; OnChange fires when OK flips, whether
// by a Set or by the figure going stale.
type Push struct {
	set      Settings
	onChange func()

	mu     sync.Mutex
	state  state
	ok     bool        // OK as of the last Set or stale timer
	timer  *time.Timer // fires when the last push goes stale
	closed bool
}

// NewPush returns a push source with the validated settings set; onChange
// may be nil.
func NewPush(set Settings, onChange func()) *Push {
	return &Push{set: set, onChange: onChange, state: newState(set)}
}

// ErrNegative is returned by Set for a negative load or capacity.
var ErrNegative = errors.New("load and capacity must not be negative")

// Set records a report of load and capacity (0: not given) received at now.
func (p *Push) Set(load, capacity int, now time.Time) error {
	if load < 0 || capacity < 0 {
		return fmt.Errorf("push: load %d, capacity %d: %w", load, capacity, ErrNegative)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.state.record(Reading{Load: load, Capacity: capacity}, nil, now)
	flipped := !p.ok
	p.ok = true
	limit := staleFactor * p.set.Interval
	if p.timer == nil {
		p.timer = time.AfterFunc(limit, p.expire)
	} else {
		p.timer.Reset(limit)
	}
	p.mu.Unlock()
	if flipped && p.onChange != nil {
		p.onChange()
	}
	return nil
}

// expire runs when no push came for 3 × interval.
func (p *Push) expire() {
	p.mu.Lock()
	flipped := p.ok && !p.closed
	p.ok = false
	p.mu.Unlock()
	if flipped && p.onChange != nil {
		p.onChange()
	}
}

// Status says what the last push is worth at now.
func (p *Push) Status(now time.Time) Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.state.status(now)
	if !st.OK && p.state.at.IsZero() {
		st.Reason = "push: no report yet"
	}
	return st
}

// Close stops the staleness timer; it is idempotent.
func (p *Push) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
	}
	return nil
}
