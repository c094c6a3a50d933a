package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"net/netip"
)

// Ticket layout: a version byte, the expiry as big-endian uint32 Unix
// seconds, and the first TicketMACLen bytes of an HMAC-SHA256 over the
// version, the expiry, the session, the client's address and the server's
// address.
const (
	ticketVersion = 1
	// TicketMACLen is the length of a ticket's truncated MAC.
	TicketMACLen = 16
	// TicketLen is the length of a ticket.
	TicketLen = 1 + 4 + TicketMACLen
)

// Ticket errors, returned by Ticketer.Verify.
var (
	// ErrTicketInvalid means the ticket is malformed or its MAC does not
	// match the session and addresses it is presented with.
	ErrTicketInvalid = errors.New("invalid ticket")
	// ErrTicketExpired means the ticket was valid but its expiry has passed.
	ErrTicketExpired = errors.New("ticket expired")
)

// Ticketer issues and checks tickets under one key. Tickets bind a session
// to the client address the balancer saw and to the server it was assigned,
// until an expiry, so a server can refuse sessions the balancer did not
// send it. A Ticketer reuses its buffers and is not safe for concurrent use.
type Ticketer struct {
	mac hash.Hash
	in  [1 + 4 + SessionLen + 2*(16+2)]byte
	sum [sha256.Size]byte
}

// NewTicketer returns a Ticketer keyed with key, which should be 32 random
// bytes shared by every node of the cluster.
func NewTicketer(key []byte) *Ticketer {
	return &Ticketer{mac: hmac.New(sha256.New, key)}
}

// Append appends to dst a ticket for session s of the client at client
// assigned to server, valid until expiry (Unix seconds).
func (t *Ticketer) Append(dst []byte, s SessionID, client, server netip.AddrPort, expiry uint32) []byte {
	dst = append(dst, ticketVersion, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(dst[len(dst)-4:], expiry)
	return append(dst, t.compute(s, client, server, expiry)...)
}

// Verify checks ticket for session s, presented by client to server at now
// (Unix seconds).
func (t *Ticketer) Verify(ticket []byte, s SessionID, client, server netip.AddrPort, now uint32) error {
	if len(ticket) != TicketLen || ticket[0] != ticketVersion {
		return ErrTicketInvalid
	}
	expiry := binary.BigEndian.Uint32(ticket[1:5])
	if !hmac.Equal(ticket[5:], t.compute(s, client, server, expiry)) {
		return ErrTicketInvalid
	}
	if now > expiry {
		return ErrTicketExpired
	}
	return nil
}

// compute returns the truncated MAC, backed by t's buffer.
func (t *Ticketer) compute(s SessionID, client, server netip.AddrPort, expiry uint32) []byte {
	b := t.in[:0]
	b = append(b, ticketVersion)
	b = binary.BigEndian.AppendUint32(b, expiry)
	b = append(b, s[:]...)
	b = appendAddr(b, client)
	b = appendAddr(b, server)
	t.mac.Reset()
	t.mac.Write(b)
	return t.mac.Sum(t.sum[:0])[:TicketMACLen]
}

// appendAddr appends ap as 16 address bytes (IPv4 mapped) and a port.
func appendAddr(b []byte, ap netip.AddrPort) []byte {
	a := ap.Addr().As16()
	b = append(b, a[:]...)
	return binary.BigEndian.AppendUint16(b, ap.Port())
}
