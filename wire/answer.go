package wire

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/pion/stun/v3"
)

// Redirect is the content of a probe's answer: a 300 Try Alternate naming
// the assigned server.
type Redirect struct {
	// Server is the assigned server's real address (ALTERNATE-SERVER).
	Server netip.AddrPort
	// Domain is the assigned server's domain name (ALTERNATE-DOMAIN, RFC
	// 8489 §14.16): the name a client reached over TLS checks the
	// alternate's certificate against. Empty for none; when set it is part
	// of the minimal redirect, never left out for room.
	Domain string
	// Ticket is the USHER-TICKET to present to Server; nil for none.
	Ticket []byte
	// Interval and DeadAfter are the keepalive timers (USHER-TIMERS); the
	// attribute is left out when both are zero.
	Interval, DeadAfter time.Duration
	// Term is the leadership term of the answer (USHER-TERM); left out
	// when zero.
	Term uint64
	// Backups are servers to try directly when the balancer address is
	// silent (USHER-BACKUP), included as room permits. A client keeps the
	// first MaxBackups, so more are wasted bytes.
	Backups []netip.AddrPort
}

// KeepaliveAnswer is the content of a keepalive's success answer.
type KeepaliveAnswer struct {
	// Mapped is the source address the keepalive came from
	// (XOR-MAPPED-ADDRESS): the client's public address.
	Mapped netip.AddrPort
	// Drain asks the client to move to another server (USHER-DRAIN).
	Drain bool
}

// Limit is the largest answer Usher may send to req: the request's own size
// for an Usher request (one with USHER-SESSION), and stockFactor times it for
// a stock STUN or TURN request. A stockFactor below 1 counts as 1.
func Limit(req *Request, stockFactor int) int {
	if req.HasSession || stockFactor < 1 {
		return req.Size
	}
	return stockFactor * req.Size
}

// Encoder builds Usher's messages. The answers (AppendRedirect,
// AppendKeepaliveAnswer, AppendErrorAnswer), which are the balancer's and the
// servers' hot path, are written by hand straight into dst's spare capacity
// (see put.go) and use no state of the Encoder; the client's requests
// (AppendProbe, AppendKeepalive) are built with pion/stun in a message the
// Encoder reuses. None of them allocates when dst has room. An Encoder is
// not safe for concurrent use.
type Encoder struct {
	m stun.Message
}

// Sizes of the fixed-size attributes, headers included.
const (
	sizeErrorCode   = 4 + 4
	sizeTimers      = 4 + 8
	sizeTerm        = 4 + 8
	sizeFingerprint = 4 + 4
	sizeDrain       = 4
)

// errErrorCode means an error code that ERROR-CODE cannot carry: its class
// (code/100) must fit a byte and its number (code%100) must not be negative.
var errErrorCode = errors.New("error code out of range")

