package wire

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/pion/stun/v3"
)

// Redirect is the content of a probe's answer: a 300 Try Alternate naming
// the assigned server.
type Redirect struct {
	// Server is the assigned server's real address (ALTERNATE-SERVER).
	Server netip.AddrPort
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

// Encoder builds answers, reusing its buffers so that encoding does not
// allocate when dst has room. It is not safe for concurrent use.
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

// AppendRedirect appends to dst the answer to the probe req redirecting it
// to r.Server, no larger than limit bytes (see Limit). For a stock request it
// is the minimal redirect: ERROR-CODE 300 without a reason phrase,
// ALTERNATE-SERVER, and FINGERPRINT if the request had one and it fits. For
// an Usher probe the optional attributes are considered in priority order,
// TERM, TICKET, TIMERS, FINGERPRINT (if the request had one), then the
// backups in the order given, and each is included only if it fits in the
// room the ones before it left: one that does not fit is left out while a
// later, smaller one may still go in, except that the backups stop at the
// first one that does not fit. A ticket longer than MaxTicketLen is never
// sent. If even the minimal redirect does not fit it returns dst unchanged
// and ErrTooLarge. r.Ticket must not lie in dst's spare capacity, where the
// answer is built.
func (e *Encoder) AppendRedirect(dst []byte, req *Request, r *Redirect, limit int) ([]byte, error) {
	if !r.Server.IsValid() {
		return dst, ErrNoServer
	}
	size := HeaderSize + sizeErrorCode + addrSize(r.Server)
	if size > limit {
		return dst, ErrTooLarge
	}
	var withFP, withTerm, withTicket, withTimers bool
	backups := 0
	if !req.HasSession {
		withFP = req.Fingerprint && size+sizeFingerprint <= limit
	} else {
		// Most important first: the term fences stale leaders, the ticket
		// may be required by the server, the timers have defaults.
		add := func(n int) bool {
			if size+n > limit {
				return false
			}
			size += n
			return true
		}
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
		if withFP {
			size -= sizeFingerprint // added last, below
		}
	}

	m := e.start(dst, stun.NewType(req.Method, stun.ClassErrorResponse), req.TxID)
	if err := (stun.ErrorCodeAttribute{Code: stun.CodeTryAlternate}).AddTo(m); err != nil {
		return dst, err
	}
	if err := addMappedAddress(m, stun.AttrAlternateServer, r.Server); err != nil {
		return dst, err
	}
	if withTerm {
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], r.Term)
		m.Add(AttrTerm, v[:])
	}
	if withTicket {
		m.Add(AttrTicket, r.Ticket)
	}
	if withTimers {
		var v [8]byte
		binary.BigEndian.PutUint32(v[0:4], millis(r.Interval))
		binary.BigEndian.PutUint32(v[4:8], millis(r.DeadAfter))
		m.Add(AttrTimers, v[:])
	}
	for _, b := range r.Backups[:backups] {
		if err := addXORAddress(m, AttrBackup, b); err != nil {
			return dst, err
		}
	}
	return e.finish(dst, withFP)
}

// AppendKeepaliveAnswer appends to dst the success answer to the keepalive
// req, no larger than limit bytes. It drops FINGERPRINT, then USHER-DRAIN,
// when they do not fit; XOR-MAPPED-ADDRESS is required, and if it does not
// fit the result is dst unchanged and ErrTooLarge.
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

	m := e.start(dst, stun.NewType(req.Method, stun.ClassSuccessResponse), req.TxID)
	if err := addXORAddress(m, stun.AttrXORMappedAddress, a.Mapped); err != nil {
		return dst, err
	}
	if withDrain {
		m.Add(AttrDrain, nil)
	}
	return e.finish(dst, withFP)
}

// AppendErrorAnswer appends to dst an error answer to req with the given
// STUN error code and no reason phrase (for example 401 for a session that
// presents no valid ticket), no larger than limit bytes.
func (e *Encoder) AppendErrorAnswer(dst []byte, req *Request, code stun.ErrorCode, limit int) ([]byte, error) {
	size := HeaderSize + sizeErrorCode
	if size > limit {
		return dst, ErrTooLarge
	}
	withFP := req.Fingerprint && size+sizeFingerprint <= limit
	m := e.start(dst, stun.NewType(req.Method, stun.ClassErrorResponse), req.TxID)
	if err := (stun.ErrorCodeAttribute{Code: code}).AddTo(m); err != nil {
		return dst, err
	}
	return e.finish(dst, withFP)
}

// start resets the encoder's message to write into dst's spare capacity.
func (e *Encoder) start(dst []byte, t stun.MessageType, tx [stun.TransactionIDSize]byte) *stun.Message {
	m := &e.m
	m.Raw = dst[len(dst):]
	m.Attributes = m.Attributes[:0]
	m.Length = 0
	m.Type = t
	m.TransactionID = tx
	m.WriteHeader()
	return m
}

// finish adds the fingerprint if asked and returns dst extended by the
// message.
func (e *Encoder) finish(dst []byte, fingerprint bool) ([]byte, error) {
	m := &e.m
	if fingerprint {
		if err := stun.Fingerprint.AddTo(m); err != nil {
			return dst, err
		}
	}
	// m.Raw was built in dst's spare capacity, so when it fit this append
	// copies nothing anywhere new and allocates nothing.
	return append(dst, m.Raw...), nil
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
