package node

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/assign"
	"github.com/usherlb/usher/node/loadsrc"
	"github.com/usherlb/usher/wire"
)

// vipName is the balancer address's DNS name in the TLS tests, and
// turnDomain the TURN service's.
const (
	vipName    = "vip.usher.test"
	turnDomain = "turn1.usher.test"
)

// testCA is a certificate authority for the balancer's certificate, as a
// public CA is for browsers.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	n    int64 // the last serial issued
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "usher test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool, n: 1}
}

// issue writes a new certificate for name (serial returned) and its key
// (mode 0600) to certFile and keyFile.
func (ca *testCA) issue(t *testing.T, name, certFile, keyFile string) int64 {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca.n++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.n), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(path, typ string, der []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(certFile, "CERTIFICATE", der)
	write(keyFile, "EC PRIVATE KEY", kder)
	return ca.n
}

// vipTLSFiles issues a certificate for vipName into a new directory and
// returns the files.
func vipTLSFiles(t *testing.T, ca *testCA) (certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "vip.pem"), filepath.Join(dir, "vip-key.pem")
	ca.issue(t, vipName, certFile, keyFile)
	return certFile, keyFile
}

// tlsTestResponder is a responder serving 127.0.0.1 with TCP and TLS on,
// each connection allowed timeout of life, stock requests balanced over
// the service "turn", whose one server (server2) has the domain
// turnDomain; the built-in session endpoint is server1. It presents the
// certificate getCert returns. It is closed at the end of the test.
func tlsTestResponder(t *testing.T, serving ServingFunc, timeout time.Duration,
	getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *Responder {
	t.Helper()
	var views atomic.Pointer[ServiceViews]
	views.Store(&ServiceViews{"turn": assign.NewView([]assign.Node{
		{ID: "b", Addr: server2, Domain: turnDomain, Capacity: 100, ReportedAt: time.Now()},
	})})
	// The UDP port is the kernel's pick, and so is the TLS port, picked
	// before: another socket may take either. Try a few.
	for range 10 {
		r := testResponder(newFakeClock(), serving, server1)
		r.cfg.ServiceViews, r.cfg.StockService = &views, "turn"
		for _, p := range []*prober{&r.prober, &r.tcp.p, &r.tls.p} {
			p.stockService = []byte("turn") // as NewResponder does
		}
		r.cfg.TCP, r.cfg.TCPTimeout = true, timeout
		r.cfg.TLSPort, r.cfg.TLSCertificate = freeTCPPort(t), getCert
		if err := r.Listen(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
			t.Fatal(err)
		}
		if r.tcp.addr().IsValid() && r.tls.addr().IsValid() {
			t.Cleanup(func() { r.Close() })
			return r
		}
		r.Close()
	}
	t.Fatal("not listening on TCP and TLS")
	return nil
}

// freeTCPPort returns a port no socket of 127.0.0.1 has just now.
func freeTCPPort(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).AddrPort().Port()
}

// fileCert is getCert for the certificate in files.
func fileCert(t *testing.T, certFile, keyFile string) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	t.Helper()
	c, err := newCertReloader(certFile, keyFile, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	return c.GetCertificate
}

