package cluster

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
)

// The secret part of a state message is a list of entries
//
//	type (1) | length (2) | value
//
// of which this version knows two, secretTicketKey (State.TicketKey) and
// secretKeyring (State.Keyring: primary index (1) | (key length (1) |
// key)..., so that a member outside the Raft configuration follows the
// farm's gossip key rotation).
// Entries of other types are skipped, so a later secret is one more type
// that older nodes ignore. To carry one more secret: define its type
// below, append it in appendSecrets and take it in decodeSecrets.
//
// With Config.TLS the leader seals the list to the recipient's
// certificate key (the key the recipient last signed a verified message
// with), so that the ticket key is readable by that node alone and not by
// every holder of the gossip key:
//
//	key id (8) | ephemeral public key length (1) | ephemeral public key |
//	AES-256-GCM ciphertext and tag
//
// The AES key and nonce are HKDF-SHA256 of the ECDH secret of a fresh
// ephemeral key and the recipient's key (salt: the ephemeral public key
// then the recipient's; info: sealInfo). The additional data is the state
// message's clear part, from its kind byte to its secret format byte, so
// a sealed secret is bound to its recipient, index, term and leader.
const (
	secretTicketKey = 1
	secretKeyring   = 2
)

// sealInfo is the HKDF info of sealed secrets.
const sealInfo = "usher gossip v1 seal"

// errSeal is wrapped by every error opening a sealed secret.
var errSeal = errors.New("sealed secret")

// appendSecrets appends the secret entries of st to dst.
func appendSecrets(dst []byte, st *State) []byte {
	if len(st.TicketKey) > 0 {
		dst = append(dst, secretTicketKey)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(st.TicketKey)))
		dst = append(dst, st.TicketKey...)
	}
	if kr := st.Keyring; !kr.Empty() {
		n := 1
		for _, k := range kr.Keys {
			n += 1 + len(k)
		}
		dst = append(dst, secretKeyring)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
		dst = append(dst, byte(kr.Primary))
		for _, k := range kr.Keys {
			dst = append(dst, byte(len(k)))
			dst = append(dst, k...)
		}
	}
	return dst
}

// decodeKeyring parses the value of a secretKeyring entry.
func decodeKeyring(v []byte) (Keyring, error) {
	if len(v) < 1 {
		return Keyring{}, fmt.Errorf("%w: empty keyring secret", ErrBadReport)
	}
	kr := Keyring{Primary: int(v[0])}
	for v = v[1:]; len(v) > 0; {
		n := int(v[0])
		if len(v) < 1+n {
			return Keyring{}, fmt.Errorf("%w: truncated keyring secret", ErrBadReport)
		}
		kr.Keys = append(kr.Keys, append([]byte(nil), v[1:1+n]...))
		v = v[1+n:]
	}
	if err := kr.validate(); err != nil {
		return Keyring{}, fmt.Errorf("%w: %w", ErrBadReport, err)
	}
	return kr, nil
}

// decodeSecrets takes the secret entries of b into st.
func decodeSecrets(b []byte, st *State) error {
	seen := map[byte]bool{}
	for len(b) > 0 {
		if len(b) < 3 {
			return fmt.Errorf("%w: truncated secret", ErrBadReport)
		}
		typ, n := b[0], int(binary.BigEndian.Uint16(b[1:3]))
		if len(b) < 3+n {
			return fmt.Errorf("%w: truncated secret", ErrBadReport)
		}
		v := b[3 : 3+n]
		b = b[3+n:]
		if seen[typ] {
			return fmt.Errorf("%w: secret %d twice", ErrBadReport, typ)
		}
		seen[typ] = true
		switch typ {
		case secretTicketKey:
			if n == 0 || n > 255 {
				return fmt.Errorf("%w: ticket key of %d bytes", ErrBadReport, n)
			}
			st.TicketKey = append([]byte(nil), v...)
		case secretKeyring:
			kr, err := decodeKeyring(v)
			if err != nil {
				return err
			}
			st.Keyring = kr
		}
	}
	return nil
}

// sealTo encrypts plain to the key of certificate to, bound to aad.
func sealTo(plain, aad []byte, to *x509.Certificate) ([]byte, error) {
	pub, ok := to.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: a key of type %T cannot receive sealed secrets", errSeal, to.PublicKey)
	}
	recipient, err := pub.ECDH()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSeal, err)
	}
	eph, err := recipient.Curve().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSeal, err)
	}
	shared, err := eph.ECDH(recipient)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSeal, err)
	}
	ephPub := eph.PublicKey().Bytes()
	aead, nonce, err := sealCipher(shared, ephPub, recipient.Bytes())
	if err != nil {
		return nil, err
	}
	id := keyIDOf(to)
	out := append(id[:], byte(len(ephPub)))
	out = append(out, ephPub...)
	return aead.Seal(out, nonce, plain, aad), nil
}

// openSealed decrypts a blob sealTo made for own's key.
func openSealed(blob, aad []byte, own *localKey) ([]byte, error) {
	if len(blob) < keyIDLen+1 || keyID(blob[:keyIDLen]) != own.id {
		return nil, fmt.Errorf("%w: not sealed to this node's key", errSeal)
	}
	n := int(blob[keyIDLen])
	if len(blob) < keyIDLen+1+n {
		return nil, fmt.Errorf("%w: truncated", errSeal)
	}
	ephPub, ct := blob[keyIDLen+1:keyIDLen+1+n], blob[keyIDLen+1+n:]
	k, ok := own.key.(interface {
		ECDH() (*ecdh.PrivateKey, error)
	})
	if !ok {
		return nil, fmt.Errorf("%w: this node's key of type %T cannot open sealed secrets", errSeal, own.key)
	}
	priv, err := k.ECDH()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSeal, err)
	}
	eph, err := priv.Curve().NewPublicKey(ephPub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSeal, err)
	}
	shared, err := priv.ECDH(eph)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSeal, err)
	}
	aead, nonce, err := sealCipher(shared, ephPub, priv.PublicKey().Bytes())
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, nonce, ct, aad)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSeal, err)
	}
	return plain, nil
}

// sealCipher derives the AES-256-GCM cipher and nonce of one sealed
// secret. The ephemeral key is fresh for every secret, so the derived
// nonce is never used twice with a key.
func sealCipher(shared, ephPub, recipient []byte) (cipher.AEAD, []byte, error) {
	salt := append(append([]byte(nil), ephPub...), recipient...)
	okm, err := hkdf.Key(sha256.New, shared, salt, sealInfo, 32+12)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errSeal, err)
	}
	block, err := aes.NewCipher(okm[:32])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errSeal, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errSeal, err)
	}
	return aead, okm[32:], nil
}