// AppendRedirect appends to dst the answer to the probe req redirecting it
// to r.Server, no larger than limit bytes (see Limit). For a stock request it
// is the minimal redirect: ERROR-CODE 300 without a reason phrase,
// ALTERNATE-SERVER, ALTERNATE-DOMAIN when r.Domain is set, and FINGERPRINT if the request had one and it fits. For
// an Usher probe the optional attributes are considered in priority order,
// TERM, TICKET, TIMERS, FINGERPRINT (if the request had one), then the
// backups in the order given, and each is included only if it fits in the
// room the ones before it left: one that does not fit is left out while a
// later, smaller one may still go in, except that the backups stop at the
// first one that does not fit. A ticket longer than MaxTicketLen is never
// sent. If even the minimal redirect does not fit, or r.Domain is longer
// than MaxDomainLen, it returns dst unchanged and ErrTooLarge (a domain is
// never truncated: a client would check the wrong name); if r.Server is not valid, dst unchanged and ErrNoServer.
// The answer is written in dst's spare capacity, so r.Ticket must not lie
// there.
func (e *Encoder) AppendRedirect(dst []byte, req *Request, r *Redirect, limit int) ([]byte, error) {
	if !r.Server.IsValid() {
		return dst, ErrNoServer
	}
	size := HeaderSize + sizeErrorCode + addrSize(r.Server)
	if r.Domain != "" {
		size += 4 + padded(len(r.Domain))
	}
	if size > limit || len(r.Domain) > MaxDomainLen {
		return dst, ErrTooLarge
	}
	// Decide what goes in, and so the exact size, before writing anything.
	add := func(n int) bool {
		if size+n > limit {
			return false
		}
		size += n
		return true
	}
	var withFP, withTerm, withTicket, withTimers bool
	backups := 0
	if !req.HasSession {
		withFP = req.Fingerprint && add(sizeFingerprint)
	} else {
		// Most important first: the term fences stale leaders, the ticket
		// may be required by the server, the timers have defaults.
		withTerm = r.Term != 0 && add(sizeTerm)
		withTicket = len(r.Ticket) > 0 && len(r.Ticket) <= MaxTicketLen && add(4+padded(len(r.Ticket)))
		withTimers = (r.Interval != 0 || r.DeadAfter != 0) && add(sizeTimers)
		withFP = req.Fingerprint && add(sizeFingerprint)
		for _, b := range r.Backups {
			if backups == MaxBackups || !add(addrSize(b)) {
				break
			}
			backups++
		}
	}

	// The attributes go in the order the client reads them, the fingerprint
	// last although it was counted before the backups.
	out, b := extend(dst, size)
	n := putHeader(b, stun.NewType(req.Method, stun.ClassErrorResponse), size-HeaderSize, &req.TxID)
	n = putErrorCode(b, n, stun.CodeTryAlternate)
	n = putMappedAddress(b, n, stun.AttrAlternateServer, r.Server)
	if r.Domain != "" {
		n = putBytes(b, n, stun.AttrAlternateDomain, r.Domain)
	}
	if withTerm {
		n = putUint64(b, n, AttrTerm, r.Term)
	}
	if withTicket {
		n = putBytes(b, n, AttrTicket, r.Ticket)
	}
	if withTimers {
		n = putUint32Pair(b, n, AttrTimers, millis(r.Interval), millis(r.DeadAfter))
	}
	for _, ap := range r.Backups[:backups] {
		n = putXORAddress(b, n, AttrBackup, ap, &req.TxID)
	}
	if withFP {
		putFingerprint(b, n)
	}
	return out, nil
}

// AppendKeepaliveAnswer appends to dst the success answer to the keepalive
// req, no larger than limit bytes; with a.Drain false it is also any STUN
// server's answer to a stock Binding request. It drops FINGERPRINT, then USHER-DRAIN,
// when they do not fit; XOR-MAPPED-ADDRESS is required, and if it does not
// fit the result is dst unchanged and ErrTooLarge. IPv4-mapped IPv6
// addresses are sent as IPv4.
func (e *Encoder) AppendKeepaliveAnswer(dst []byte, req *Request, a *KeepaliveAnswer, limit int) ([]byte, error) {
	size := HeaderSize + addrSize(a.Mapped)
	if size > limit {
		return dst, ErrTooLarge
	}
	withDrain := a.Drain && size+sizeDrain <= limit
	if withDrain {
		size += sizeDrain
	}
	withFP := req.Fingerprint && size+sizeFingerprint <= limit
	if withFP {
		size += sizeFingerprint
	}

	out, b := extend(dst, size)
	n := putHeader(b, stun.NewType(req.Method, stun.ClassSuccessResponse), size-HeaderSize, &req.TxID)
	n = putXORAddress(b, n, stun.AttrXORMappedAddress, a.Mapped, &req.TxID)
	if withDrain {
		n = putAttrHeader(b, n, AttrDrain, 0)
	}
	if withFP {
		putFingerprint(b, n)
	}
	return out, nil
}

// AppendErrorAnswer appends to dst an error answer to req with the given
// STUN error code and no reason phrase (for example 401 for a session that
// presents no valid ticket), and FINGERPRINT if the request had one and it
// fits, no larger than limit bytes. If it does not fit the result is dst
// unchanged and ErrTooLarge; a code ERROR-CODE cannot carry (below 0 or
// above 25599) is an error too.
func (e *Encoder) AppendErrorAnswer(dst []byte, req *Request, code stun.ErrorCode, limit int) ([]byte, error) {
	size := HeaderSize + sizeErrorCode
	if size > limit {
		return dst, ErrTooLarge
	}
	if !validErrorCode(code) {
		return dst, fmt.Errorf("%w: %d", errErrorCode, int(code))
	}
	withFP := req.Fingerprint && size+sizeFingerprint <= limit
	if withFP {
		size += sizeFingerprint
	}

	out, b := extend(dst, size)
	n := putHeader(b, stun.NewType(req.Method, stun.ClassErrorResponse), size-HeaderSize, &req.TxID)
	n = putErrorCode(b, n, code)
	if withFP {
		putFingerprint(b, n)
	}
	return out, nil
}

