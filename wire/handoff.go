package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"net/netip"
)

// A handoff carries a probe's finished answer from the leader to the
// assigned server, which sends it to the client from its own real address
// (respond_from = "server", the patent's claim 15: an answer from the server
// itself proves it is alive and reachable from the client).
//
// Layout, integers big-endian:
//
//	magic "USH1" (4) | client address (16, IPv4 mapped) | client port (2)
//	| sent, Unix seconds (4) | answer length (2) | answer (n)
//	| HMAC-SHA256 over all of the above, truncated (16)
//
// The magic's first byte (0x55) has its top bits set, so a handoff is never
// mistaken for a STUN message on a session endpoint. The MAC is keyed with
// the handoff key, HandoffKey of the farm's key, so a handoff MAC and a
// ticket MAC never serve for one another: a server relays only answers the
// leader sealed, so nobody else can make it send datagrams to an address of
// their choosing.
const (
	handoffHeader = 4 + 16 + 2 + 4 + 2
	// HandoffOverhead is what a handoff adds to the answer it carries.
	HandoffOverhead = handoffHeader + TicketMACLen
)

var handoffMagic = [4]byte{'U', 'S', 'H', '1'}

// Handoff errors.
var (
	// ErrNotHandoff means the datagram is not a handoff at all.
	ErrNotHandoff = errors.New("not a handoff")
	// ErrHandoffInvalid means a handoff is malformed or its MAC is wrong.
	ErrHandoffInvalid = errors.New("invalid handoff")
	// ErrHandoffStale means a valid handoff is too old to relay.
	ErrHandoffStale = errors.New("stale handoff")
)

// Handoff is a leader's request that a server send Answer to Client.
type Handoff struct {
	// Client is where the answer goes: the probe's source address.
	Client netip.AddrPort
	// Sent is when the leader sealed the handoff, in Unix seconds.
	Sent uint32
	// Answer is the STUN answer to relay, verbatim.
	Answer []byte
}

// handoffKeyLabel separates the handoff key from the farm key it is derived
// from.
const handoffKeyLabel = "usher handoff key v1"

// HandoffKey derives the key handoffs are sealed with from the farm's key:
// HMAC-SHA256(farmKey, "usher handoff key v1").
func HandoffKey(farmKey []byte) []byte {
	m := hmac.New(sha256.New, farmKey)
	m.Write([]byte(handoffKeyLabel))
	return m.Sum(nil)
}

// HandoffMAC returns the MAC of a handoff that starts b (after IsHandoff;
// nil if b is too short to hold one), which identifies it: a receiver that
// remembers the MACs it relayed can refuse a replay.
func HandoffMAC(b []byte) []byte {
	if len(b) < HandoffOverhead {
		return nil
	}
	n := int(binary.BigEndian.Uint16(b[handoffHeader-2 : handoffHeader]))
	if len(b) != HandoffOverhead+n {
		return nil
	}
	return b[handoffHeader+n:]
}

// IsHandoff reports whether b starts like a handoff.
func IsHandoff(b []byte) bool {
	return len(b) >= len(handoffMagic) && [4]byte(b[:4]) == handoffMagic
}

// Sealer seals and opens handoffs under one key, reusing its buffers. It is
// not safe for concurrent use.
type Sealer struct {
	mac hash.Hash
	sum [sha256.Size]byte
}

// NewSealer returns a Sealer keyed with key (HandoffKey of the farm's key).
func NewSealer(key []byte) *Sealer {
	return &Sealer{mac: hmac.New(sha256.New, key)}
}

// AppendHandoff appends the sealed handoff h to dst.
func (s *Sealer) AppendHandoff(dst []byte, h *Handoff) ([]byte, error) {
	if len(h.Answer) > 0xffff {
		return dst, ErrTooLarge
	}
	start := len(dst)
	dst = append(dst, handoffMagic[:]...)
	a := h.Client.Addr().As16()
	dst = append(dst, a[:]...)
	dst = binary.BigEndian.AppendUint16(dst, h.Client.Port())
	dst = binary.BigEndian.AppendUint32(dst, h.Sent)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(h.Answer)))
	dst = append(dst, h.Answer...)
	return append(dst, s.seal(dst[start:])...), nil
}

// OpenHandoff checks the handoff b, sealed at most maxAge seconds before now
// (Unix seconds; one of clock skew is allowed the other way), and fills h.
// h.Answer aliases b.
func (s *Sealer) OpenHandoff(b []byte, h *Handoff, now, maxAge uint32) error {
	if !IsHandoff(b) {
		return ErrNotHandoff
	}
	mac := HandoffMAC(b)
	if mac == nil {
		return ErrHandoffInvalid
	}
	n := len(b) - HandoffOverhead
	if !hmac.Equal(mac, s.seal(b[:handoffHeader+n])) {
		return ErrHandoffInvalid
	}
	addr := netip.AddrFrom16([16]byte(b[4:20])).Unmap()
	*h = Handoff{
		Client: netip.AddrPortFrom(addr, binary.BigEndian.Uint16(b[20:22])),
		Sent:   binary.BigEndian.Uint32(b[22:26]),
		Answer: b[handoffHeader : handoffHeader+n],
	}
	if h.Sent > now+1 || now-h.Sent > maxAge {
		return ErrHandoffStale
	}
	return nil
}

// seal returns the truncated MAC of b, backed by s's buffer.
func (s *Sealer) seal(b []byte) []byte {
	s.mac.Reset()
	s.mac.Write(b)
	return s.mac.Sum(s.sum[:0])[:TicketMACLen]
}
