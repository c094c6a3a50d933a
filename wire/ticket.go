package wire

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/dchest/siphash"
)

// Ticket layout: a version byte, the expiry as big-endian uint32 Unix
// seconds, and a 16-byte SipHash-2-4-128 MAC over the version, the expiry,
// the session, the client's address and the server's address.
//
// A ticket is a stateless token the balancer mints for every probe and a
// server checks on every keepalive, much like a TCP SYN cookie, and like
// Linux's SYN cookies it is keyed SipHash: a pseudorandom function built
// for short inputs, about three times cheaper here than HMAC-SHA256 (which
// version 1 used; BenchmarkTicketMAC compares them). Forging one means
// guessing a 128-bit tag online before the expiry.
const (
	ticketVersion = 2
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
	k0, k1 uint64 // the SipHash key
	in     [1 + 4 + SessionLen + 2*(16+2)]byte
	sum    [TicketMACLen]byte
}

// ticketKeyLabel separates the ticket MAC's key from the other keys derived
// from the cluster's ticket key (the handoff's).
const ticketKeyLabel = "usher ticket mac v2"

// NewTicketer returns a Ticketer keyed with key, which should be 32 random
// bytes shared by every node of the cluster. The SipHash key is the first
// 16 bytes of SHA-256(label, key).
func NewTicketer(key []byte) *Ticketer {
	h := sha256.New()
	h.Write([]byte(ticketKeyLabel))
	h.Write(key)
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return &Ticketer{k0: binary.LittleEndian.Uint64(d[0:8]), k1: binary.LittleEndian.Uint64(d[8:16])}
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
	if subtle.ConstantTimeCompare(ticket[5:], t.compute(s, client, server, expiry)) != 1 {
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
	lo, hi := siphash.Hash128(t.k0, t.k1, b)
	binary.LittleEndian.PutUint64(t.sum[0:8], lo)
	binary.LittleEndian.PutUint64(t.sum[8:16], hi)
	return t.sum[:]
}

// appendAddr appends ap as 16 address bytes (IPv4 mapped) and a port.
func appendAddr(b []byte, ap netip.AddrPort) []byte {
	a := ap.Addr().As16()
	b = append(b, a[:]...)
	return binary.BigEndian.AppendUint16(b, ap.Port())
}
