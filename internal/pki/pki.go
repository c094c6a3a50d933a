package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Scheme is the URI scheme of the identities in Usher's certificates.
const Scheme = "usher"

// nodePath prefixes the path of a node identity.
const nodePath = "/node/"

// Default lifetimes of the certificates `usher tls` creates.
const (
	DefaultCAValidity   = 5 * 365 * 24 * time.Hour
	DefaultCertValidity = 365 * 24 * time.Hour
)

// backdate is how far before "now" a new certificate's validity starts, so
// that a peer whose clock is a little behind accepts it at once.
const backdate = 5 * time.Minute

// maxFarmLen bounds a farm name (memberlist's label limit).
const maxFarmLen = 255

// Errors Verify wraps; test with errors.Is.
var (
	// ErrNoIdentity: the certificate names no Usher farm and node.
	ErrNoIdentity = errors.New("certificate carries no usher identity")
	// ErrOtherFarm: the certificate is of another farm than the CA's.
	ErrOtherFarm = errors.New("certificate is of another farm")
	// ErrUntrusted: the chain does not lead to the farm's CA, or is not
	// valid now.
	ErrUntrusted = errors.New("certificate is not valid for this farm's CA")
	// ErrKeyMismatch: a certificate and a key do not belong together.
	ErrKeyMismatch = errors.New("key does not match the certificate")
)

// Identity is what a certificate of this package certifies: a node of a
// farm (Node empty for the farm's CA).
type Identity struct {
	Farm, Node string
}

// URI returns the identity as the URI a certificate carries:
// usher://farm/node/name, or usher://farm for the CA.
func (id Identity) URI() *url.URL {
	u := &url.URL{Scheme: Scheme, Host: id.Farm}
	if id.Node != "" {
		u.Path = nodePath + id.Node
		u.RawPath = nodePath + url.PathEscape(id.Node)
	}
	return u
}

// String returns the identity's URI.
func (id Identity) String() string { return id.URI().String() }

// ParseIdentity reads an identity URI written by Identity.URI.
func ParseIdentity(u *url.URL) (Identity, error) {
	if u == nil || u.Scheme != Scheme || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return Identity{}, ErrNoIdentity
	}
	if err := ValidFarm(u.Host); err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrNoIdentity, err)
	}
	id := Identity{Farm: u.Host}
	p := u.EscapedPath()
	if p == "" {
		return id, nil
	}
	esc, ok := strings.CutPrefix(p, nodePath)
	if !ok || esc == "" || strings.Contains(esc, "/") {
		return Identity{}, fmt.Errorf("%w: path %q is not /node/NAME", ErrNoIdentity, p)
	}
	name, err := url.PathUnescape(esc)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrNoIdentity, err)
	}
	id.Node = name
	return id, nil
}

// ValidFarm checks that farm can name a farm in a certificate: 1 to 255
// letters, digits, '-', '_' and '.', neither starting nor ending with a dot
// nor holding two in a row.
func ValidFarm(farm string) error {
	switch {
	case farm == "":
		return errors.New("farm name is empty")
	case len(farm) > maxFarmLen:
		return fmt.Errorf("farm name is longer than %d bytes", maxFarmLen)
	case strings.HasPrefix(farm, ".") || strings.HasSuffix(farm, ".") || strings.Contains(farm, ".."):
		return fmt.Errorf("farm name %q has an empty dot-separated part", farm)
	}
	for _, r := range farm {
		if !farmNameRune(r) {
			return fmt.Errorf("farm name %q holds %q: only letters, digits, '-', '_' and '.' are allowed", farm, r)
		}
	}
	return nil
}

// validNode checks that name can name a node in a certificate.
func validNode(name string) error {
	switch {
	case name == "":
		return errors.New("node name is empty")
	case strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return fmt.Errorf("node name %q contains a space or control character", name)
	}
	return nil
}

// identityOf returns the one Usher identity cert carries.
func identityOf(cert *x509.Certificate) (Identity, error) {
	var found []Identity
	for _, u := range cert.URIs {
		if u.Scheme != Scheme {
			continue
		}
		id, err := ParseIdentity(u)
		if err != nil {
			return Identity{}, err
		}
		found = append(found, id)
	}
	switch len(found) {
	case 0:
		return Identity{}, ErrNoIdentity
	case 1:
		return found[0], nil
	}
	return Identity{}, fmt.Errorf("%w: %d usher identities", ErrNoIdentity, len(found))
}

// newKey makes an ECDSA P-256 key.
func newKey(rnd io.Reader) (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rnd)
}

