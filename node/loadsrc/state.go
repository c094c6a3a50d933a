package loadsrc

import (
	"fmt"
	"time"
)

// Status is what a source says of its service at one instant.
type Status struct {
	// Load is the last figure read (meaningful only when OK).
	Load int
	// Capacity is the service's capacity, 0 when neither the source nor
	// the spec gives one.
	Capacity int
	// OK is false when the figure must not be balanced on: too many
	// failed readings in a row, or a figure older than 3 × interval.
	OK bool
	// Reason says why the figure is not OK, a short phrase for `usher
	// members` and the log; empty when OK.
	Reason string
}

// Reading is one figure a source gives.
type Reading struct {
	Load     int
	Capacity int
}

// state is the pure part of a Tracker: the last figure and the run of
// failures. It knows no clock but the times it is given.
type state struct {
	kind     string
	interval time.Duration
	failures int // threshold
	capacity int // from the spec, used when a reading gives none

	last    Reading
	at      time.Time // when last was read; zero: never
	fails   int       // consecutive failures
	lastErr error
}

func newState(set Settings) state {
	return state{kind: set.Kind, interval: set.Interval, failures: set.Failures, capacity: set.Capacity}
}

// record notes the outcome of one reading taken at at.
func (s *state) record(r Reading, err error, at time.Time) {
	if err != nil {
		s.fails++
		s.lastErr = err
		return
	}
	s.fails, s.lastErr = 0, nil
	s.last, s.at = r, at
}

// status says what the figure is worth at now.
func (s *state) status(now time.Time) Status {
	st := Status{Load: s.last.Load, Capacity: s.last.Capacity}
	if st.Capacity == 0 {
		st.Capacity = s.capacity
	}
	limit := staleFactor * s.interval
	switch {
	case s.fails >= s.failures:
		st.Reason = fmt.Sprintf("%s: %d failures in a row: %v", s.kind, s.fails, s.lastErr)
	case s.at.IsZero() && s.lastErr != nil:
		st.Reason = fmt.Sprintf("%s: no figure yet: %v", s.kind, s.lastErr)
	case s.at.IsZero():
		st.Reason = fmt.Sprintf("%s: no figure yet", s.kind)
	case now.Sub(s.at) > limit:
		st.Reason = fmt.Sprintf("%s: figure is %s old (limit %s)", s.kind, now.Sub(s.at).Round(time.Millisecond), limit)
	default:
		st.OK = true
	}
	return st
}
