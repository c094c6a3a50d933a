package wire

import (
	"crypto/sha1" //nolint:gosec // G505: MESSAGE-INTEGRITY is HMAC-SHA1 by definition (RFC 8489 section 14.5)
	"net/netip"

	"github.com/pion/stun/v3"
)

// Request is a decoded request to Usher: a probe to the balancer address or
// a keepalive to a server. Byte slices alias the datagram that was decoded
// and are valid only until that buffer is reused.
type Request struct {
	// TxID is the STUN transaction ID; the answer echoes it.
	TxID [stun.TransactionIDSize]byte
	// Method is stun.MethodBinding or stun.MethodAllocate.
	Method stun.Method
	// Session is the USHER-SESSION value, or, when HasSession is false, the
	// first eight bytes of the transaction ID (a stock STUN client's probe).
	Session SessionID
	// HasSession reports whether the request carried USHER-SESSION, which
	// makes it an Usher request rather than a stock STUN or TURN one.
	HasSession bool
	// Service is the USHER-SERVICE value; empty means the default service.
	Service []byte
	// Ticket is the USHER-TICKET value, if any.
	Ticket []byte
	// LostServer is the USHER-LOST-SERVER value; zero when absent.
	LostServer netip.AddrPort
	// ClientAddress is the USHER-CLIENT-ADDRESS value; zero when absent.
	// It is informational only and never used as a destination.
	ClientAddress netip.AddrPort
	// Fingerprint reports whether the request carried a valid FINGERPRINT.
	Fingerprint bool
	// Username, Realm and Nonce are the USERNAME, REALM and NONCE values of
	// a request with long-term credentials; nil when absent.
	Username, Realm, Nonce []byte
	// Integrity is the offset in the datagram of the MESSAGE-INTEGRITY
	// attribute's header, for VerifyIntegrity; zero when absent. Attributes
	// after it other than FINGERPRINT are ignored (RFC 8489, section 14.5).
	Integrity int
	// Unknown holds the first NumUnknown comprehension-required attributes
	// the request carries that Usher does not understand; DecodeRequest then
	// fails with ErrUnknownAttribute. Repeats are listed once.
	Unknown [MaxUnknown]stun.AttrType
	// NumUnknown is how many of Unknown are set.
	NumUnknown int
	// Size is the request's size on the wire in bytes.
	Size int
}

// Decoder decodes requests and responses, reusing its buffers so that
// decoding does not allocate. It is not safe for concurrent use.
type Decoder struct {
	m stun.Message
}

// DecodeRequest decodes the datagram b into r. It accepts Binding and TURN
// Allocate requests and fails, with an error matching one of the package's
// Err values, on anything else. A request carrying comprehension-required
// attributes it does not understand (see understood) is decoded all the
// same, lists them in r.Unknown, and fails with ErrUnknownAttribute, unless
// a graver error (a malformed Usher attribute, a bad fingerprint) comes
// first. r's slices alias b.
func (d *Decoder) DecodeRequest(b []byte, r *Request) error {
	m := &d.m
	if err := decodeRequestMessage(m, b); err != nil {
		return err
	}
	*r = Request{TxID: m.TransactionID, Method: m.Type.Method, Size: len(b)}
	copy(r.Session[:], r.TxID[:SessionLen])
	for _, a := range m.Attributes {
		if r.Integrity != 0 && a.Type != stun.AttrFingerprint {
			continue
		}
		switch a.Type {
		case AttrSession:
			if len(a.Value) != SessionLen {
				return ErrAttribute
			}
			r.Session = SessionID(a.Value)
			r.HasSession = true
		case AttrService:
			if len(a.Value) > MaxServiceLen {
				return ErrAttribute
			}
			r.Service = a.Value
		case AttrTicket:
			if len(a.Value) > MaxTicketLen {
				return ErrAttribute
			}
			r.Ticket = a.Value
		case AttrLostServer:
			ap, ok := xorAddress(a.Value, &m.TransactionID)
			if !ok {
				return ErrAttribute
			}
			r.LostServer = ap
		case AttrClientAddress:
			ap, ok := xorAddress(a.Value, &m.TransactionID)
			if !ok {
				return ErrAttribute
			}
			r.ClientAddress = ap
		case stun.AttrUsername:
			r.Username = a.Value
		case stun.AttrRealm:
			r.Realm = a.Value
		case stun.AttrNonce:
			r.Nonce = a.Value
		case stun.AttrMessageIntegrity:
			if len(a.Value) != sha1.Size {
				return ErrAttribute
			}
			// a.Value aliases b, so its offset is what its capacity lacks.
			r.Integrity = cap(b) - cap(a.Value) - 4
		case stun.AttrFingerprint:
			if err := stun.Fingerprint.Check(m); err != nil {
				return ErrFingerprint
			}
			r.Fingerprint = true
		default:
			if a.Type < 0x8000 && !understood(a.Type) {
				r.noteUnknown(a.Type)
			}
		}
	}
	if r.NumUnknown > 0 {
		return ErrUnknownAttribute
	}
	return nil
}