// dialTLS opens TLS to addr, checking the certificate for vipName against
// ca, and returns the connection and the serial of the certificate it was
// shown. It is closed at the end of the test.
func dialTLS(t *testing.T, addr netip.AddrPort, ca *testCA) (*tls.Conn, int64) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr.String(), &tls.Config{RootCAs: ca.pool, ServerName: vipName, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestTLSAnswers checks that a stock Allocate over TLS, verified against
// the CA for the balancer's name, gets the 300 naming the TURN server and
// its domain (ALTERNATE-DOMAIN), while the same request over UDP or TCP
// gets the same server without the domain, and an Usher probe over TLS for
// the built-in endpoint, whose servers have no domain, none either.
func TestTLSAnswers(t *testing.T) {
	ca := newTestCA(t)
	r := tlsTestResponder(t, Solo, 0, vipCert(t, ca))
	overTLS := func(req []byte) wire.Response {
		c, _ := dialTLS(t, r.tls.addr(), ca)
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		return decode(t, readToClose(t, c))
	}
	a := overTLS(stockAllocate())
	if a.Success || a.Code != stun.CodeTryAlternate || a.Server != server2 || string(a.Domain) != turnDomain {
		t.Fatalf("over TLS: %+v (domain %q), want a 300 naming %v and %q", a, a.Domain, server2, turnDomain)
	}
	p := overTLS(probe(t, wire.Probe{Session: wire.SessionID{7}, PadTo: wire.ProbeSize}))
	if p.Server != server1 || p.Domain != nil {
		t.Fatalf("probe over TLS: %+v (domain %q), want %v without a domain", p, p.Domain, server1)
	}

	c := dialTCP(t, r)
	if _, err := c.Write(stockAllocate()); err != nil {
		t.Fatal(err)
	}
	if a := decode(t, readToClose(t, c)); a.Server != server2 || a.Domain != nil {
		t.Fatalf("over TCP: %+v (domain %q), want %v without a domain", a, a.Domain, server2)
	}
	u := listenUDP(t, "127.0.0.1:0")
	if a := roundTrip(t, u, r.Addr(), stockAllocate()); a.Server != server2 || a.Domain != nil {
		t.Fatalf("over UDP: %+v (domain %q), want %v without a domain", a, a.Domain, server2)
	}
	if st := r.Stats(); st.Answered != 4 || len(st.Drops) != 0 {
		t.Errorf("stats %+v, want 4 redirects and no drops", st)
	}
}

// ticketCache is a tls.ClientSessionCache that counts the sessions a
// server offered to resume.
type ticketCache struct{ puts atomic.Int32 }

func (c *ticketCache) Get(string) (*tls.ClientSessionState, bool) { return nil, false }

func (c *ticketCache) Put(_ string, cs *tls.ClientSessionState) {
	if cs != nil {
		c.puts.Add(1)
	}
}

// TestTLSNoSessionTickets checks that the balancer's TLS listener issues
// no session tickets, over TLS 1.3 or 1.2: a client asks once, and no
// other leader could resume the session.
func TestTLSNoSessionTickets(t *testing.T) {
	ca := newTestCA(t)
	r := tlsTestResponder(t, Solo, 0, vipCert(t, ca))
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		cache := &ticketCache{}
		d := &net.Dialer{Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", r.tls.addr().String(), &tls.Config{
			RootCAs: ca.pool, ServerName: vipName, MinVersion: v, MaxVersion: v, ClientSessionCache: cache,
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(probe(t, wire.Probe{Session: wire.SessionID{9}, PadTo: wire.ProbeSize})); err != nil {
			t.Fatal(err)
		}
		// Reading the answer also reads any ticket sent before it.
		if a := decode(t, readToClose(t, c)); a.Server != server1 {
			t.Fatalf("%s: answer %+v, want a redirect to %v", tls.VersionName(v), a, server1)
		}
		c.Close()
		if n := cache.puts.Load(); n != 0 {
			t.Errorf("%s: the balancer offered %d session tickets, want none", tls.VersionName(v), n)
		}
	}
}

// vipCert is fileCert of new vipTLSFiles.
func vipCert(t *testing.T, ca *testCA) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	t.Helper()
	certFile, keyFile := vipTLSFiles(t, ca)
	return fileCert(t, certFile, keyFile)
}

// TestTLSHandshakeDeadline checks that a client that opens TCP to the TLS
// port and never finishes the handshake (sends nothing, or half a
// ClientHello) is cut by the connection's deadline without an answer, and
// that garbage in place of a ClientHello ends the connection at once,
// each counted.
func TestTLSHandshakeDeadline(t *testing.T) {
	ca := newTestCA(t)
	const timeout = 300 * time.Millisecond
	r := tlsTestResponder(t, Solo, timeout, vipCert(t, ca))
	hello := []byte{0x16, 0x03, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, 0xfc, 0x03, 0x03} // a ClientHello's start, claiming 256 bytes
	for _, tc := range []struct {
		name, drop string
		send       []byte
	}{
		{"nothing", "timeout", nil},
		{"half a hello", "timeout", hello},
		{"not tls", "tls_handshake", stockAllocate()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := r.Stats().Drops[tc.drop]
			c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(r.tls.addr()))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			if _, err := c.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			b := readToClose(t, c)
			if tc.drop == "timeout" && time.Since(start) < timeout/2 {
				t.Errorf("closed after %v, before the deadline of %v", time.Since(start), timeout)
			}
			if tc.drop == "tls_handshake" && len(b) > 0 && b[0] != 0x15 {
				t.Errorf("answered %x, want at most a TLS alert", b)
			}
			waitFor(t, func() bool { return r.Stats().Drops[tc.drop] == before+1 })
		})
	}
	if st := r.Stats(); st.Answered != 0 {
		t.Errorf("%d answers", st.Answered)
	}
}

