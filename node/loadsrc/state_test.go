package loadsrc

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type step struct {
	at   time.Duration // after t0
	load int
	err  error
}

func TestStateStatus(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	refused := errors.New("GET http://127.0.0.1:9/metrics: connection refused")
	cases := []struct {
		name     string
		capacity int
		steps    []step
		now      time.Duration
		want     Status
		reason   string // substring of Reason
	}{
		{name: "no figure yet", now: 0, reason: "prometheus: no figure yet"},
		{name: "no figure, an error", steps: []step{{0, 0, refused}}, now: 0, reason: "no figure yet: GET"},
		{name: "fresh", steps: []step{{0, 7, nil}}, now: time.Second, want: Status{Load: 7, OK: true}},
		{name: "capacity from spec", capacity: 9, steps: []step{{0, 7, nil}}, now: 0, want: Status{Load: 7, Capacity: 9, OK: true}},
		{name: "exactly 3 intervals old", steps: []step{{0, 7, nil}}, now: 3 * time.Second, want: Status{Load: 7, OK: true}},
		{name: "stale", steps: []step{{0, 7, nil}}, now: 3*time.Second + time.Millisecond, want: Status{Load: 7}, reason: "prometheus: figure is 3.001s old (limit 3s)"},
		{name: "two failures keep the figure", steps: []step{{0, 7, nil}, {time.Second, 0, refused}, {2 * time.Second, 0, refused}}, now: 2 * time.Second, want: Status{Load: 7, OK: true}},
		{name: "three failures", steps: []step{{0, 7, nil}, {time.Second, 0, refused}, {2 * time.Second, 0, refused}, {2500 * time.Millisecond, 0, refused}}, now: 2500 * time.Millisecond, want: Status{Load: 7}, reason: "prometheus: 3 failures in a row: GET http://127.0.0.1:9/metrics: connection refused"},
		{name: "a success resets the run", steps: []step{{0, 7, nil}, {time.Second, 0, refused}, {2 * time.Second, 0, refused}, {2500 * time.Millisecond, 8, nil}, {2600 * time.Millisecond, 0, refused}}, now: 2600 * time.Millisecond, want: Status{Load: 8, OK: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newState(Settings{Kind: "prometheus", Interval: time.Second, Failures: 3, Capacity: tc.capacity})
			for _, st := range tc.steps {
				s.record(Reading{Load: st.load}, st.err, t0.Add(st.at))
			}
			got := s.status(t0.Add(tc.now))
			reason := got.Reason
			got.Reason = ""
			if got != tc.want {
				t.Errorf("status = %+v, want %+v", got, tc.want)
			}
			if (reason == "") != (tc.reason == "") || !strings.Contains(reason, tc.reason) {
				t.Errorf("reason = %q, want one containing %q", reason, tc.reason)
			}
		})
	}
}
