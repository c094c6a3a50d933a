package wire

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // G505: MESSAGE-INTEGRITY is HMAC-SHA1 by definition (RFC 8489 section 14.5)
	"encoding/binary"

	"github.com/pion/stun/v3"
)

// Long-term credentials (RFC 8489, section 9.2). With turn_auth set, the
// balancer answers a stock TURN Allocate without valid credentials with a
// 401 (or 438 for a stale nonce) carrying REALM and NONCE
// (AppendAuthError), checks the retry's MESSAGE-INTEGRITY (VerifyIntegrity)
// and signs its 300 (AppendSignedRedirect). The credential lookup, the
// nonce and the clock belong to the caller; this file only reads and
// writes the attributes.

// sizeIntegrity is the size of MESSAGE-INTEGRITY, header included.
const sizeIntegrity = 4 + sha1.Size

// MaxRealmLen and MaxNonceLen bound REALM and NONCE (RFC 8489, sections
// 14.9 and 14.10: fewer than 128 characters, so at most 763 bytes).
const (
	MaxRealmLen = 763
	MaxNonceLen = 763
)

// VerifyIntegrity reports whether the request b, decoded into r, carries a
// MESSAGE-INTEGRITY that is the HMAC-SHA1 under key of the message up to
// it, with the header's length counting up to and including the attribute
// (RFC 8489, section 14.5). key is the long-term credential key,
// MD5(username ":" realm ":" password). The comparison takes constant time.
func VerifyIntegrity(b []byte, r *Request, key []byte) bool {
	off := r.Integrity
	if off < HeaderSize || off+sizeIntegrity > len(b) {
		return false
	}
	var hdr [HeaderSize]byte
	copy(hdr[:], b[:HeaderSize])
	binary.BigEndian.PutUint16(hdr[2:4], uint16(off+sizeIntegrity-HeaderSize))
	mac := hmac.New(sha1.New, key)
	mac.Write(hdr[:])
	mac.Write(b[HeaderSize:off])
	var sum [sha1.Size]byte
	return hmac.Equal(mac.Sum(sum[:0]), b[off+4:off+sizeIntegrity])
}

// AppendAuthError appends to dst the error answer code (401 Unauthorized or
// 438 Stale Nonce) to req, with ERROR-CODE, REALM, NONCE and FINGERPRINT if
// the request had one and it fits, no larger than limit bytes. REALM and
// NONCE are required: if they do not fit, or are longer than MaxRealmLen or
// MaxNonceLen, the result is dst unchanged and ErrTooLarge.
func (e *Encoder) AppendAuthError(dst []byte, req *Request, code stun.ErrorCode, realm, nonce []byte, limit int) ([]byte, error) {
	if len(realm) > MaxRealmLen || len(nonce) > MaxNonceLen {
		return dst, ErrTooLarge
	}
	if !validErrorCode(code) {
		return dst, errErrorCode
	}
	size := HeaderSize + sizeErrorCode + 4 + padded(len(realm)) + 4 + padded(len(nonce))
	if size > limit {
		return dst, ErrTooLarge
	}
	withFP := req.Fingerprint && size+sizeFingerprint <= limit
	if withFP {
		size += sizeFingerprint
	}
	out, b := extend(dst, size)
	n := putHeader(b, stun.NewType(req.Method, stun.ClassErrorResponse), size-HeaderSize, &req.TxID)
	n = putErrorCode(b, n, code)
	n = putBytes(b, n, stun.AttrRealm, realm)
	n = putBytes(b, n, stun.AttrNonce, nonce)
	if withFP {
		putFingerprint(b, n)
	}
	return out, nil
}

// AppendSignedRedirect is AppendRedirect for a request that passed the
// long-term credential check: the redirect ends with MESSAGE-INTEGRITY
// under key, then FINGERPRINT if the request had one, and both count
// against limit. MESSAGE-INTEGRITY is required: if it does not fit beside
// the minimal redirect the result is dst unchanged and ErrTooLarge.
func (e *Encoder) AppendSignedRedirect(dst []byte, req *Request, r *Redirect, key []byte, limit int) ([]byte, error) {
	unsigned := *req
	unsigned.Fingerprint = false
	room := limit - sizeIntegrity
	withFP := req.Fingerprint && room-sizeFingerprint >= HeaderSize+sizeErrorCode+addrSize(r.Server)
	if withFP {
		room -= sizeFingerprint
	}
	start := len(dst)
	out, err := e.AppendRedirect(dst, &unsigned, r, room)
	if err != nil {
		return dst, err
	}
	return appendIntegrity(out, start, key, withFP), nil
}

// appendIntegrity appends MESSAGE-INTEGRITY under key, and then FINGERPRINT
// when fp is set, to the message that starts at dst[start:], fixing its
// header's length at each step.
func appendIntegrity(dst []byte, start int, key []byte, fp bool) []byte {
	n := len(dst) - start
	size := n + sizeIntegrity
	if fp {
		size += sizeFingerprint
	}
	out, _ := extend(dst, size-n)
	b := out[start:]
	binary.BigEndian.PutUint16(b[2:4], uint16(n+sizeIntegrity-HeaderSize))
	mac := hmac.New(sha1.New, key)
	mac.Write(b[:n])
	v := putAttrHeader(b, n, stun.AttrMessageIntegrity, sha1.Size)
	mac.Sum(b[v:v])
	if fp {
		binary.BigEndian.PutUint16(b[2:4], uint16(size-HeaderSize))
		putFingerprint(b, n+sizeIntegrity)
	}
	return out
}
