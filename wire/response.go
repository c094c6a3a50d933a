package wire

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/pion/stun/v3"
)

// Response is a decoded answer as a client sees it: a redirect, a keepalive
// answer or an error. Ticket and Domain alias the decoded datagram.
type Response struct {
	// TxID is the transaction ID the answer echoes.
	TxID [stun.TransactionIDSize]byte
	// Method is the request's method.
	Method stun.Method
	// Success reports a success response; otherwise Code holds the error.
	Success bool
	// Code is the ERROR-CODE of an error response (300 for a redirect).
	Code stun.ErrorCode
	// Server is the ALTERNATE-SERVER of a redirect.
	Server netip.AddrPort
	// Domain is the ALTERNATE-DOMAIN of a redirect; nil when absent. It
	// aliases the decoded datagram.
	Domain []byte
	// Mapped is the XOR-MAPPED-ADDRESS of a keepalive answer.
	Mapped netip.AddrPort
	// Ticket is the USHER-TICKET of a redirect.
	Ticket []byte
	// Interval and DeadAfter are the USHER-TIMERS values; zero when absent.
	Interval, DeadAfter time.Duration
	// Term is the USHER-TERM value; zero when absent.
	Term uint64
	// Backups holds the first NumBackups USHER-BACKUP addresses.
	Backups [MaxBackups]netip.AddrPort
	// NumBackups is how many of Backups are set.
	NumBackups int
	// Drain reports USHER-DRAIN.
	Drain bool
	// RetryAfter is the USHER-RETRY-AFTER of an overload answer: how long
	// to wait before probing again; zero when absent.
	RetryAfter time.Duration
	// Unknown holds the first NumUnknown attribute types of a 420 answer's
	// UNKNOWN-ATTRIBUTES.
	Unknown [MaxUnknown]stun.AttrType
	// NumUnknown is how many of Unknown are set.
	NumUnknown int
	// Size is the answer's size on the wire in bytes.
	Size int
}

// DecodeResponse decodes the datagram b into r. r.Ticket and r.Domain
// alias b.
func (d *Decoder) DecodeResponse(b []byte, r *Response) error {
	// A STUN message starts with two zero bits (RFC 8489, section 5).
	if !stun.IsMessage(b) || b[0]&0xc0 != 0 {
		return ErrNotSTUN
	}
	m := &d.m
	m.Raw = b
	if err := m.Decode(); err != nil || len(b) != HeaderSize+int(m.Length) {
		return ErrNotSTUN
	}
	switch m.Type.Class {
	case stun.ClassSuccessResponse, stun.ClassErrorResponse:
	default:
		return ErrNotResponse
	}
	*r = Response{
		TxID:    m.TransactionID,
		Method:  m.Type.Method,
		Success: m.Type.Class == stun.ClassSuccessResponse,
		Size:    len(b),
	}
	for _, a := range m.Attributes {
		var ok bool
		switch a.Type {
		case stun.AttrErrorCode:
			if len(a.Value) < 4 {
				return ErrAttribute
			}
			r.Code = stun.ErrorCode(int(a.Value[2]&0x7)*100 + int(a.Value[3]))
			ok = true
		case stun.AttrAlternateServer:
			r.Server, ok = mappedAddress(a.Value)
		case stun.AttrAlternateDomain:
			r.Domain, ok = a.Value, len(a.Value) > 0 && len(a.Value) <= MaxDomainLen
		case stun.AttrXORMappedAddress:
			r.Mapped, ok = xorAddress(a.Value, &m.TransactionID)
		case AttrTicket:
			r.Ticket, ok = a.Value, len(a.Value) <= MaxTicketLen
		case AttrTimers:
			if ok = len(a.Value) == 8; ok {
				r.Interval = time.Duration(binary.BigEndian.Uint32(a.Value[0:4])) * time.Millisecond
				r.DeadAfter = time.Duration(binary.BigEndian.Uint32(a.Value[4:8])) * time.Millisecond
			}
		case AttrTerm:
			if ok = len(a.Value) == 8; ok {
				r.Term = binary.BigEndian.Uint64(a.Value)
			}
		case AttrBackup:
			var ap netip.AddrPort
			if ap, ok = xorAddress(a.Value, &m.TransactionID); ok && r.NumBackups < MaxBackups {
				r.Backups[r.NumBackups] = ap
				r.NumBackups++
			}
		case AttrRetryAfter:
			if ok = len(a.Value) == 4; ok {
				r.RetryAfter = time.Duration(binary.BigEndian.Uint32(a.Value)) * time.Millisecond
			}
		case stun.AttrUnknownAttributes:
			if ok = len(a.Value)%2 == 0; ok {
				for i := 0; i+2 <= len(a.Value) && r.NumUnknown < MaxUnknown; i += 2 {
					r.Unknown[r.NumUnknown] = stun.AttrType(binary.BigEndian.Uint16(a.Value[i:]))
					r.NumUnknown++
				}
			}
		case AttrDrain:
			r.Drain, ok = true, len(a.Value) == 0
		case stun.AttrFingerprint:
			ok = stun.Fingerprint.Check(m) == nil
			if !ok {
				return ErrFingerprint
			}
		default:
			ok = true
		}
		if !ok {
			return ErrAttribute
		}
	}
	return nil
}
