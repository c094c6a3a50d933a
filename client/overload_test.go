package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"github.com/usherlb/usher/wire"
)

// overloadAnswer encodes the balancer's overload answer to req.
func overloadAnswer(req *wire.Request, retryAfter time.Duration) []byte {
	var e wire.Encoder
	b, err := e.AppendOverload(nil, req, retryAfter, req.Size)
	if err != nil {
		panic(err)
	}
	return b
}

// TestOverloadBacksOff loses the session's server and answers its next two
// re-probes with 508: the session reports Overloaded with the wait, sends
// no retransmission of a refused probe, waits the retry-after before the
// next round, and moves once a server is free.
func TestOverloadBacksOff(t *testing.T) {
	const retryAfter = 150 * time.Millisecond
	a, b := newServer(t), newServer(t)
	a.setHandler(func(n int, req *wire.Request, from netip.AddrPort) []byte {
		if n > 2 {
			return nil // a dies after two keepalives
		}
		return keepaliveAnswer(req, from, false)
	})
	bal := newFake(t, func(n int, req *wire.Request, _ netip.AddrPort) []byte {
		switch {
		case n == 1:
			return redirect(req, &wire.Redirect{Server: a.addr})
		case n <= 3:
			return overloadAnswer(req, retryAfter)
		}
		return redirect(req, &wire.Redirect{Server: b.addr})
	})
	opts := testOptions()
	opts.Rand = rand.New(rand.NewPCG(1, 2))
	s := dial(t, bal, opts)

	ev, _ := waitEvent(t, s, Overloaded)
	var oe *OverloadError
	if !errors.As(ev.Err, &oe) || oe.Code != stun.CodeInsufficientCapacity || oe.RetryAfter != retryAfter ||
		!errors.Is(ev.Err, ErrOverloaded) {
		t.Fatalf("event error %v, want a 508 OverloadError asking for %v", ev.Err, retryAfter)
	}
	if ev.RetryAfter < retryAfter || ev.RetryAfter > retryAfter*6/5 || ev.Server != a.addr {
		t.Errorf("event %v waits %v, want %v to %v, about %v", ev, ev.RetryAfter, retryAfter, retryAfter*6/5, a.addr)
	}
	re, before := waitEvent(t, s, Reassigned)
	if re.Server != b.addr || len(before) != 1 || before[0].Kind != Overloaded {
		t.Fatalf("got %v after %v, want a second Overloaded then reassigned to %v", re, kinds(before), b.addr)
	}
	probes := bal.requests()
	if len(probes) != 4 {
		t.Fatalf("balancer saw %d probes, want 4: no retransmission of a refused probe", len(probes))
	}
	for i := 2; i < 4; i++ {
		if probes[i].TxID == probes[i-1].TxID {
			t.Errorf("probe %d retransmits a refused probe", i+1)
		}
	}
	// Each refusal went out after its probe was read, so the next probe
	// comes at least the retry-after after that.
	times := bal.times()
	for i := 1; i <= 2; i++ {
		if gap := times[i+1].Sub(times[i]); gap < retryAfter {
			t.Errorf("probe %d came %v after the refused one, want at least %v", i+2, gap, retryAfter)
		}
	}
	if st := s.Stats(); st.Overloaded != 2 || st.FailedRounds != 2 || st.Reassignments != 1 {
		t.Errorf("stats %+v, want 2 overloaded rounds", st)
	}
}

// TestDialOverloaded: Dial's first round refused for want of capacity
// fails with the OverloadError, so the caller knows the farm is full.
func TestDialOverloaded(t *testing.T) {
	bal := newFake(t, func(_ int, req *wire.Request, _ netip.AddrPort) []byte {
		return overloadAnswer(req, 3*time.Second)
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	s, err := Dial(ctx, bal.addr, testOptions())
	var oe *OverloadError
	if s != nil || !errors.As(err, &oe) || oe.RetryAfter != 3*time.Second || !errors.Is(err, ErrOverloaded) || !errors.Is(err, ErrRefused) {
		t.Fatalf("Dial = %v, %v; want an OverloadError asking for 3s", s, err)
	}
	if n := len(bal.requests()); n != 1 {
		t.Errorf("balancer saw %d probes, want 1", n)
	}
}

// TestProbeOverloaded: a Prober's probe refused for want of capacity
// fails with the OverloadError at once.
func TestProbeOverloaded(t *testing.T) {
	bal := newFake(t, func(_ int, req *wire.Request, _ netip.AddrPort) []byte {
		return errorAnswer(req, stun.CodeServerError)
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err := Probe(ctx, bal.addr, testOptions())
	var oe *OverloadError
	if !errors.As(err, &oe) || oe.Code != stun.CodeServerError || oe.RetryAfter != 0 {
		t.Fatalf("Probe: %v, want an OverloadError for 500", err)
	}
}

func TestOverloadWait(t *testing.T) {
	tests := []struct {
		name                string
		jitter              float64
		retryAfter, backoff time.Duration
		atLeast, atMost     time.Duration
	}{
		{"retry-after longer", 0, 2 * time.Second, time.Second, 2 * time.Second, 2 * time.Second},
		{"back-off longer", 0, time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second},
		{"no hint", 0, 0, 500 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond},
		{"capped", 0, time.Hour, time.Second, MaxRetryAfter, MaxRetryAfter},
		{"jitter only upwards", 0.2, 2 * time.Second, time.Second, 2 * time.Second, 2400 * time.Millisecond},
		{"capped then jittered", 0.5, time.Hour, 0, MaxRetryAfter, MaxRetryAfter * 3 / 2},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tt := range tests {
		lo, hi := time.Duration(1<<62), time.Duration(0)
		for range 1000 {
			d := overloadWait(rng, tt.jitter, tt.retryAfter, tt.backoff)
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo < tt.atLeast || hi > tt.atMost {
			t.Errorf("%s: waits from %v to %v, want within [%v, %v]", tt.name, lo, hi, tt.atLeast, tt.atMost)
		}
		if tt.jitter > 0 && hi-lo < time.Duration(float64(tt.atMost-tt.atLeast)*0.8) {
			t.Errorf("%s: waits from %v to %v: not spread", tt.name, lo, hi)
		}
	}
}