// serial returns a random 128-bit serial number.
func serial(rnd io.Reader) (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	b[0] &= 0x7f // positive
	return new(big.Int).SetBytes(b), nil
}

// CA is a farm's certificate authority: its certificate and key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Farm is the farm the CA certifies nodes of.
	Farm string
}

// NewCA creates the self-signed CA of farm, valid from now for validFor.
func NewCA(farm string, now time.Time, validFor time.Duration, rnd io.Reader) (*CA, error) {
	if err := ValidFarm(farm); err != nil {
		return nil, err
	}
	key, err := newKey(rnd)
	if err != nil {
		return nil, fmt.Errorf("ca key: %w", err)
	}
	sn, err := serial(rnd)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "Usher farm " + farm + " CA", Organization: []string{"Usher farm " + farm}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		URIs:                  []*url.URL{Identity{Farm: farm}.URI()},
	}
	der, err := x509.CreateCertificate(rnd, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("ca certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, Farm: farm}, nil
}

// ParseCA reads a CA written by CertPEM and KeyPEM.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	certs, err := ParseCertificates(certPEM)
	if err != nil {
		return nil, err
	}
	cert := certs[0]
	farm, err := caFarm(cert)
	if err != nil {
		return nil, err
	}
	key, err := ParseKey(keyPEM)
	if err != nil {
		return nil, err
	}
	if err := matches(cert, key); err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, Farm: farm}, nil
}

// caFarm checks that cert is an Usher farm CA and returns its farm.
func caFarm(cert *x509.Certificate) (string, error) {
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return "", errors.New("certificate is not a CA")
	}
	id, err := identityOf(cert)
	if err != nil {
		return "", fmt.Errorf("ca: %w", err)
	}
	if id.Node != "" {
		return "", fmt.Errorf("ca: %w: it names node %q", ErrNoIdentity, id.Node)
	}
	return id.Farm, nil
}

// CertPEM returns the CA certificate in PEM.
func (ca *CA) CertPEM() []byte { return certPEM(ca.Cert.Raw) }

// KeyPEM returns the CA key in PEM (PKCS #8).
func (ca *CA) KeyPEM() ([]byte, error) { return keyPEM(ca.Key) }

// Issue creates a certificate and key for node of the CA's farm, valid
// from now for validFor (but not beyond the CA's own expiry), for both
// ends of a TLS connection. It returns both in PEM. ips, if any, are
// carried as IP address SANs: the addresses other than its Raft address's
// that the node may name as its session address (see cluster's "Gossip is
// bound to its sender").
func (ca *CA) Issue(node string, now time.Time, validFor time.Duration, rnd io.Reader, ips ...netip.Addr) (cert, key []byte, err error) {
	if err := validNode(node); err != nil {
		return nil, nil, err
	}
	k, err := newKey(rnd)
	if err != nil {
		return nil, nil, fmt.Errorf("node key: %w", err)
	}
	sn, err := serial(rnd)
	if err != nil {
		return nil, nil, err
	}
	id := Identity{Farm: ca.Farm, Node: node}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{Organization: []string{"Usher farm " + ca.Farm}},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(validFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{id.URI()},
	}
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	for _, ip := range ips {
		if !ip.IsValid() {
			return nil, nil, errors.New("invalid IP address")
		}
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.Unmap().AsSlice()))
	}
	if isPrintableASCII(node) {
		tmpl.Subject.CommonName = node
		tmpl.DNSNames = []string{node}
	}
	der, err := x509.CreateCertificate(rnd, tmpl, ca.Cert, k.Public(), ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("node certificate: %w", err)
	}
	kp, err := keyPEM(k)
	if err != nil {
		return nil, nil, err
	}
	return certPEM(der), kp, nil
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func keyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseCertificates reads every CERTIFICATE block of a PEM file, in order
// (a node's certificate first, then any intermediates). It fails when there
// is none.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	return certs, nil
}

// ParseKey reads the first private key of a PEM file: PKCS #8 ("PRIVATE
// KEY"), SEC 1 ("EC PRIVATE KEY") or PKCS #1 ("RSA PRIVATE KEY").
func ParseKey(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM private key block found")
		}
		var (
			k   any
			err error
		)
		switch b.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parse private key: %w", err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("private key of type %T cannot sign", k)
		}
		return s, nil
	}
}

// matches checks that key is cert's private key.
func matches(cert *x509.Certificate, key crypto.Signer) error {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return ErrKeyMismatch
	}
	return nil
}

// farmNameRune reports whether r may appear in a farm name.
func farmNameRune(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return r == '-' || r == '_' || r == '.'
}
