package wire

import (
	"errors"

	"github.com/pion/stun/v3"
)

// Usher's STUN attributes. All are in the comprehension-optional range
// (0x8000-0xFFFF), so a STUN implementation that does not know them ignores
// them.
const (
	// AttrService names the service a probe asks for (UTF-8, at most
	// MaxServiceLen bytes). Absent means the default service.
	AttrService stun.AttrType = 0xC0A0
	// AttrSession carries the client's 8-byte session identifier, chosen at
	// random once and kept across re-probes and on every keepalive.
	AttrSession stun.AttrType = 0xC0A1
	// AttrLostServer names, in XOR-MAPPED-ADDRESS encoding, the server the
	// client has just lost.
	AttrLostServer stun.AttrType = 0xC0A2
	// AttrTicket carries at most MaxTicketLen opaque bytes issued with an
	// assignment and presented to the assigned server on every keepalive.
	AttrTicket stun.AttrType = 0xC0A3
	// AttrTimers carries two big-endian uint32 values: the keepalive interval
	// and the declare-dead-after timeout, both in milliseconds.
	AttrTimers stun.AttrType = 0xC0A4
	// AttrBackup names, in XOR-MAPPED-ADDRESS encoding, a server to try
	// directly when the balancer address is silent. It may repeat.
	AttrBackup stun.AttrType = 0xC0A5
	// AttrTerm carries the big-endian uint64 leadership term of the answer.
	AttrTerm stun.AttrType = 0xC0A6
	// AttrClientAddress carries, in XOR-MAPPED-ADDRESS encoding, the client's
	// own idea of its address. It is informational and never a destination.
	AttrClientAddress stun.AttrType = 0xC0A7
	// AttrDrain is empty. In a keepalive answer it means the server is
	// draining and the client should move before its session's next pause.
	AttrDrain stun.AttrType = 0xC0A8
	// AttrRetryAfter carries a big-endian uint32: how many milliseconds
	// the client should wait before it probes again. It comes with an
	// overload answer (see OverloadCode).
	AttrRetryAfter stun.AttrType = 0xC0A9
)

// Limits of Usher's attribute values.
const (
	// SessionLen is the size of a session identifier.
	SessionLen = 8
	// MaxServiceLen is the longest service name.
	MaxServiceLen = 64
	// MaxTicketLen is the longest ticket.
	MaxTicketLen = 64
	// MaxDomainLen is the longest ALTERNATE-DOMAIN a redirect carries
	// (RFC 8489 §14.16 allows less than 255 bytes).
	MaxDomainLen = 254
	// MaxBackups is the most USHER-BACKUP attributes an answer carries.
	MaxBackups = 4
	// MaxUnknown is the most unknown comprehension-required attributes a
	// decoded request reports and a 420 answer lists.
	MaxUnknown = 4
	// HeaderSize is the size of a STUN message header.
	HeaderSize = 20
)

// Recommended padded sizes of the requests the client library sends. An
// answer is never larger than the request that caused it, so the client pads
// its requests with PADDING to leave room for everything it wants back.
const (
	// ProbeSize leaves room for a redirect to an IPv6 server with a full
	// ticket, the timers, the term and a fingerprint, plus backups.
	ProbeSize = 256
	// KeepaliveSize leaves room for a keepalive answer with an IPv6
	// XOR-MAPPED-ADDRESS, USHER-DRAIN and a fingerprint.
	KeepaliveSize = 64
)

// SessionID identifies one client session. The client picks it at random.
type SessionID [SessionLen]byte

// Errors returned by the decoders and encoders. The probe path counts drops
// by these causes, so they are distinct values that errors.Is can match.
var (
	// ErrNotSTUN means the datagram is not a STUN message.
	ErrNotSTUN = errors.New("not a stun message")
	// ErrNotRequest means a STUN message that is not a request arrived where
	// only requests are expected.
	ErrNotRequest = errors.New("not a stun request")
	// ErrMethod means a request of a method Usher does not answer.
	ErrMethod = errors.New("unsupported stun method")
	// ErrAttribute means one of Usher's attributes is malformed.
	ErrAttribute = errors.New("malformed usher attribute")
	// ErrUnknownAttribute means a request carries comprehension-required
	// attributes (type below 0x8000) that Usher does not understand. The
	// request is otherwise decoded, and Request.Unknown lists them; RFC
	// 8489 section 7.3.1 asks for a 420 answer (AppendUnknownAttributes).
	ErrUnknownAttribute = errors.New("unknown comprehension-required attribute")
	// ErrFingerprint means the message's FINGERPRINT does not match.
	ErrFingerprint = errors.New("bad fingerprint")
	// ErrTooLarge means no permitted answer fits the size limit.
	ErrTooLarge = errors.New("answer larger than allowed")
	// ErrNoServer means a redirect names no valid server address.
	ErrNoServer = errors.New("redirect names no server")
	// ErrNotResponse means a message that is not a response arrived where a
	// response was expected.
	ErrNotResponse = errors.New("not a stun response")
)
