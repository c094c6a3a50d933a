package loadsrc

import (
	"errors"
	"testing"
	"time"
)

func TestPush(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	set, err := (&Spec{Source: "push", Interval: "1h", Capacity: 50}).Validate()
	if err != nil {
		t.Fatal(err)
	}
	p := NewPush(set, nil)
	defer p.Close()
	if st := p.Status(t0); st.OK || st.Reason != "push: no report yet" {
		t.Fatalf("before any push: %+v", st)
	}
	if err := p.Set(-1, 0, t0); !errors.Is(err, ErrNegative) {
		t.Fatalf("Set(-1) = %v", err)
	}
	if err := p.Set(4, 0, t0); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		after time.Duration
		want  Status
	}{
		{0, Status{Load: 4, Capacity: 50, OK: true}},
		{3 * time.Hour, Status{Load: 4, Capacity: 50, OK: true}},
		{3*time.Hour + time.Second, Status{Load: 4, Capacity: 50, Reason: "push: figure is 3h0m1s old (limit 3h0m0s)"}},
	}
	for _, tc := range cases {
		if got := p.Status(t0.Add(tc.after)); got != tc.want {
			t.Errorf("after %s: %+v, want %+v", tc.after, got, tc.want)
		}
	}
	p.Set(6, 80, t0.Add(4*time.Hour))
	if got, want := p.Status(t0.Add(4*time.Hour)), (Status{Load: 6, Capacity: 80, OK: true}); got != want {
		t.Errorf("pushed capacity: %+v, want %+v", got, want)
	}
}

// TestPushOnChange: OnChange fires on the first push and again when no
// push came for 3 intervals.
func TestPushOnChange(t *testing.T) {
	set, err := (&Spec{Source: "push", Interval: "10ms", Timeout: "5ms"}).Validate()
	if err != nil {
		t.Fatal(err)
	}
	changes := make(chan bool, 4)
	var p *Push
	p = NewPush(set, func() { changes <- p.Status(time.Now()).OK })
	defer p.Close()
	p.Set(1, 0, time.Now())
	if ok := <-changes; !ok {
		t.Fatal("first push: OnChange saw not OK")
	}
	p.Set(2, 0, time.Now()) // no flip
	select {
	case ok := <-changes: // the stale timer, 30ms on
		if ok {
			t.Fatal("stale: OnChange saw OK")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no OnChange when the push went stale")
	}
	p.Close()
	p.Close()
}