// TestTLSReload checks that replacing the certificate files makes the
// next handshake present the new certificate, and that a pair that does
// not load (a certificate without its key yet) leaves the last good one.
func TestTLSReload(t *testing.T) {
	ca := newTestCA(t)
	certFile, keyFile := vipTLSFiles(t, ca)
	r := tlsTestResponder(t, Solo, 0, fileCert(t, certFile, keyFile))
	_, first := dialTLS(t, r.tls.addr(), ca)

	// Later modification times, in case the file system's clock is coarse.
	touch := func(d time.Duration) {
		for _, f := range []string{certFile, keyFile} {
			if err := os.Chtimes(f, time.Now().Add(d), time.Now().Add(d)); err != nil {
				t.Fatal(err)
			}
		}
	}
	second := ca.issue(t, vipName, certFile, keyFile)
	touch(time.Minute)
	if _, got := dialTLS(t, r.tls.addr(), ca); got != second || got == first {
		t.Fatalf("after replacing the files: certificate %d, want %d (first was %d)", got, second, first)
	}

	// A new certificate whose key is not written yet.
	dir := t.TempDir()
	ca.issue(t, vipName, certFile, filepath.Join(dir, "key.pem"))
	touch(2 * time.Minute)
	if _, got := dialTLS(t, r.tls.addr(), ca); got != second {
		t.Fatalf("with a mismatched pair: certificate %d, want %d still", got, second)
	}
}

// TestTLSFollowsServe checks that the TLS listener, like the TCP one, is
// open only while the responder serves, and not at all without TLSPort.
func TestTLSFollowsServe(t *testing.T) {
	ca := newTestCA(t)
	r := tlsTestResponder(t, Solo, 0, vipCert(t, ca))
	addr := r.tls.addr()
	r.Stop()
	if r.tls.addr().IsValid() {
		t.Fatal("TLS still listening after Stop")
	}
	if c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(addr)); err == nil {
		c.Close()
		t.Fatal("connected after Stop")
	}
	r.Serve(r.owned)
	c, _ := dialTLS(t, addr, ca)
	if _, err := c.Write(stockAllocate()); err != nil {
		t.Fatal(err)
	}
	if a := decode(t, readToClose(t, c)); a.Server != server2 {
		t.Fatalf("answer %+v after a second Serve", a)
	}

	off := testResponder(newFakeClock(), Solo, server1)
	off.cfg.TLSCertificate = r.cfg.TLSCertificate
	if err := off.Listen(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	if off.tls.addr().IsValid() {
		t.Fatal("listening on TLS without TLSPort")
	}
}

