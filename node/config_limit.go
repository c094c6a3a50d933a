package node

import (
	"crypto/rand"
	"encoding/binary"
	"strconv"
	"time"

	"github.com/usherlb/usher/internal/srclimit"
)

// The defaults of the per-source-prefix limits (source_limit_*).
//
// On the balancer address a session costs one probe when it starts and one
// more when its server dies (all the sessions of a dead server probe again
// within a keepalive interval). 400 probes/s per prefix is twice a load test
// starting 200 sessions/s from one /24, and a burst of 2000 takes every
// session of two full servers (capacity 1000) behind one office NAT probing
// again at once; a single source flooding at 10,000/s is answered 4% of the
// time, at most 400 answers/s (each within stock_amplification of its
// request).
//
// A session endpoint sees every session's keepalives, one per
// keepalive_interval, and one prefix may hold every session a node has, so
// its default rate is twice capacity per keepalive_interval (retries and
// roaming clients), 2000/s at the defaults, with a burst of twice that.
const (
	defaultSourceLimitRate  = 400
	defaultSourceLimitBurst = 2000
)

// defaultSessionRefusalRate is session_refusal_rate's default: error
// answers per second and endpoint. A client earns one only when its ticket
// is missing or expired or a server is full, and one whose error answer is
// dropped re-probes once the server has been silent for dead_after; a
// flood of forged keepalives, one 401 each, is what the bound is for.
const defaultSessionRefusalRate = 1000

// sourceLimits returns the limits of the balancer address and of the
// session endpoint, both off when source_limit is "off".
func (r *Runtime) sourceLimits() (balancer, session srclimit.Config) {
	if r.SourceLimit == "off" {
		return srclimit.Config{}, srclimit.Config{}
	}
	balancer = srclimit.Config{
		Rate:     r.SourceLimitRate,
		Burst:    r.SourceLimitBurst,
		IPv4Bits: r.SourceLimitIPv4Prefix,
		IPv6Bits: r.SourceLimitIPv6Prefix,
	}
	session = balancer
	session.Rate, session.Burst = r.SessionLimitRate, r.SessionLimitBurst
	if session.Rate == 0 {
		interval := max(r.Parsed.KeepaliveInterval, time.Millisecond)
		session.Rate = max(int(2*int64(r.Capacity)*int64(time.Second)/int64(interval)), 1)
	}
	if session.Burst == 0 {
		session.Burst = 2 * session.Rate
	}
	return balancer, session
}

// checkSourceLimits checks the source_limit keys.
func (r *Runtime) checkSourceLimits(bad func(key, value, problem string)) {
	if r.SourceLimit != "on" && r.SourceLimit != "off" {
		bad("source_limit", r.SourceLimit, `must be "on" or "off"`)
	}
	for _, k := range []struct {
		key       string
		v, lo, hi int
		problem   string
	}{
		{"source_limit_rate", r.SourceLimitRate, 1, 1e9, "must be between 1 and 1e9 datagrams per second"},
		{"source_limit_burst", r.SourceLimitBurst, 1, 1e9, "must be between 1 and 1e9 datagrams"},
		{"session_limit_rate", r.SessionLimitRate, 0, 1e9, "must be between 0 (twice capacity per keepalive_interval) and 1e9 datagrams per second"},
		{"session_limit_burst", r.SessionLimitBurst, 0, 1e9, "must be between 0 (twice session_limit_rate) and 1e9 datagrams"},
		{"session_refusal_rate", r.SessionRefusalRate, 0, 1e9, "must be between 0 (unbounded) and 1e9 error answers per second"},
		{"source_limit_ipv4_prefix", r.SourceLimitIPv4Prefix, 1, 32, "must be a prefix length between 1 and 32"},
		{"source_limit_ipv6_prefix", r.SourceLimitIPv6Prefix, 1, 128, "must be a prefix length between 1 and 128"},
	} {
		if k.v < k.lo || k.v > k.hi {
			bad(k.key, strconv.Itoa(k.v), k.problem)
		}
	}
}

// limitKey returns a random key for a limit table's hash, which clients
// must not know: with it they could aim spoofed sources at one set.
func limitKey() [2]uint64 {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return [2]uint64{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}
}
