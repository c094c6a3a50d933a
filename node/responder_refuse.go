package node

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/internal/udpio"
	"github.com/usherlb/usher/wire"
)

// Refusals. When no server can take a probe the balancer address says so
// rather than staying silent: a silent probe is retransmitted, and a farm
// that is full would see every client's probe several times over. Only
// when it knows nothing current of the farm (no report in time, as on a
// leader that has just taken over: assign.ErrNoReport) does it stay silent
// (no_server): that is no overload, and the client's retransmission finds
// the farm once the reports arrive. An Usher
// probe gets 508 with USHER-RETRY-AFTER, a stock TURN Allocate 508 and a
// stock Binding 500 (see wire.OverloadCode). A request carrying an unknown
// comprehension-required attribute gets 420 (RFC 8489 section 7.3.1). Both
// answers obey the size rule and cost less to build than a redirect: no
// pick, no ticket, nothing logged.

// defaultRetryAfter is the USHER-RETRY-AFTER of an overload answer when
// ResponderConfig.RetryAfter is zero: long enough for the next load reports
// to show sessions that ended, short next to a client's give-up.
const defaultRetryAfter = 2 * time.Second

// answerOverload appends to dst the answer to req when no server can take
// it. When even that does not fit the size rule the probe is dropped as
// no_server.
func (p *prober) answerOverload(dst []byte, req *wire.Request) ([]byte, dropReason) {
	out, err := p.enc.AppendOverload(dst, req, p.r.cfg.RetryAfter, wire.Limit(req, p.r.cfg.StockAmplification))
	if err != nil {
		return dst, dropNoServer
	}
	return out, dropNone
}

// answerUnknown appends to dst the 420 answer to req, which carries
// unknown comprehension-required attributes.
func (p *prober) answerUnknown(dst []byte, req *wire.Request) ([]byte, dropReason) {
	out, err := p.enc.AppendUnknownAttributes(dst, req, wire.Limit(req, p.r.cfg.StockAmplification))
	if err != nil {
		return dst, dropTooLarge
	}
	return out, dropNone
}

// answerKind says what an answer the balancer address sends is, for its
// counters.
type answerKind uint8

const (
	// kindRedirect is a redirect, sealed in a handoff or not, or a TURN
	// credentials challenge (401, 438): what probes_answered counts.
	kindRedirect answerKind = iota
	// kindStockBinding is a Binding success to a stock client.
	kindStockBinding
	// kindOverload is an overload answer (508 or 500).
	kindOverload
	// kindUnknownAttribute is a 420 Unknown Attribute.
	kindUnknownAttribute
	numAnswerKinds
)

// kindOf reads the kind of the answer b from its first bytes: its message
// type, and the ERROR-CODE that the encoders always write first.
func kindOf(b []byte) answerKind {
	const errorClass = 0x0110 // both class bits of the message type
	if len(b) < wire.HeaderSize || b[0]&0xc0 != 0 {
		return kindRedirect // a handoff, or nothing we encode
	}
	t := binary.BigEndian.Uint16(b)
	if t == bindingSuccess {
		return kindStockBinding
	}
	if t&errorClass != errorClass || len(b) < wire.HeaderSize+8 ||
		binary.BigEndian.Uint16(b[wire.HeaderSize:]) != uint16(stun.AttrErrorCode) {
		return kindRedirect
	}
	switch stun.ErrorCode(int(b[26]&7)*100 + int(b[27])) {
	case stun.CodeInsufficientCapacity, stun.CodeServerError:
		return kindOverload
	case stun.CodeUnknownAttribute:
		return kindUnknownAttribute
	}
	return kindRedirect
}

// sent returns the counter of answers of kind k.
func (p *prober) sent(k answerKind) *atomic.Uint64 {
	switch k {
	case kindStockBinding:
		return &p.stockBindings
	case kindOverload:
		return &p.overloaded
	case kindUnknownAttribute:
		return &p.unknownAttr
	}
	return &p.answered
}

// countSent counts the answers in out of which the socket sent n.
// WriteBatch does not say which it skipped, so the losses are counted
// against the redirects first, then the other kinds in order.
func (p *prober) countSent(out []udpio.Message, n int) {
	var kinds [numAnswerKinds]int
	for i := range out {
		kinds[kindOf(out[i].Buf)]++
	}
	lost := len(out) - n
	for k, c := range kinds {
		d := min(c, lost)
		lost -= d
		if c -= d; c > 0 {
			p.sent(answerKind(k)).Add(uint64(c))
		}
	}
}
