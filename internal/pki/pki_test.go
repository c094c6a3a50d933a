package pki

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// t0 is the tests' "now".
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func mustCA(t *testing.T, farm string) *CA {
	t.Helper()
	ca, err := NewCA(farm, t0, DefaultCAValidity, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func mustIssue(t *testing.T, ca *CA, node string, validFor time.Duration) []*x509.Certificate {
	t.Helper()
	certPEM, _, err := ca.Issue(node, t0, validFor, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := ParseCertificates(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return chain
}

// issueTemplate signs tmpl (a node certificate template) with ca, as a
// careless or hostile CA holder could.
func issueTemplate(t *testing.T, ca *CA, tmpl *x509.Certificate) []*x509.Certificate {
	t.Helper()
	k, err := newKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sn, _ := serial(rand.Reader)
	tmpl.SerialNumber = sn
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = t0.Add(-time.Hour), t0.Add(time.Hour)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, k.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return []*x509.Certificate{c}
}

func TestVerify(t *testing.T) {
	farmA := mustCA(t, "farm-a")
	otherCA := mustCA(t, "farm-a") // same farm name, another key
	farmB := mustCA(t, "farm-b")
	// A holder of farm-a's CA key signing for farm-b.
	crossed := &CA{Cert: farmA.Cert, Key: farmA.Key, Farm: "farm-b"}
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	uri := func(s string) []*url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return []*url.URL{u}
	}
	v, err := NewVerifier(farmA.CertPEM())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		chain []*x509.Certificate
		now   time.Time
		want  Identity
		err   error
	}{
		{name: "valid", chain: mustIssue(t, farmA, "n1", time.Hour), now: t0, want: Identity{"farm-a", "n1"}},
		{name: "odd node name", chain: mustIssue(t, farmA, "a/b%c:ü", time.Hour), now: t0, want: Identity{"farm-a", "a/b%c:ü"}},
		{name: "no certificate", chain: nil, now: t0, err: ErrUntrusted},
		{name: "another CA", chain: mustIssue(t, otherCA, "n1", time.Hour), now: t0, err: ErrUntrusted},
		{name: "another farm's CA", chain: mustIssue(t, farmB, "n1", time.Hour), now: t0, err: ErrUntrusted},
		{name: "another farm, this CA", chain: mustIssue(t, crossed, "n1", time.Hour), now: t0, err: ErrOtherFarm},
		{name: "expired", chain: mustIssue(t, farmA, "n1", time.Hour), now: t0.Add(2 * time.Hour), err: ErrUntrusted},
		{name: "not yet valid", chain: mustIssue(t, farmA, "n1", time.Hour), now: t0.Add(-time.Hour), err: ErrUntrusted},
		{name: "CA expired", chain: mustIssue(t, farmA, "n1", 10*DefaultCAValidity), now: t0.Add(DefaultCAValidity + time.Hour), err: ErrUntrusted},
		{name: "the CA itself", chain: []*x509.Certificate{farmA.Cert}, now: t0, err: ErrUntrusted},
		{name: "missing identity", chain: issueTemplate(t, farmA, &x509.Certificate{
			Subject: pkix.Name{CommonName: "n1"}, DNSNames: []string{"n1"}, ExtKeyUsage: both}), now: t0, err: ErrNoIdentity},
		{name: "identity without node", chain: issueTemplate(t, farmA, &x509.Certificate{
			URIs: uri("usher://farm-a"), ExtKeyUsage: both}), now: t0, err: ErrNoIdentity},
		{name: "two identities", chain: issueTemplate(t, farmA, &x509.Certificate{
			URIs: append(uri("usher://farm-a/node/n1"), uri("usher://farm-a/node/n2")...), ExtKeyUsage: both}), now: t0, err: ErrNoIdentity},
		{name: "bad path", chain: issueTemplate(t, farmA, &x509.Certificate{
			URIs: uri("usher://farm-a/voter/n1"), ExtKeyUsage: both}), now: t0, err: ErrNoIdentity},
		{name: "client auth only", chain: issueTemplate(t, farmA, &x509.Certificate{
			URIs: uri("usher://farm-a/node/n1"), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}), now: t0, err: ErrUntrusted},
		{name: "other schemes ignored", chain: issueTemplate(t, farmA, &x509.Certificate{
			URIs: append(uri("spiffe://farm-a/n9"), uri("usher://farm-a/node/n1")...), ExtKeyUsage: both}), now: t0, want: Identity{"farm-a", "n1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(tt.chain, tt.now)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Verify = %+v, %v; want error %v", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Verify = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestIdentityURI(t *testing.T) {
	for _, id := range []Identity{{"f", "n"}, {"a.b-c_d", "x/y"}, {"f", "100%"}, {"f", "é"}, {"f", ""}} {
		u, err := url.Parse(id.String())
		if err != nil {
			t.Fatalf("%+v: %v", id, err)
		}
		got, err := ParseIdentity(u)
		if err != nil || got != id {
			t.Errorf("%s parses to %+v, %v; want %+v", id, got, err, id)
		}
	}
	if got := (Identity{"farm", "n1"}).String(); got != "usher://farm/node/n1" {
		t.Errorf("String = %q", got)
	}
}

func TestValidFarm(t *testing.T) {
	for farm, ok := range map[string]bool{
		"prod": true, "eu-west.prod_1": true, "": false, ".a": false, "a.": false, "a..b": false,
		"a b": false, "a/b": false, "ä": false, "a:1": false,
	} {
		if err := ValidFarm(farm); (err == nil) != ok {
			t.Errorf("ValidFarm(%q) = %v", farm, err)
		}
	}
	if _, err := NewCA("a b", t0, time.Hour, rand.Reader); err == nil {
		t.Error("NewCA accepted an invalid farm name")
	}
}

func TestCARoundTrip(t *testing.T) {
	ca := mustCA(t, "prod")
	kp, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseCA(ca.CertPEM(), kp)
	if err != nil {
		t.Fatal(err)
	}
	if back.Farm != "prod" || !back.Cert.Equal(ca.Cert) {
		t.Fatalf("ParseCA: farm %q", back.Farm)
	}
	other := mustCA(t, "prod")
	okp, _ := other.KeyPEM()
	if _, err := ParseCA(ca.CertPEM(), okp); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("ParseCA with another key: %v", err)
	}
	// A node certificate is no CA.
	certPEM, keyPEM, err := ca.Issue("n1", t0, time.Hour, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseCA(certPEM, keyPEM); err == nil {
		t.Fatal("ParseCA accepted a node certificate")
	}
}

func TestNewBundle(t *testing.T) {
	ca := mustCA(t, "prod")
	certPEM, keyPEM, err := ca.Issue("n1", t0, time.Hour, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	chain, _ := ParseCertificates(certPEM)
	key, err := ParseKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBundle(ca.CertPEM(), chain, key, t0)
	if err != nil {
		t.Fatal(err)
	}
	if b.Identity != (Identity{"prod", "n1"}) || b.Cert.Leaf != chain[0] || b.Verifier.Farm() != "prod" {
		t.Fatalf("bundle %+v", b.Identity)
	}
	if chain[0].Subject.CommonName != "n1" || len(chain[0].DNSNames) != 1 || chain[0].DNSNames[0] != "n1" {
		t.Errorf("common name %q, DNS names %v", chain[0].Subject.CommonName, chain[0].DNSNames)
	}
	_, otherKeyPEM, _ := ca.Issue("n1", t0, time.Hour, rand.Reader)
	otherKey, _ := ParseKey(otherKeyPEM)
	if _, err := NewBundle(ca.CertPEM(), chain, otherKey, t0); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("NewBundle with another key: %v", err)
	}
	if _, err := NewBundle(mustCA(t, "prod").CertPEM(), chain, key, t0); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("NewBundle with another CA: %v", err)
	}
	s := NewStore(b)
	s.Now = func() time.Time { return t0 }
	if name, err := s.VerifyPeer(chain); err != nil || name != "n1" {
		t.Fatalf("VerifyPeer = %q, %v", name, err)
	}
	s.Now = func() time.Time { return t0.Add(2 * time.Hour) }
	if _, err := s.VerifyPeer(chain); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("VerifyPeer after expiry: %v", err)
	}
}

func TestIssueBoundedByCA(t *testing.T) {
	ca, err := NewCA("prod", t0, time.Hour, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	chain := mustIssue(t, ca, "n1", 24*time.Hour)
	if !chain[0].NotAfter.Equal(ca.Cert.NotAfter) {
		t.Fatalf("node certificate ends %v, its CA %v", chain[0].NotAfter, ca.Cert.NotAfter)
	}
	if _, _, err := ca.Issue("a b", t0, time.Hour, rand.Reader); err == nil {
		t.Fatal("Issue accepted a node name with a space")
	}
}

func TestIssueIPs(t *testing.T) {
	ca, err := NewCA("farm-a", t0, time.Hour, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ips := []netip.Addr{netip.MustParseAddr("198.18.0.7"), netip.MustParseAddr("2001:db8::7")}
	certPEM, _, err := ca.Issue("n1", t0, time.Hour, rand.Reader, ips...)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := ParseCertificates(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	var got []netip.Addr
	for _, ip := range certs[0].IPAddresses {
		a, _ := netip.AddrFromSlice(ip)
		got = append(got, a.Unmap())
	}
	if !slices.Equal(got, ips) {
		t.Fatalf("IP SANs %v, want %v", got, ips)
	}
	if _, _, err := ca.Issue("n1", t0, time.Hour, rand.Reader, netip.Addr{}); err == nil {
		t.Fatal("an invalid IP address was issued")
	}
}

// WriteNew never overwrites: with one file of the set present it writes
// none, and the present one keeps its content.
func TestWriteNewRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	base := NodeBase(dir, "farm", "a/b")
	if got, want := filepath.Base(base), "usher-farm-a_b"; got != want {
		t.Fatalf("NodeBase = %q, want %q", got, want)
	}
	if err := os.WriteFile(base+"-key.pem", []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	files := []File{{Path: base + ".pem", Data: []byte("cert"), Mode: 0o644}, {Path: base + "-key.pem", Data: []byte("new"), Mode: 0o600}}
	if err := WriteNew(files, nil); err == nil {
		t.Fatal("WriteNew overwrote an existing file")
	}
	if _, err := os.Stat(base + ".pem"); err == nil {
		t.Error("WriteNew wrote part of a set it refused")
	}
	if b, _ := os.ReadFile(base + "-key.pem"); string(b) != "old" {
		t.Errorf("existing file now holds %q", b)
	}
	if err := os.Remove(base + "-key.pem"); err != nil {
		t.Fatal(err)
	}
	var saved []string
	if err := WriteNew(files, func(p string) { saved = append(saved, p) }); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(base + "-key.pem"); err != nil || fi.Mode().Perm() != 0o600 || len(saved) != 2 {
		t.Errorf("key file: %v, %v; saved %v", fi, err, saved)
	}
}

// WriteNew refuses a path that is a symbolic link, dangling or not: a
// link planted where a key is to be written would otherwise send the
// key to wherever it points.
func TestWriteNewRefusesSymlink(t *testing.T) {
	for _, dangling := range []bool{true, false} {
		dir := t.TempDir()
		target := filepath.Join(dir, "elsewhere")
		if !dangling {
			if err := os.WriteFile(target, []byte("kept"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		key := filepath.Join(dir, "node-key.pem")
		if err := os.Symlink(target, key); err != nil {
			t.Fatal(err)
		}
		if err := WriteNew([]File{{Path: key, Data: []byte("secret"), Mode: 0o600}}, nil); err == nil {
			t.Fatalf("dangling=%v: WriteNew wrote through a symbolic link", dangling)
		}
		b, err := os.ReadFile(target)
		if dangling && err == nil || !dangling && string(b) != "kept" {
			t.Fatalf("dangling=%v: the link's target now holds %q (%v)", dangling, b, err)
		}
	}
}
