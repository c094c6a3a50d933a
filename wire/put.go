package wire

import (
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/pion/stun/v3"
)

// The answers (a redirect, a keepalive answer, an error answer) are written
// by hand. They are the hot path: the leader encodes one redirect per probe
// and every server one keepalive answer per client interval, and building
// them through a pion/stun Message, attribute by attribute, took about two
// fifths of the probe path's CPU. The size rule already knows each answer's
// exact size before a byte is written, so the functions below write the
// header and every attribute straight into place with encoding/binary:
// nothing is grown, copied twice or checked twice.
//
// pion/stun stays the authority on the format. It still decodes every
// message, builds the client's requests, and supplies the type numbers and
// the fingerprint function; and the tests build every answer a second time
// with pion (reference_test.go) and require the same bytes and errors, then
// decode the answer and check its fingerprint with pion.

// magicCookie is the STUN magic cookie (RFC 8489, section 5), which pion/stun
// does not export.
const magicCookie = 0x2112A442

// extend returns dst extended by n bytes, and those n bytes. It allocates
// only if dst has less than n bytes of spare capacity.
func extend(dst []byte, n int) (out, msg []byte) {
	out = slices.Grow(dst, n)[:len(dst)+n]
	return out, out[len(dst):]
}

// putHeader writes at the start of b the header of a message of type t
// whose attributes take length bytes, and returns the offset of the first
// attribute.
func putHeader(b []byte, t stun.MessageType, length int, tx *[stun.TransactionIDSize]byte) int {
	_ = b[HeaderSize-1]
	binary.BigEndian.PutUint16(b[0:2], t.Value())
	binary.BigEndian.PutUint16(b[2:4], uint16(length))
	binary.BigEndian.PutUint32(b[4:8], magicCookie)
	copy(b[8:HeaderSize], tx[:])
	return HeaderSize
}

// putAttrHeader writes at b[n:] the header of attribute t with a value of
// length bytes, and returns the offset of the value.
func putAttrHeader(b []byte, n int, t stun.AttrType, length int) int {
	binary.BigEndian.PutUint16(b[n:n+2], t.Value())
	binary.BigEndian.PutUint16(b[n+2:n+4], uint16(length))
	return n + 4
}

// putBytes writes attribute t with value v at b[n:], zero padded to the
// STUN alignment of four bytes, and returns the offset after it.
func putBytes[T ~string | ~[]byte](b []byte, n int, t stun.AttrType, v T) int {
	n = putAttrHeader(b, n, t, len(v))
	n += copy(b[n:], v)
	for ; n&3 != 0; n++ {
		b[n] = 0
	}
	return n
}

// putUint64 writes attribute t with the big-endian value v at b[n:] and
// returns the offset after it.
func putUint64(b []byte, n int, t stun.AttrType, v uint64) int {
	n = putAttrHeader(b, n, t, 8)
	binary.BigEndian.PutUint64(b[n:n+8], v)
	return n + 8
}

// putUint32 writes attribute t with the big-endian value v at b[n:] and
// returns the offset after it.
func putUint32(b []byte, n int, t stun.AttrType, v uint32) int {
	n = putAttrHeader(b, n, t, 4)
	binary.BigEndian.PutUint32(b[n:n+4], v)
	return n + 4
}

// putAttrTypes writes attribute t holding the 16-bit attribute types ts
// (the UNKNOWN-ATTRIBUTES encoding) at b[n:], zero padded to the STUN
// alignment, and returns the offset after it.
func putAttrTypes(b []byte, n int, t stun.AttrType, ts []stun.AttrType) int {
	n = putAttrHeader(b, n, t, 2*len(ts))
	for _, u := range ts {
		binary.BigEndian.PutUint16(b[n:n+2], u.Value())
		n += 2
	}
	for ; n&3 != 0; n++ {
		b[n] = 0
	}
	return n
}

// putUint32Pair writes attribute t with the big-endian values x then y at
// b[n:] and returns the offset after it.
func putUint32Pair(b []byte, n int, t stun.AttrType, x, y uint32) int {
	n = putAttrHeader(b, n, t, 8)
	binary.BigEndian.PutUint32(b[n:n+4], x)
	binary.BigEndian.PutUint32(b[n+4:n+8], y)
	return n + 8
}

