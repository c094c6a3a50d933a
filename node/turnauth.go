package node

import (
	"crypto/hmac"
	"crypto/md5" //nolint:gosec // G501: RFC 8489 long-term credentials define the key as MD5(user:realm:password)
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // G505: MESSAGE-INTEGRITY and TURN REST passwords are HMAC-SHA1 by definition
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/wire"
)

// Strict mode (the turn_auth block). RFC 5389 allowed a 300 Try Alternate
// only in answer to an authenticated request, signed with
// MESSAGE-INTEGRITY; RFC 8489 relaxed that, but some TURN clients still
// follow a redirect only when it is signed. With turn_auth set, the
// balancer address answers a stock TURN Allocate (one without
// USHER-SESSION) as a TURN server with long-term credentials would: 401
// with REALM and a NONCE when it carries no valid credentials, 438 with a
// fresh NONCE when its nonce has expired, and the 300 signed with
// MESSAGE-INTEGRITY once they check. Usher probes and stock Binding
// requests are answered as without it.

// TURNAuthConfig is the turn_auth block: the long-term credentials a stock
// TURN Allocate must present before the balancer redirects it. Realm is
// required, and at least one of the shared secret (secret or secret_file)
// and users.
type TURNAuthConfig struct {
	// Realm is the REALM sent with every 401 (turn_auth.realm).
	Realm string `hcl:"realm,optional"`
	// Secret is coturn's TURN REST shared secret (static-auth-secret): a
	// username is "<unix expiry>[:<user>]" and its password
	// base64(HMAC-SHA1(secret, username)) (turn_auth.secret).
	// SecretFile names a file (mode 0600 or stricter) holding it instead
	// (turn_auth.secret_file); it is read once, when the agent starts.
	Secret     string `hcl:"secret,optional"`
	SecretFile string `hcl:"secret_file,optional"`
	// Users are static long-term users, name to password
	// (turn_auth.users).
	Users map[string]string `hcl:"users,optional"`
}

// enabled reports whether any key of the block is set.
func (t *TURNAuthConfig) enabled() bool {
	return t.Realm != "" || t.Secret != "" || t.SecretFile != "" || len(t.Users) > 0
}

// maxRealmLen is the longest realm accepted: longer ones would make the
// 401 to a small Allocate larger than stock_amplification allows.
const maxRealmLen = 64

