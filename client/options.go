package client

import (
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/usherlb/usher/wire"
)

// Defaults applied by Dial to the zero fields of Options.
const (
	DefaultRTO               = 250 * time.Millisecond
	DefaultRetries           = 5
	DefaultJitter            = 0.2
	DefaultKeepaliveInterval = time.Second
	DefaultDeadAfter         = 3 * time.Second
	DefaultReprobeBackoff    = 500 * time.Millisecond
	DefaultLoopGuard         = 5 * time.Minute
	DefaultEvents            = 64

	// MaxReprobeBackoff caps the back-off between failed re-probe rounds.
	MaxReprobeBackoff = 10 * time.Second
	// MaxRetryAfter caps the wait after an overload answer, whatever its
	// USHER-RETRY-AFTER asks.
	MaxRetryAfter = time.Minute
)

// Options tunes a Session. The zero value is usable: every zero field takes
// the matching Default value.
type Options struct {
	// Service names the service asked for (USHER-SERVICE); "" is the
	// default service. At most wire.MaxServiceLen bytes.
	Service string
	// RTO is the initial probe retransmission timeout; it doubles with
	// every retransmission of the same probe.
	RTO time.Duration
	// Retries is how many times one probe is transmitted (the first
	// transmission included) before the round is given up.
	Retries int
	// Jitter is the fraction of random jitter applied to every timer: a
	// delay d becomes uniform in [d(1-Jitter), d(1+Jitter)]. Zero means
	// DefaultJitter, a negative value disables jitter, values above 1 are
	// treated as 1.
	Jitter float64
	// KeepaliveInterval is the keepalive period used when an assignment
	// carries no USHER-TIMERS.
	KeepaliveInterval time.Duration
	// DeadAfter is how long the server may leave keepalives unanswered
	// before it is declared dead, when an assignment carries no
	// USHER-TIMERS.
	DeadAfter time.Duration
	// ReprobeBackoff is the base of the jittered exponential back-off
	// between failed re-probe rounds, capped at MaxReprobeBackoff.
	ReprobeBackoff time.Duration
	// LoopGuard is how long a lost (or draining) server is remembered: a
	// redirect back to it is refused during this window while another
	// server is known.
	LoopGuard time.Duration
	// LocalAddr is the address the session's socket binds; the zero value
	// binds the unspecified address and an ephemeral port.
	LocalAddr netip.AddrPort
	// Events is the buffer of the event channel. Events that do not fit
	// are dropped and counted in Stats.EventsDropped.
	Events int
	// Logger receives debug and info logs; nil discards them.
	Logger hclog.Logger
	// Now is the clock used for the loop guard's bookkeeping and event
	// timestamps; nil means time.Now. Timers always use the real clock.
	Now func() time.Time
	// Rand is the jitter source, used only by the session's own
	// goroutine; nil means a generator seeded from crypto/rand.
	Rand *rand.Rand
}

// withDefaults returns o with every zero field set to its default, or an
// error for a value that cannot be used.
func (o Options) withDefaults() (Options, error) {
	if len(o.Service) > wire.MaxServiceLen {
		return o, fmt.Errorf("client: service name longer than %d bytes", wire.MaxServiceLen)
	}
	if o.RTO <= 0 {
		o.RTO = DefaultRTO
	}
	if o.Retries <= 0 {
		o.Retries = DefaultRetries
	}
	switch {
	case o.Jitter == 0:
		o.Jitter = DefaultJitter
	case o.Jitter < 0:
		o.Jitter = 0
	case o.Jitter > 1:
		o.Jitter = 1
	}
	if o.KeepaliveInterval <= 0 {
		o.KeepaliveInterval = DefaultKeepaliveInterval
	}
	if o.DeadAfter <= 0 {
		o.DeadAfter = DefaultDeadAfter
	}
	if o.ReprobeBackoff <= 0 {
		o.ReprobeBackoff = DefaultReprobeBackoff
	}
	if o.LoopGuard <= 0 {
		o.LoopGuard = DefaultLoopGuard
	}
	if o.Events <= 0 {
		o.Events = DefaultEvents
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		var seed [32]byte
		crand.Read(seed[:])
		o.Rand = rand.New(rand.NewChaCha8(seed)) //nolint:gosec // jitter, not a secret; seeded from crypto/rand
	}
	return o, nil
}

// jitter returns d spread uniformly by the fraction j either way.
func jitter(r *rand.Rand, j float64, d time.Duration) time.Duration {
	if j <= 0 || d <= 0 {
		return d
	}
	return time.Duration(float64(d) * (1 + j*(2*r.Float64()-1)))
}

// overloadWait returns the wait after an overload answer asking for
// retryAfter, when the back-off would be backoff: the longer of the two,
// at most MaxRetryAfter, spread upwards only by the fraction j so that the
// balancer's wish is honoured and the clients it refused together do not
// come back together.
func overloadWait(r *rand.Rand, j float64, retryAfter, backoff time.Duration) time.Duration {
	d := min(max(retryAfter, backoff), MaxRetryAfter)
	if j <= 0 {
		return d
	}
	return d + time.Duration(float64(d)*j*r.Float64())
}

// backoff returns the un-jittered delay after the n-th consecutive failed
// round (n >= 1): base doubled n-1 times, capped at MaxReprobeBackoff.
func backoff(base time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < MaxReprobeBackoff; i++ {
		d *= 2
	}
	return min(d, MaxReprobeBackoff)
}

// rto returns the un-jittered wait after the n-th transmission of a probe
// (n >= 1): base doubled n-1 times.
func rto(base time.Duration, n int) time.Duration {
	const ceiling = time.Minute
	d := base
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}

// listen binds the client's UDP socket: on LocalAddr, or an ephemeral port.
func (o Options) listen() (*net.UDPConn, error) {
	var laddr *net.UDPAddr
	if o.LocalAddr.IsValid() {
		laddr = net.UDPAddrFromAddrPort(o.LocalAddr)
	}
	conn, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, fmt.Errorf("client: listen: %w", err)
	}
	return conn, nil
}