// validErrorCode reports whether ERROR-CODE can carry code: a class
// (code/100) of one byte and a number (code%100) of at least zero, the same
// range pion/stun accepts.
func validErrorCode(code stun.ErrorCode) bool {
	return code >= 0 && code/100 <= 0xff
}

// putErrorCode writes at b[n:] an ERROR-CODE attribute holding code, which
// validErrorCode accepts, without a reason phrase, and returns the offset
// after it. The value is two reserved zero bytes, the class, the number.
func putErrorCode(b []byte, n int, code stun.ErrorCode) int {
	n = putAttrHeader(b, n, stun.AttrErrorCode, 4)
	v := b[n : n+4]
	v[0], v[1] = 0, 0
	v[2] = byte(code / 100)
	v[3] = byte(code % 100)
	return n + 4
}

// Address families of the address attributes.
const (
	familyIPv4 = 0x01
	familyIPv6 = 0x02
)

// putMappedAddress writes attribute t holding ap in MAPPED-ADDRESS encoding,
// which is what ALTERNATE-SERVER uses, at b[n:] and returns the offset after
// it. An IPv4-mapped IPv6 address is written as IPv4; an invalid one as the
// IPv6 unspecified address, as pion/stun would.
func putMappedAddress(b []byte, n int, t stun.AttrType, ap netip.AddrPort) int {
	a := ap.Addr().Unmap()
	if a.Is4() {
		n = putAttrHeader(b, n, t, 8)
		v := b[n : n+8]
		v[0], v[1] = 0, familyIPv4
		binary.BigEndian.PutUint16(v[2:4], ap.Port())
		ip := a.As4()
		copy(v[4:8], ip[:])
		return n + 8
	}
	n = putAttrHeader(b, n, t, 20)
	v := b[n : n+20]
	v[0], v[1] = 0, familyIPv6
	binary.BigEndian.PutUint16(v[2:4], ap.Port())
	ip := a.As16()
	copy(v[4:20], ip[:])
	return n + 20
}

// putXORAddress writes attribute t holding ap in XOR-MAPPED-ADDRESS encoding
// for a message with transaction ID tx at b[n:] and returns the offset after
// it: the port is XORed with the cookie's high half, an IPv4 address with
// the cookie, an IPv6 address with the cookie followed by tx. Addresses are
// written as putMappedAddress writes them.
func putXORAddress(b []byte, n int, t stun.AttrType, ap netip.AddrPort, tx *[stun.TransactionIDSize]byte) int {
	a := ap.Addr().Unmap()
	port := ap.Port() ^ magicCookie>>16
	if a.Is4() {
		n = putAttrHeader(b, n, t, 8)
		v := b[n : n+8]
		v[0], v[1] = 0, familyIPv4
		binary.BigEndian.PutUint16(v[2:4], port)
		ip := a.As4()
		binary.BigEndian.PutUint32(v[4:8], binary.BigEndian.Uint32(ip[:])^magicCookie)
		return n + 8
	}
	n = putAttrHeader(b, n, t, 20)
	v := b[n : n+20]
	v[0], v[1] = 0, familyIPv6
	binary.BigEndian.PutUint16(v[2:4], port)
	ip := a.As16()
	hi := binary.BigEndian.Uint64(ip[0:8]) ^ (magicCookie<<32 | uint64(binary.BigEndian.Uint32(tx[0:4])))
	lo := binary.BigEndian.Uint64(ip[8:16]) ^ binary.BigEndian.Uint64(tx[4:12])
	binary.BigEndian.PutUint64(v[4:12], hi)
	binary.BigEndian.PutUint64(v[12:20], lo)
	return n + 20
}

// putFingerprint writes at b[n:] the FINGERPRINT of the message b[:n], whose
// header's length must already count the FINGERPRINT attribute. It is always
// the message's last attribute.
func putFingerprint(b []byte, n int) {
	crc := stun.FingerprintValue(b[:n])
	n = putAttrHeader(b, n, stun.AttrFingerprint, 4)
	binary.BigEndian.PutUint32(b[n:n+4], crc)
}