// TestValidateBalancerTLS checks that each bad balancer_tls setting is
// refused under the key at fault, and a good one accepted.
func TestValidateBalancerTLS(t *testing.T) {
	ca := newTestCA(t)
	certFile, keyFile := vipTLSFiles(t, ca)
	dir := t.TempDir()
	otherCert, otherKey := filepath.Join(dir, "other.pem"), filepath.Join(dir, "other-key.pem")
	ca.issue(t, vipName, otherCert, otherKey)
	openKey := filepath.Join(dir, "open-key.pem")
	if b, err := os.ReadFile(keyFile); err != nil || os.WriteFile(openKey, b, 0o644) != nil {
		t.Fatal(err)
	}
	good := DefaultConfig()
	good.BalancerTLS, good.BalancerTLSCertFile, good.BalancerTLSKeyFile = 5349, certFile, keyFile
	rt, err := good.Build()
	if err != nil {
		t.Fatalf("good: %v", err)
	}
	vipPort := int(rt.Parsed.VIP.Port())
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		key, value string
		set        func(*Config)
	}{
		{"balancer_tls", "70000", func(c *Config) { c.BalancerTLS = 70000 }},
		{"balancer_tls", "-1", func(c *Config) { c.BalancerTLS = -1 }},
		{"balancer_tls", strconv.Itoa(vipPort), func(c *Config) { c.BalancerTLS = vipPort }},
		{"balancer_tls", "3479", func(c *Config) { c.BalancerTCP, c.BalancerTLS = "3479", 3479 }},
		{"balancer_tls_cert_file", "", func(c *Config) { c.BalancerTLSCertFile = "" }},
		{"balancer_tls_key_file", "", func(c *Config) { c.BalancerTLSKeyFile = "" }},
		{"balancer_tls_cert_file", missing, func(c *Config) { c.BalancerTLSCertFile = missing }},
		{"balancer_tls_key_file", missing, func(c *Config) { c.BalancerTLSKeyFile = missing }},
		{"balancer_tls_key_file", openKey, func(c *Config) { c.BalancerTLSKeyFile = openKey }},
		{"balancer_tls_cert_file", certFile, func(c *Config) { c.BalancerTLSKeyFile = otherKey }},
		{"balancer_tls_cert_file", certFile, func(c *Config) { c.BalancerTLS = 0 }},
		{"balancer_tls_key_file", keyFile, func(c *Config) { c.BalancerTLS, c.BalancerTLSCertFile = 0, "" }},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			c := good
			tt.set(&c)
			_, err := c.Build()
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("Build = %v, want a KeyError", err)
			}
			if ke.Key != tt.key || ke.Value != tt.value {
				t.Errorf("got key %q value %q (%v), want %q %q", ke.Key, ke.Value, err, tt.key, tt.value)
			}
		})
	}
	off := good
	off.BalancerTCP = "false"
	off.BalancerTLS = vipPort
	if _, err := off.Build(); err != nil {
		t.Errorf("balancer_tls on the balancer port without balancer_tcp: %v", err)
	}
}

// TestTLSAnswerAllocs checks that the decision for a request over TLS,
// which names the alternate's domain, allocates no more than over UDP:
// nothing.
func TestTLSAnswerAllocs(t *testing.T) {
	r := tlsTestResponder(t, Solo, 0, vipCert(t, newTestCA(t)))
	p := &r.tls.p
	pkt := stockAllocate()
	dst := make([]byte, 0, maxDatagram)
	if out, why := p.answer(dst, pkt, clientA); why != dropNone || string(decode(t, out).Domain) != turnDomain {
		t.Fatalf("answer %x, drop %v: want a redirect with the domain", out, why)
	}
	if n := testing.AllocsPerRun(200, func() { p.answer(dst[:0], pkt, clientA) }); n != 0 {
		t.Errorf("%v allocs per answer over TLS", n)
	}
}

// TestAgentTLS checks the whole path of the domain: an agent with
// balancer_tls and a service block with a domain answers a stock Allocate
// over TLS with the 300 naming the service's address and, from its own
// report, its domain.
func TestAgentTLS(t *testing.T) {
	ca := newTestCA(t)
	certFile, keyFile := vipTLSFiles(t, ca)
	turn := netip.MustParseAddrPort("127.0.0.1:9")
	c := testConfig()
	c.VIPService = "turn"
	c.Services = []ServiceConfig{{Name: "turn", Address: turn.String(), Domain: turnDomain, Capacity: 50,
		Load: &loadsrc.Spec{Source: "sessions"}}}
	c.BalancerTLS, c.BalancerTLSCertFile, c.BalancerTLSKeyFile = int(freeTCPPort(t)), certFile, keyFile
	a := startAgent(t, c)
	addr := netip.AddrPortFrom(a.VIPAddr().Addr(), uint16(c.BalancerTLS))
	var last wire.Response
	waitFor(t, func() bool {
		// No answer until the service's report is in the view.
		conn, _ := dialTLS(t, addr, ca)
		if _, err := conn.Write(stockAllocate()); err != nil {
			t.Fatal(err)
		}
		b := readToClose(t, conn)
		if len(b) == 0 {
			return false
		}
		last = decode(t, b)
		return true
	})
	if last.Code != stun.CodeTryAlternate || last.Server != turn || string(last.Domain) != turnDomain {
		t.Fatalf("answer %+v (domain %q), want a 300 naming %v and %q", last, last.Domain, turn, turnDomain)
	}
}