// decodeRequestMessage decodes the datagram b into m and checks that it is
// one well-formed STUN message, and a request of a method Usher answers.
func decodeRequestMessage(m *stun.Message, b []byte) error {
	// A STUN message starts with two zero bits (RFC 8489, section 5).
	if !stun.IsMessage(b) || b[0]&0xc0 != 0 {
		return ErrNotSTUN
	}
	m.Raw = b
	if err := m.Decode(); err != nil {
		return ErrNotSTUN
	}
	if len(b) != HeaderSize+int(m.Length) {
		// Trailing bytes after the message: not a well-formed datagram.
		return ErrNotSTUN
	}
	if m.Type.Class != stun.ClassRequest {
		return ErrNotRequest
	}
	if m.Type.Method != stun.MethodBinding && m.Type.Method != stun.MethodAllocate {
		return ErrMethod
	}
	return nil
}

// attrAccessToken is ACCESS-TOKEN (RFC 7635), which pion/stun does not name.
const attrAccessToken stun.AttrType = 0x001B

// noteUnknown adds t to r.Unknown unless it is there or the list is full.
func (r *Request) noteUnknown(t stun.AttrType) {
	for _, u := range r.Unknown[:r.NumUnknown] {
		if u == t {
			return
		}
	}
	if r.NumUnknown < MaxUnknown {
		r.Unknown[r.NumUnknown] = t
		r.NumUnknown++
	}
}

// understood reports whether the comprehension-required attribute t is one
// Usher accepts in a request without a 420. Besides those it reads and
// PADDING (RFC 5780), with which Usher's client makes room for the answer,
// these are the STUN attributes a client may send a STUN server (RFC 8489: the
// credentials and their variants, which a redirect does not need checked),
// the attributes of a TURN Allocate (RFC 8656 and RFC 7635's ACCESS-TOKEN),
// which the alternate server reads, and ICE's PRIORITY and USE-CANDIDATE
// (RFC 8445). CHANGE-REQUEST (RFC 5780) is deliberately absent: a 420 is
// how a NAT-discovery client learns that a server does not support it.
func understood(t stun.AttrType) bool {
	switch t {
	case stun.AttrUsername, stun.AttrMessageIntegrity, stun.AttrRealm, stun.AttrNonce,
		stun.AttrMessageIntegritySHA256, stun.AttrPasswordAlgorithm, stun.AttrUserhash,
		stun.AttrLifetime, stun.AttrRequestedTransport, stun.AttrDontFragment,
		stun.AttrEvenPort, stun.AttrReservationToken, stun.AttrRequestedAddressFamily,
		attrAccessToken, stun.AttrPriority, stun.AttrUseCandidate, stun.AttrPadding:
		return true
	}
	return false
}