// padded rounds n up to a multiple of four, the STUN attribute alignment.
func padded(n int) int { return (n + 3) &^ 3 }

// millis converts d to whole milliseconds, saturating at the uint32 range.
func millis(d time.Duration) uint32 {
	ms := d.Milliseconds()
	switch {
	case ms < 0:
		return 0
	case ms > 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(ms)
}

// OverloadCode is the error code of the answer to req when no server can
// take it. An Usher probe and a stock TURN Allocate get 508 Insufficient
// Capacity, which RFC 8656 defines for a server that cannot allocate for
// lack of capacity (IANA lists it in the STUN error code registry). A stock
// Binding request gets 500 Server Error, the only server-side error RFC 8489
// defines, "a temporary error; the client should try again": a STUN client
// that knows no 508 would read it as 500 anyway (RFC 8489 section 6.3.4),
// and 503 is no STUN code at all.
func OverloadCode(req *Request) stun.ErrorCode {
	if req.HasSession || req.Method == stun.MethodAllocate {
		return stun.CodeInsufficientCapacity
	}
	return stun.CodeServerError
}

// sizeRetryAfter is the size of USHER-RETRY-AFTER, header included.
const sizeRetryAfter = 4 + 4

// AppendOverload appends to dst the answer to req when no server can take
// it: ERROR-CODE OverloadCode(req) without a reason phrase, then, for an
// Usher probe only and when retryAfter is positive, USHER-RETRY-AFTER
// holding retryAfter in whole milliseconds, then FINGERPRINT if the request
// had one; the optional attributes are included in that order as room
// permits within limit. If the ERROR-CODE alone does not fit, the result is
// dst unchanged and ErrTooLarge.
func (e *Encoder) AppendOverload(dst []byte, req *Request, retryAfter time.Duration, limit int) ([]byte, error) {
	size := HeaderSize + sizeErrorCode
	if size > limit {
		return dst, ErrTooLarge
	}
	withRetry := req.HasSession && retryAfter > 0 && size+sizeRetryAfter <= limit
	if withRetry {
		size += sizeRetryAfter
	}
	withFP := req.Fingerprint && size+sizeFingerprint <= limit
	if withFP {
		size += sizeFingerprint
	}

	out, b := extend(dst, size)
	n := putHeader(b, stun.NewType(req.Method, stun.ClassErrorResponse), size-HeaderSize, &req.TxID)
	n = putErrorCode(b, n, OverloadCode(req))
	if withRetry {
		n = putUint32(b, n, AttrRetryAfter, millis(retryAfter))
	}
	if withFP {
		putFingerprint(b, n)
	}
	return out, nil
}

// AppendUnknownAttributes appends to dst the 420 Unknown Attribute answer
// to req, which DecodeRequest failed with ErrUnknownAttribute (RFC 8489
// section 7.3.1): ERROR-CODE 420 without a reason phrase, UNKNOWN-ATTRIBUTES
// listing req.Unknown, and FINGERPRINT if the request had one and it fits.
// The list is cut short to fit limit; if not even one attribute fits, or
// req lists none, the result is dst unchanged and ErrTooLarge.
func (e *Encoder) AppendUnknownAttributes(dst []byte, req *Request, limit int) ([]byte, error) {
	k := min(req.NumUnknown, MaxUnknown)
	base := HeaderSize + sizeErrorCode + 4
	for k > 0 && base+padded(2*k) > limit {
		k--
	}
	if k == 0 {
		return dst, ErrTooLarge
	}
	size := base + padded(2*k)
	withFP := req.Fingerprint && size+sizeFingerprint <= limit
	if withFP {
		size += sizeFingerprint
	}

	out, b := extend(dst, size)
	n := putHeader(b, stun.NewType(req.Method, stun.ClassErrorResponse), size-HeaderSize, &req.TxID)
	n = putErrorCode(b, n, stun.CodeUnknownAttribute)
	n = putAttrTypes(b, n, stun.AttrUnknownAttributes, req.Unknown[:k])
	if withFP {
		putFingerprint(b, n)
	}
	return out, nil
}
