package cluster

import (
	"crypto/rand"
	"crypto/tls"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/usherlb/usher/internal/pki"
)

// testFarm is the farm name of the TLS tests: testConfig's label.
const testFarm = "usher-test"

// testPKI is a farm CA that issues node certificates for a test.
type testPKI struct {
	t  testing.TB
	ca *pki.CA
}

func newTestPKI(t testing.TB, farm string) *testPKI {
	t.Helper()
	ca, err := pki.NewCA(farm, time.Now(), time.Hour, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{t: t, ca: ca}
}

// bundle issues node's certificate and returns it with the CA that
// verifies peers, which may differ from the one that signed it (verifyCA).
func (p *testPKI) bundle(node string, verifyCA *pki.CA, ips ...netip.Addr) *pki.Bundle {
	p.t.Helper()
	certPEM, keyPEM, err := p.ca.Issue(node, time.Now(), time.Hour, rand.Reader, ips...)
	if err != nil {
		p.t.Fatal(err)
	}
	chain, err := pki.ParseCertificates(certPEM)
	if err != nil {
		p.t.Fatal(err)
	}
	key, err := pki.ParseKey(keyPEM)
	if err != nil {
		p.t.Fatal(err)
	}
	v, err := pki.NewVerifier(verifyCA.CertPEM())
	if err != nil {
		p.t.Fatal(err)
	}
	b := &pki.Bundle{Identity: pki.Identity{Farm: p.ca.Farm, Node: node}, Verifier: v}
	b.Cert.Certificate = [][]byte{chain[0].Raw}
	b.Cert.PrivateKey = key
	b.Cert.Leaf = chain[0]
	return b
}

// store returns a TLS source for node, verifying peers with this CA.
func (p *testPKI) store(node string) *pki.Store { return pki.NewStore(p.bundle(node, p.ca)) }

// withTLS gives each node of a farm its certificate of p.
func (p *testPKI) withTLS(c *Config) { c.TLS = p.store(c.NodeName) }

// startTLSFarm starts a farm of three voters on p's certificates and
// returns it with each node's certificate store, so a test can reload one.
func startTLSFarm(t *testing.T, p *testPKI) ([]*Cluster, map[string]*pki.Store) {
	t.Helper()
	stores := map[string]*pki.Store{}
	nodes := startFarmWith(t, 3, 3, nil, func(c *Config) {
		stores[c.NodeName] = p.store(c.NodeName)
		c.TLS = stores[c.NodeName]
	})
	return nodes, stores
}

// clientCert returns node's certificate of p as a crypto/tls certificate.
func (p *testPKI) clientCert(node string) *tls.Certificate {
	b := p.bundle(node, p.ca)
	return &b.Cert
}

func TestTLSFarmFormsAndAddsStandby(t *testing.T) {
	p := newTestPKI(t, testFarm)
	ledger := newVIPLedger(t)
	nodes := startFarmWith(t, 4, 3, ledger, p.withTLS)
	leader := waitSingleServer(t, nodes, 20*time.Second)
	// The fourth node joins raft as a standby: the leader dials it while
	// it has no configuration, and it follows the log from then on.
	eventually(t, 15*time.Second, "standby n4 with the ticket key", func() bool {
		return leader.suffrages()["n4"] == raft.Nonvoter && len(nodeNamed(nodes, "n4").fsm.state.Load().TicketKey) == TicketKeySize
	})
	if err := leader.SetDrain("n2", true); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "drain applied on every node", func() bool {
		for _, c := range nodes {
			if !c.fsm.state.Load().Drained["n2"] {
				return false
			}
		}
		return true
	})
	for _, c := range nodes {
		if n := c.Stats().RaftRefused; n != 0 {
			t.Errorf("%s refused %d raft connections of its own farm", c.Name(), n)
		}
	}
}

// fakePolicy is a peerPolicy for stream-level tests.
type fakePolicy struct {
	admit map[string]bool
	at    map[raft.ServerAddress]string
}

func (f *fakePolicy) admitRaftPeer(node string) error {
	if !f.admit[node] {
		return errRaftStarting
	}
	return nil
}

func (f *fakePolicy) raftPeerAt(a raft.ServerAddress) (string, bool) {
	n, ok := f.at[a]
	return n, ok
}

// listenTLS starts a TLS stream on loopback with src and pol.
func listenTLS(t *testing.T, src TLS, pol peerPolicy) *tlsStream {
	t.Helper()
	return listenTLSTimeout(t, src, pol, tlsHandshakeTimeout)
}

// listenTLSTimeout is listenTLS with a handshake deadline of its own.
func listenTLSTimeout(t *testing.T, src TLS, pol peerPolicy, handshake time.Duration) *tlsStream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newTLSStream(&tcpStream{Listener: ln}, src, pol, testLogger("tls"), handshake)
	t.Cleanup(func() { s.Close() })
	return s
}

// serveEcho accepts connections on s and echoes one byte back on each.
func serveEcho(s *tlsStream) {
	go func() {
		for {
			c, err := s.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 1)
				if _, err := c.Read(b); err == nil {
					c.Write(b)
				}
			}()
		}
	}()
}

// roundTrip writes a byte on c and reads it back.
func roundTrip(c net.Conn) error {
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte{7}); err != nil {
		return err
	}
	_, err := c.Read(make([]byte, 1))
	return err
}

