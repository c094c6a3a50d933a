package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
)

// With Config.TLS set, every report message, every node's metadata and
// every state message carries a signature of its sender's certificate key
// in a trailer appended to the message:
//
//	key id (8 bytes) | signature length (2) | signature
//
// The key id is the first 8 bytes of the SHA-256 of the signing
// certificate's SubjectPublicKeyInfo; the signature is over
//
//	SHA-256("usher gossip v1" | 0 | kind (1) | farm length (1) | farm |
//	        signer length (1) | signer | message)
//
// where kind tells the three kinds of message apart, farm is the farm the
// certificates name and signer is the node whose key signs: the reporting
// node for a report or metadata, the leader for a state message. See
// "Gossip is bound to its sender" in the package documentation.
const sigContext = "usher gossip v1"

// Kinds of signed gossip, the kind byte of the signed digest.
const (
	sigReport = msgReport // a report message
	sigState  = msgState  // a state message
	sigMeta   = 0x80      // a node's memberlist metadata (its report)
)

// keyIDLen is the length of a key id.
const keyIDLen = 8

// keyID names a certificate key: the first 8 bytes of the SHA-256 of its
// SubjectPublicKeyInfo.
type keyID [keyIDLen]byte

// keyIDOf returns the key id of cert's public key.
func keyIDOf(cert *x509.Certificate) keyID {
	h := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return keyID(h[:keyIDLen])
}

// maxSigLen bounds the signature of a trailer (an RSA-4096 signature).
const maxSigLen = 512

// trailerOverhead is the size of a trailer without its signature.
const trailerOverhead = keyIDLen + 2

// maxMetaSigLen is the longest signature that keeps the largest signed
// metadata within memberlist's 512-byte limit. ECDSA P-256 (at most 72
// bytes), P-384 (104) and Ed25519 (64) signatures fit; RSA ones do not.
const maxMetaSigLen = 512 - MaxReportSize - trailerOverhead

// errUnauthenticated is wrapped by every error about a signature.
var errUnauthenticated = errors.New("unauthenticated gossip")

// errUnknownKey says a message is signed by a key this node has no
// certificate for (yet).
var errUnknownKey = fmt.Errorf("%w: unknown key", errUnauthenticated)

// gossipDigest returns the digest a trailer signs.
func gossipDigest(kind byte, farm, signer string, msg []byte) []byte {
	h := sha256.New()
	h.Write([]byte(sigContext))
	h.Write([]byte{0, kind, byte(len(farm))})
	h.Write([]byte(farm))
	h.Write([]byte{byte(len(signer))})
	h.Write([]byte(signer))
	h.Write(msg)
	return h.Sum(nil)
}

// signDigest signs a SHA-256 digest with any crypto.Signer: ECDSA and RSA
// (PKCS #1 v1.5) sign it as a SHA-256 digest, Ed25519 signs it as the
// message.
func signDigest(key crypto.Signer, digest []byte) ([]byte, error) {
	var opts crypto.SignerOpts = crypto.SHA256
	if _, ok := key.Public().(ed25519.PublicKey); ok {
		opts = crypto.Hash(0)
	}
	return key.Sign(rand.Reader, digest, opts)
}

// verifyDigest checks a signature made by signDigest.
func verifyDigest(pub any, digest, sig []byte) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, digest, sig)
	case ed25519.PublicKey:
		return ed25519.Verify(k, digest, sig)
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, sig) == nil
	}
	return false
}

// appendTrailer appends the trailer of signature sig by key id to dst.
func appendTrailer(dst []byte, id keyID, sig []byte) []byte {
	dst = append(dst, id[:]...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(sig)))
	return append(dst, sig...)
}

// parseTrailer parses b, which must be exactly one trailer.
func parseTrailer(b []byte) (keyID, []byte, error) {
	if len(b) < trailerOverhead {
		return keyID{}, nil, fmt.Errorf("%w: no signature", errUnauthenticated)
	}
	n := int(binary.BigEndian.Uint16(b[keyIDLen:]))
	if n == 0 || n > maxSigLen || len(b) != trailerOverhead+n {
		return keyID{}, nil, fmt.Errorf("%w: malformed signature trailer", errUnauthenticated)
	}
	return keyID(b[:keyIDLen]), b[trailerOverhead:], nil
}

// localKey is this node's signing identity, derived from its current
// certificate.
type localKey struct {
	cert  *tls.Certificate // the source it was derived from
	leaf  *x509.Certificate
	key   crypto.Signer
	id    keyID
	farm  string
	chain [][]byte
}

// newLocalKey derives the signing identity from cert.
func newLocalKey(cert *tls.Certificate) (*localKey, error) {
	if cert == nil || len(cert.Certificate) == 0 {
		return nil, errors.New("no certificate")
	}
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
	}
	key, ok := cert.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("certificate key of type %T cannot sign", cert.PrivateKey)
	}
	farm, err := farmOf(leaf)
	if err != nil {
		return nil, err
	}
	return &localKey{cert: cert, leaf: leaf, key: key, id: keyIDOf(leaf), farm: farm, chain: cert.Certificate}, nil
}

// farmOf returns the farm a node certificate names in its usher:// URI
// (see internal/pki).
func farmOf(leaf *x509.Certificate) (string, error) {
	for _, u := range leaf.URIs {
		if u.Scheme == "usher" && u.Host != "" && len(u.Host) <= 255 {
			return u.Host, nil
		}
	}
	return "", errors.New("certificate names no usher farm")
}

// sign appends to msg the trailer signing it as kind by signer.
func (k *localKey) sign(msg []byte, kind byte, signer string) ([]byte, error) {
	sig, err := signDigest(k.key, gossipDigest(kind, k.farm, signer, msg))
	if err != nil {
		return msg, fmt.Errorf("sign gossip: %w", err)
	}
	if len(sig) > maxSigLen {
		return msg, fmt.Errorf("sign gossip: a signature of %d bytes, the limit is %d", len(sig), maxSigLen)
	}
	return appendTrailer(msg, k.id, sig), nil
}
