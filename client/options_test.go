package client

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestOptionsDefaults(t *testing.T) {
	o, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"RTO", o.RTO, DefaultRTO},
		{"Retries", o.Retries, DefaultRetries},
		{"Jitter", o.Jitter, DefaultJitter},
		{"KeepaliveInterval", o.KeepaliveInterval, DefaultKeepaliveInterval},
		{"DeadAfter", o.DeadAfter, DefaultDeadAfter},
		{"ReprobeBackoff", o.ReprobeBackoff, DefaultReprobeBackoff},
		{"LoopGuard", o.LoopGuard, DefaultLoopGuard},
		{"Events", o.Events, DefaultEvents},
		{"Logger set", o.Logger != nil, true},
		{"Now set", o.Now != nil, true},
		{"Rand set", o.Rand != nil, true},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestOptionsJitterBounds(t *testing.T) {
	tests := []struct {
		in, want float64
	}{
		{0, DefaultJitter},
		{-1, 0},
		{0.5, 0.5},
		{3, 1},
	}
	for _, tt := range tests {
		o, _ := Options{Jitter: tt.in}.withDefaults()
		if o.Jitter != tt.want {
			t.Errorf("Jitter %v became %v, want %v", tt.in, o.Jitter, tt.want)
		}
	}
}

func TestJitter(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const d = time.Second
	tests := []struct {
		j        float64
		min, max time.Duration
	}{
		{0, d, d},
		{0.2, 800 * time.Millisecond, 1200 * time.Millisecond},
		{1, 0, 2 * d},
	}
	for _, tt := range tests {
		for range 1000 {
			if got := jitter(r, tt.j, d); got < tt.min || got > tt.max {
				t.Fatalf("jitter(%v, %v) = %v, outside [%v, %v]", tt.j, d, got, tt.min, tt.max)
			}
		}
	}
}

func TestBackoffAndRTO(t *testing.T) {
	tests := []struct {
		name string
		f    func(time.Duration, int) time.Duration
		base time.Duration
		n    int
		want time.Duration
	}{
		{"backoff first", backoff, 500 * time.Millisecond, 1, 500 * time.Millisecond},
		{"backoff third", backoff, 500 * time.Millisecond, 3, 2 * time.Second},
		{"backoff capped", backoff, 500 * time.Millisecond, 10, MaxReprobeBackoff},
		{"backoff huge n", backoff, 500 * time.Millisecond, 1 << 20, MaxReprobeBackoff},
		{"rto first", rto, 250 * time.Millisecond, 1, 250 * time.Millisecond},
		{"rto fifth", rto, 250 * time.Millisecond, 5, 4 * time.Second},
		{"rto bounded", rto, 250 * time.Millisecond, 1 << 20, time.Minute},
	}
	for _, tt := range tests {
		if got := tt.f(tt.base, tt.n); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestEventKindString(t *testing.T) {
	seen := map[string]bool{}
	for k := Assigned; k <= Guarded; k++ {
		s := k.String()
		if s == "" || strings.HasPrefix(s, "EventKind(") || seen[s] {
			t.Errorf("kind %d has name %q", k, s)
		}
		seen[s] = true
	}
	if s := EventKind(200).String(); s != "EventKind(200)" {
		t.Errorf("unknown kind named %q", s)
	}
	ev := Event{Kind: Failed, Server: netip.MustParseAddrPort("10.0.0.1:3479"), Term: 7, Err: ErrNoAnswer}
	if got, want := ev.String(), "failed 10.0.0.1:3479 term=7: no answer from the balancer address"; got != want {
		t.Errorf("Event.String() = %q, want %q", got, want)
	}
}