func TestTLSStreamChecks(t *testing.T) {
	p := newTestPKI(t, testFarm)
	other := newTestPKI(t, testFarm) // another CA, same farm name
	server := listenTLS(t, p.store("n1"), &fakePolicy{admit: map[string]bool{"n2": true}})
	serveEcho(server)
	addr := raft.ServerAddress(server.Addr().String())
	dialer := func(src TLS, at map[raft.ServerAddress]string) *tlsStream {
		return listenTLS(t, src, &fakePolicy{at: at})
	}
	tests := []struct {
		name    string
		src     TLS
		at      map[raft.ServerAddress]string // the dialer's configuration
		ok      bool
		refused bool // the server refuses (rather than the dialer)
	}{
		{name: "admitted node", src: p.store("n2"), ok: true},
		{name: "admitted node, configuration names the server", src: p.store("n2"), at: map[raft.ServerAddress]string{addr: "n1"}, ok: true},
		{name: "farm node not admitted", src: p.store("n3"), refused: true},
		{name: "dialer of another CA", src: pki.NewStore(other.bundle("n2", p.ca)), refused: true},
		// The dialer aborts the handshake; the server may count that too.
		{name: "server is not the node configured there", src: p.store("n2"), at: map[raft.ServerAddress]string{addr: "n3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := server.rejected.Load()
			conn, err := dialer(tt.src, tt.at).Dial(addr, 5*time.Second)
			if err == nil {
				err = roundTrip(conn)
			}
			if (err == nil) != tt.ok {
				t.Fatalf("dial and round trip: %v, want success %v", err, tt.ok)
			}
			switch {
			case tt.refused:
				eventually(t, 5*time.Second, "the server counts the refusal", func() bool { return server.rejected.Load() > before })
			case !tt.ok:
				if !strings.Contains(err.Error(), "the configuration names") {
					t.Errorf("dial error %v does not say the server is another node", err)
				}
			case server.rejected.Load() != before:
				n := server.rejected.Load()
				t.Errorf("server refused %d connections", n-before)
			}
		})
	}
}

func TestTLSStreamSilentPeer(t *testing.T) {
	p := newTestPKI(t, testFarm)
	server := listenTLSTimeout(t, p.store("n1"), &fakePolicy{}, 200*time.Millisecond)
	conn, err := net.Dial("tcp", server.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The server closes a peer that never speaks at its deadline.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if n, err := conn.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Fatalf("read %d bytes, %v from a server that should close", n, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the server held a silent connection for %v", d)
	}
	eventually(t, 5*time.Second, "refusal counted", func() bool { return server.rejected.Load() == 1 })
	eventually(t, 5*time.Second, "handshake slot freed", func() bool { return len(server.slots) == 0 })
}

func TestTLSStreamReload(t *testing.T) {
	p := newTestPKI(t, testFarm)
	src := p.store("n1")
	server := listenTLS(t, src, &fakePolicy{admit: map[string]bool{"n2": true}})
	serveEcho(server)
	client := listenTLS(t, p.store("n2"), &fakePolicy{})
	serialSeen := func() string {
		t.Helper()
		conn, err := client.Dial(raft.ServerAddress(server.Addr().String()), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	first := serialSeen()
	next := p.bundle("n1", p.ca)
	src.Set(next)
	if got := serialSeen(); got != next.Cert.Leaf.SerialNumber.String() || got == first {
		t.Fatalf("after reload the server presents serial %s, want %s (was %s)", got, next.Cert.Leaf.SerialNumber, first)
	}
}

func TestAdmitRaftPeer(t *testing.T) {
	p := newTestPKI(t, testFarm)
	// A node alone with bootstrap_expect 3 has no raft configuration: any
	// node of the farm may dial it (whoever bootstraps or adds it).
	fresh := testConfig(t, "fresh", nil)
	p.withTLS(&fresh)
	newcomer := startNode(t, fresh)
	if err := newcomer.admitRaftPeer("anyone"); err != nil {
		t.Fatalf("a node without configuration refused a farm node: %v", err)
	}

	cfg := testConfig(t, "solo", nil)
	cfg.BootstrapExpect = 1
	p.withTLS(&cfg)
	c := startNode(t, cfg)
	eventually(t, 10*time.Second, "solo bootstrapped", func() bool {
		return len(c.raft.GetConfiguration().Configuration().Servers) == 1
	})
	tests := []struct {
		name      string
		delivered *delivery
		peer      string
		ok        bool
	}{
		{name: "server of the configuration", peer: "solo", ok: true},
		{name: "stranger", peer: "n9"},
		{name: "leader named by a state message", delivered: &delivery{leader: "n9", voters: []string{"n9"}}, peer: "n9", ok: true},
		{name: "voter named by a state message", delivered: &delivery{leader: "n8", voters: []string{"n8", "n9"}}, peer: "n9", ok: true},
		{name: "stranger despite a state message", delivered: &delivery{leader: "n8", voters: []string{"n8"}}, peer: "n9"},
		{name: "stale state message", delivered: &delivery{leader: "n9", voters: []string{"n9"}, at: -time.Hour}, peer: "n9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := tt.delivered; d != nil {
				d.at += Monotonic()
				c.delivered.Store(d)
				defer c.delivered.Store(nil)
			}
			if err := c.admitRaftPeer(tt.peer); (err == nil) != tt.ok {
				t.Fatalf("admitRaftPeer(%q) = %v, want admitted %v", tt.peer, err, tt.ok)
			}
		})
	}
}

func TestTLSStreamRefusesTLS12(t *testing.T) {
	p := newTestPKI(t, testFarm)
	server := listenTLS(t, p.store("n1"), &fakePolicy{admit: map[string]bool{"n2": true}})
	serveEcho(server)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		conn, err := tls.Dial("tcp", server.Addr().String(), &tls.Config{
			MaxVersion:         v,
			Certificates:       []tls.Certificate{*p.clientCert("n2")},
			InsecureSkipVerify: true,
		})
		if err == nil {
			conn.Close()
		}
		if (err == nil) != (v == tls.VersionTLS13) {
			t.Errorf("handshake offering at most TLS version %x: %v", v, err)
		}
	}
}