// build returns the TURNAuth the block describes, nil when it is not set
// or is refused (bad has been told why); secret_file is read here.
func (t *TURNAuthConfig) build(bad func(key, value, problem string)) *TURNAuth {
	if !t.enabled() {
		return nil
	}
	ok := true
	if t.Realm == "" || len(t.Realm) > maxRealmLen {
		bad("turn_auth.realm", t.Realm, fmt.Sprintf("must be set, at most %d bytes, when the turn_auth block is", maxRealmLen))
		ok = false
	}
	secret, _ := readSecret("turn_auth.secret", t.Secret, "turn_auth.secret_file", t.SecretFile, bad)
	if t.SecretFile != "" && secret == "" {
		ok = false // readSecret said why
	}
	if secret == "" && len(t.Users) == 0 && t.SecretFile == "" {
		bad("turn_auth.secret", "", "must be set, or secret_file or users, when the turn_auth block is")
		ok = false
	}
	for name, pw := range t.Users {
		if name == "" || pw == "" {
			bad("turn_auth.users", name, "needs a non-empty name and password")
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return NewTURNAuth(t.Realm, []byte(secret), t.Users)
}

// nonceLifetime is how long a NONCE the balancer hands out stays valid.
const nonceLifetime = 10 * time.Minute

// Sizes of a nonce: a big-endian uint32 expiry (Unix seconds) and a MAC,
// base64 (URL alphabet, no padding) encoded.
const (
	nonceMACLen = 8
	nonceRawLen = 4 + nonceMACLen
	nonceLen    = (nonceRawLen*8 + 5) / 6
)

// TURNAuth checks the long-term credentials of stock TURN Allocate
// requests (see TURNAuthConfig). Its nonces are stateless: each names its
// expiry and carries a MAC, under a key drawn at random when it is made,
// over that expiry and the client's address, so nothing is kept per client
// and a restarted agent's clients simply get a 438 and a fresh nonce. It
// is read-only once made and safe for concurrent use.
type TURNAuth struct {
	realm    []byte
	secret   []byte                    // TURN REST shared secret; nil for none
	users    map[string][md5.Size]byte // static users' keys
	nonceKey [32]byte

	// nonceMACs and restMACs pool HMACs keyed with nonceKey and secret,
	// so that checking a request does not build them anew.
	nonceMACs, restMACs sync.Pool
}

// NewTURNAuth returns a TURNAuth for realm with the TURN REST shared
// secret (nil for none) and the static users, name to password.
func NewTURNAuth(realm string, secret []byte, users map[string]string) *TURNAuth {
	a := &TURNAuth{realm: []byte(realm), users: make(map[string][md5.Size]byte, len(users))}
	if len(secret) > 0 {
		a.secret = secret
	}
	for name, pw := range users {
		a.users[name] = longTermKey(name, realm, pw)
	}
	rand.Read(a.nonceKey[:])
	a.nonceMACs.New = func() any { return hmac.New(sha256.New, a.nonceKey[:]) }
	a.restMACs.New = func() any { return hmac.New(sha1.New, a.secret) }
	return a
}

// longTermKey is the long-term credential key (RFC 8489, section 9.2.2).
func longTermKey(user, realm, password string) [md5.Size]byte {
	return md5.Sum([]byte(user + ":" + realm + ":" + password)) //nolint:gosec // G401: the RFC's key derivation
}

// nonceMAC returns the MAC of a nonce expiring at expiry for client.
func (a *TURNAuth) nonceMAC(expiry uint32, client netip.AddrPort) [sha256.Size]byte {
	var msg [4 + 16 + 2]byte
	binary.BigEndian.PutUint32(msg[0:4], expiry)
	ip := client.Addr().As16()
	copy(msg[4:20], ip[:])
	binary.BigEndian.PutUint16(msg[20:22], client.Port())
	mac := a.nonceMACs.Get().(hash.Hash)
	mac.Reset()
	mac.Write(msg[:])
	var sum [sha256.Size]byte
	mac.Sum(sum[:0])
	a.nonceMACs.Put(mac)
	return sum
}

// appendNonce appends to dst a fresh nonce for client, valid until
// nonceLifetime after now.
func (a *TURNAuth) appendNonce(dst []byte, client netip.AddrPort, now time.Time) []byte {
	var raw [nonceRawLen]byte
	expiry := uint32(now.Add(nonceLifetime).Unix())
	binary.BigEndian.PutUint32(raw[0:4], expiry)
	sum := a.nonceMAC(expiry, client)
	copy(raw[4:], sum[:nonceMACLen])
	return base64.RawURLEncoding.AppendEncode(dst, raw[:])
}

// nonceState is what checkNonce found.
type nonceState int

const (
	nonceGood  nonceState = iota
	nonceBad              // not one of ours, or another client's
	nonceStale            // ours, for this client, but expired
)

// checkNonce says whether nonce is one appendNonce made for client and,
// if so, whether it is still valid at now.
func (a *TURNAuth) checkNonce(nonce []byte, client netip.AddrPort, now time.Time) nonceState {
	var raw [nonceRawLen]byte
	if len(nonce) != nonceLen {
		return nonceBad
	}
	if n, err := base64.RawURLEncoding.Decode(raw[:], nonce); err != nil || n != nonceRawLen {
		return nonceBad
	}
	expiry := binary.BigEndian.Uint32(raw[0:4])
	sum := a.nonceMAC(expiry, client)
	if !hmac.Equal(sum[:nonceMACLen], raw[4:]) {
		return nonceBad
	}
	if now.Unix() >= int64(expiry) {
		return nonceStale
	}
	return nonceGood
}

// userKey returns the long-term key of username at now: a TURN REST
// username ("<unix expiry>[:<user>]") under the shared secret while it has
// not expired, or a static user's.
func (a *TURNAuth) userKey(username []byte, now time.Time) ([md5.Size]byte, bool) {
	if a.secret != nil {
		if expiry, ok := restExpiry(username); ok {
			if now.Unix() >= expiry {
				return [md5.Size]byte{}, false
			}
			mac := a.restMACs.Get().(hash.Hash)
			mac.Reset()
			mac.Write(username)
			var sum [sha1.Size]byte
			mac.Sum(sum[:0])
			a.restMACs.Put(mac)
			var pw [28]byte // base64 of a SHA-1 sum
			base64.StdEncoding.Encode(pw[:], sum[:])
			h := md5.New() //nolint:gosec // G401: the RFC's key derivation
			h.Write(username)
			h.Write([]byte{':'})
			h.Write(a.realm)
			h.Write([]byte{':'})
			h.Write(pw[:])
			var key [md5.Size]byte
			h.Sum(key[:0])
			return key, true
		}
	}
	k, ok := a.users[string(username)]
	return k, ok
}

// restExpiry parses the expiry of a TURN REST username, the decimal Unix
// time before the first colon (or the whole name).
func restExpiry(username []byte) (int64, bool) {
	end := len(username)
	for i, c := range username {
		if c == ':' {
			end = i
			break
		}
	}
	if end == 0 || end > 18 { // 18 digits cannot overflow an int64
		return 0, false
	}
	var n int64
	for _, c := range username[:end] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// check returns the long-term key of the stock Allocate req (the datagram
// pkt) from client at now, or the error code to answer it with: 438 when
// its nonce, ours and for this client, has expired, and 401 for anything
// else wrong, which the answer does not tell apart.
func (a *TURNAuth) check(pkt []byte, req *wire.Request, client netip.AddrPort, now time.Time) ([md5.Size]byte, stun.ErrorCode) {
	var none [md5.Size]byte
	if req.Integrity == 0 || req.Username == nil || req.Nonce == nil || !hmac.Equal(req.Realm, a.realm) {
		return none, stun.CodeUnauthorized
	}
	switch a.checkNonce(req.Nonce, client, now) {
	case nonceBad:
		return none, stun.CodeUnauthorized
	case nonceStale:
		return none, stun.CodeStaleNonce
	}
	key, ok := a.userKey(req.Username, now)
	if !ok || !wire.VerifyIntegrity(pkt, req, key[:]) {
		return none, stun.CodeUnauthorized
	}
	return key, 0
}

// turnGrant is the outcome of authorize for a request it let through: the
// key to sign the redirect with, when signed.
type turnGrant struct {
	key    [md5.Size]byte
	signed bool
}

// authorize checks the credentials of a stock TURN Allocate when turn_auth
// is set. A request it lets through gets the zero grant (turn_auth off, an
// Usher probe, a stock Binding) or a signed one; one it refuses has its 401
// or 438 appended to dst as out (refused true; why says if it was dropped
// instead). It takes no pick.
func (p *prober) authorize(dst, pkt []byte, req *wire.Request, from netip.AddrPort) (g turnGrant, out []byte, why dropReason, refused bool) {
	a := p.r.cfg.TURNAuth
	if a == nil || req.HasSession || req.Method != stun.MethodAllocate {
		return g, dst, dropNone, false
	}
	key, code := a.check(pkt, req, from, p.now)
	if code == 0 {
		return turnGrant{key: key, signed: true}, dst, dropNone, false
	}
	var buf [nonceLen]byte
	nonce := a.appendNonce(buf[:0], from, p.now)
	out, err := p.enc.AppendAuthError(dst, req, code, a.realm, nonce, wire.Limit(req, p.r.cfg.StockAmplification))
	if err != nil {
		return g, dst, dropTooLarge, true
	}
	return g, out, dropNone, true
}

// appendRedirect appends the redirect p.redirect to req, signed with g's
// key when g is signed, within the size rule.
func (p *prober) appendRedirect(dst []byte, req *wire.Request, g *turnGrant) ([]byte, error) {
	limit := wire.Limit(req, p.r.cfg.StockAmplification)
	if g.signed {
		// A copy, so that only this branch pays for the key escaping
		// (into the HMAC): the unsigned path does not allocate.
		key := g.key
		return p.enc.AppendSignedRedirect(dst, req, &p.redirect, key[:], limit)
	}
	return p.enc.AppendRedirect(dst, req, &p.redirect, limit)
}
