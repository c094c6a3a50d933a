package wire

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/pion/stun/v3"
)

// The reference encoders are the answer encoders as they were before the
// answers were written by hand: the same size rule, but every attribute added
// through pion/stun. The tests hold the hand-written encoders to producing
// exactly their bytes and errors, and the benchmarks measure the gain.

// refEncoder builds answers with pion/stun, reusing its message.
type refEncoder struct {
	// Encoder lends its pion-based start and finish, which the client's
	// requests are still built with.
	Encoder
}

// refAppendRedirect is AppendRedirect built with pion/stun.
func (e *refEncoder) refAppendRedirect(dst []byte, req *Request, r *Redirect, limit int) ([]byte, error) {
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
	var withFP, withTerm, withTicket, withTimers bool
	backups := 0
	if !req.HasSession {
		withFP = req.Fingerprint && size+sizeFingerprint <= limit
	} else {
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
	}

	m := e.start(dst, stun.NewType(req.Method, stun.ClassErrorResponse), req.TxID)
	if err := (stun.ErrorCodeAttribute{Code: stun.CodeTryAlternate}).AddTo(m); err != nil {
		return dst, err
	}
	if err := refAddMappedAddress(m, stun.AttrAlternateServer, r.Server); err != nil {
		return dst, err
	}
	if r.Domain != "" {
		m.Add(stun.AttrAlternateDomain, []byte(r.Domain))
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
		if err := refAddXORAddress(m, AttrBackup, b); err != nil {
			return dst, err
		}
	}
	return e.finish(dst, withFP)
}

// refAppendKeepaliveAnswer is AppendKeepaliveAnswer built with pion/stun.
func (e *refEncoder) refAppendKeepaliveAnswer(dst []byte, req *Request, a *KeepaliveAnswer, limit int) ([]byte, error) {
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
	if err := refAddXORAddress(m, stun.AttrXORMappedAddress, a.Mapped); err != nil {
		return dst, err
	}
	if withDrain {
		m.Add(AttrDrain, nil)
	}
	return e.finish(dst, withFP)
}

// refAppendErrorAnswer is AppendErrorAnswer built with pion/stun.
func (e *refEncoder) refAppendErrorAnswer(dst []byte, req *Request, code stun.ErrorCode, limit int) ([]byte, error) {
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

// refAddXORAddress appends attribute t holding ap in XOR-MAPPED-ADDRESS
// encoding, with pion/stun.
func refAddXORAddress(m *stun.Message, t stun.AttrType, ap netip.AddrPort) error {
	var buf [net.IPv6len]byte
	a := stun.XORMappedAddress{IP: ipOf(&buf, ap.Addr()), Port: int(ap.Port())}
	return a.AddToAs(m, t)
}

// refAddMappedAddress appends attribute t holding ap in MAPPED-ADDRESS
// encoding, with pion/stun.
func refAddMappedAddress(m *stun.Message, t stun.AttrType, ap netip.AddrPort) error {
	var buf [net.IPv6len]byte
	a := stun.MappedAddress{IP: ipOf(&buf, ap.Addr()), Port: int(ap.Port())}
	return a.AddToAs(m, t)
}
