package node

import (
	"errors"
	"sync/atomic"

	"github.com/usherlb/usher/wire"
)

// dropReason says why a datagram got no answer. The zero value means it was
// answered.
type dropReason uint8

const (
	dropNone dropReason = iota
	dropNotSTUN
	dropNotRequest
	dropMethod
	dropAttribute
	dropFingerprint
	dropTooLarge
	dropNoServer
	dropNotLeader
	dropUnknownService
	dropWriteError
	dropHandoffInvalid
	dropHandoffStale
	dropHandoffReplay
	dropConnLimit
	dropTimeout
	dropTLSHandshake
	dropRateLimited
	dropRefusalLimit
	numDropReasons
)

var dropNames = [numDropReasons]string{
	dropNone:           "none",
	dropNotSTUN:        "not_stun",
	dropNotRequest:     "not_request",
	dropMethod:         "method",
	dropAttribute:      "attribute",
	dropFingerprint:    "fingerprint",
	dropTooLarge:       "too_large",
	dropNoServer:       "no_server",
	dropNotLeader:      "not_leader",
	dropUnknownService: "unknown_service",
	dropWriteError:     "write_error",
	dropHandoffInvalid: "handoff_invalid",
	dropHandoffStale:   "handoff_stale",
	dropHandoffReplay:  "handoff_replay",
	dropConnLimit:      "conn_limit",
	dropTimeout:        "timeout",
	dropTLSHandshake:   "tls_handshake",
	dropRateLimited:    "rate_limited",
	dropRefusalLimit:   "refusal_limit",
}

// String returns the reason's metric label.
func (r dropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return "unknown"
}

// decodeDrop maps a wire decoding error to its drop reason.
func decodeDrop(err error) dropReason {
	switch {
	case errors.Is(err, wire.ErrNotRequest):
		return dropNotRequest
	case errors.Is(err, wire.ErrMethod):
		return dropMethod
	case errors.Is(err, wire.ErrAttribute):
		return dropAttribute
	case errors.Is(err, wire.ErrFingerprint):
		return dropFingerprint
	case errors.Is(err, wire.ErrTooLarge):
		return dropTooLarge
	}
	return dropNotSTUN
}

// dropCounters counts drops by reason without allocating or locking, so the
// packet paths can count every datagram; metrics read them at export time.
type dropCounters [numDropReasons]atomic.Uint64

// add counts one drop for reason r; dropNone is not counted.
func (d *dropCounters) add(r dropReason) {
	if r != dropNone && r < numDropReasons {
		d[r].Add(1)
	}
}

// snapshot returns the counts by reason label, leaving out zero counts.
func (d *dropCounters) snapshot() map[string]uint64 {
	m := make(map[string]uint64)
	for r := dropNotSTUN; r < numDropReasons; r++ {
		if n := d[r].Load(); n != 0 {
			m[r.String()] = n
		}
	}
	return m
}
