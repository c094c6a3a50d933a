package cluster

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"

	"github.com/usherlb/usher/internal/pki"
)

// sentMsg is a message a test authenticator sent.
type sentMsg struct {
	to  string
	msg []byte
}

// testAuth is a gossip authenticator of node name whose sends are
// recorded, not sent.
type testAuth struct {
	*gossipAuth
	mu   sync.Mutex
	sent []sentMsg
}

func newTestAuth(t testing.TB, src TLS, name string) *testAuth {
	t.Helper()
	a, err := newGossipAuth(src, name, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	ta := &testAuth{gossipAuth: a}
	a.send = func(to string, msg []byte, _ bool) error {
		ta.mu.Lock()
		defer ta.mu.Unlock()
		ta.sent = append(ta.sent, sentMsg{to, bytes.Clone(msg)})
		return nil
	}
	return ta
}

// drain runs the queued jobs on the caller's goroutine.
func (a *testAuth) drain() {
	for {
		select {
		case j := <-a.jobs:
			a.do(j)
		default:
			return
		}
	}
}

// sentTo returns the number of messages sent, in all or to one node.
func (a *testAuth) sentCount(to string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, s := range a.sent {
		if to == "" || s.to == to {
			n++
		}
	}
	return n
}

// chainOf returns a store's certificate chain.
func chainOf(s *pki.Store) [][]byte { return s.Certificate().Certificate }

// signedBy signs msg as kind by signer with store src's key.
func signedBy(t testing.TB, src *pki.Store, msg []byte, kind byte, signer string) []byte {
	t.Helper()
	k, err := newLocalKey(src.Certificate())
	if err != nil {
		t.Fatal(err)
	}
	out, err := k.sign(bytes.Clone(msg), kind, signer)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTrailerFormat(t *testing.T) {
	id := keyID{1, 2, 3, 4, 5, 6, 7, 8}
	b := appendTrailer([]byte{0xaa}, id, []byte{0xde, 0xad})
	if got, want := hex.EncodeToString(b), "aa"+"0102030405060708"+"0002"+"dead"; got != want {
		t.Fatalf("trailer %s, want %s", got, want)
	}
	gotID, sig, err := parseTrailer(b[1:])
	if err != nil || gotID != id || !bytes.Equal(sig, []byte{0xde, 0xad}) {
		t.Fatalf("parseTrailer = %x %x %v", gotID, sig, err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short", b[1:9]},
		{"no signature", appendTrailer(nil, id, nil)},
		{"truncated", b[1 : len(b)-1]},
		{"trailing", append(bytes.Clone(b[1:]), 0)},
		{"too long", appendTrailer(nil, id, make([]byte, maxSigLen+1))},
	} {
		if _, _, err := parseTrailer(tc.b); !errors.Is(err, errUnauthenticated) {
			t.Errorf("%s: parseTrailer(%x) = %v, want errUnauthenticated", tc.name, tc.b, err)
		}
	}
}

func FuzzTrailer(f *testing.F) {
	f.Add(appendTrailer(nil, keyID{1}, []byte{1, 2, 3}))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, sig, err := parseTrailer(b)
		if err != nil {
			return
		}
		if again := appendTrailer(nil, id, sig); !bytes.Equal(again, b) {
			t.Fatalf("round trip changed the trailer:\n%x\n%x", b, again)
		}
	})
}

func TestCertMessages(t *testing.T) {
	req, err := appendCertRequest([]byte("x"), "n2", "n1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(req[1:]), "03"+"02"+"6e32"+"02"+"6e31"; got != want {
		t.Fatalf("cert request %s, want %s", got, want)
	}
	if from, to, err := decodeCertRequest(req[1:]); err != nil || from != "n2" || to != "n1" {
		t.Fatalf("decodeCertRequest = %q %q %v", from, to, err)
	}
	msg, err := appendCertMsg([]byte("x"), "n1", [][]byte{{0xc1, 0xc2}, {0xd1}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(msg[1:]), "04"+"02"+"6e31"+"02"+"0002c1c2"+"0001d1"; got != want {
		t.Fatalf("cert message %s, want %s", got, want)
	}
	name, chain, err := decodeCertMsg(msg[1:])
	if err != nil || name != "n1" || len(chain) != 2 || !bytes.Equal(chain[0], []byte{0xc1, 0xc2}) {
		t.Fatalf("decodeCertMsg = %q %x %v", name, chain, err)
	}
	good := msg[1:]
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"request: empty", nil},
		{"request: wrong kind", append([]byte{msgCert}, req[2:]...)},
		{"request: no to", []byte{msgCertRequest, 1, 'a', 0}},
		{"request: trailing", append(bytes.Clone(req[1:]), 0)},
		{"cert: truncated", good[:len(good)-1]},
		{"cert: trailing", append(bytes.Clone(good), 0)},
		{"cert: no certificate", []byte{msgCert, 1, 'a', 0}},
		{"cert: too many", []byte{msgCert, 1, 'a', maxChainCerts + 1}},
		{"cert: empty certificate", []byte{msgCert, 1, 'a', 1, 0, 0}},
		{"cert: no name", []byte{msgCert, 0, 1, 0, 1, 7}},
	} {
		var err error
		if strings.HasPrefix(tc.name, "request") {
			_, _, err = decodeCertRequest(tc.b)
		} else {
			_, _, err = decodeCertMsg(tc.b)
		}
		if !errors.Is(err, ErrBadReport) {
			t.Errorf("%s: %v, want ErrBadReport", tc.name, err)
		}
	}
	if _, err := appendCertMsg(nil, "n1", make([][]byte, maxChainCerts+1)); err == nil {
		t.Error("a chain of too many certificates encoded")
	}
	if _, err := appendCertRequest(nil, "", "n1"); err == nil {
		t.Error("a request without a sender encoded")
	}
}

func FuzzCertMsg(f *testing.F) {
	b, _ := appendCertMsg(nil, "n1", [][]byte{{1, 2, 3}})
	f.Add(b)
	r, _ := appendCertRequest(nil, "n2", "n1")
	f.Add(r)
	f.Fuzz(func(t *testing.T, b []byte) {
		if name, chain, err := decodeCertMsg(b); err == nil {
			again, err := appendCertMsg(nil, name, chain)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("cert message round trip: %v\n%x\n%x", err, b, again)
			}
		}
		if from, to, err := decodeCertRequest(b); err == nil {
			again, err := appendCertRequest(nil, from, to)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("cert request round trip: %v\n%x\n%x", err, b, again)
			}
		}
	})
}

// TestSignedMetaFits checks that the largest report with the largest
// signature of the keys Usher issues fits memberlist's metadata, and that
// a key whose signatures do not is refused at start.
func TestSignedMetaFits(t *testing.T) {
	if limit := MaxReportSize + trailerOverhead + 72; limit > memberlist.MetaMaxSize {
		t.Fatalf("a P-256 signed report takes up to %d bytes, memberlist allows %d", limit, memberlist.MetaMaxSize)
	}
	p := newTestPKI(t, testFarm)
	src := p.store("n1")
	worst, err := EncodeReport(Report{
		Service:  netip.MustParseAddrPort("[2001:db8::1]:65535"),
		RaftAddr: strings.Repeat("a", maxRaftAddrLen-6) + ":65535",
		API:      strings.Repeat("b", maxAPIAddrLen-6) + ":65535",
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if b := signedBy(t, src, worst, sigMeta, strings.Repeat("n", maxNodeNameLen)); len(b) > memberlist.MetaMaxSize {
			t.Fatalf("signed metadata of %d bytes", len(b))
		}
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b := p.bundle("n1", p.ca)
	b.Cert.PrivateKey = rsaKey
	if _, err := newGossipAuth(pki.NewStore(b), "n1", hclog.NewNullLogger()); err == nil {
		t.Fatal("an RSA-2048 key was accepted for gossip signatures")
	}
}

// TestLearnCertificate checks what the directory takes from a cert
// message: a chain of this farm naming the node the message names.
func TestLearnCertificate(t *testing.T) {
	p := newTestPKI(t, testFarm)
	a := newTestAuth(t, p.store("n2"), "n2")
	n1 := p.store("n1")
	other := newTestPKI(t, testFarm)
	tests := []struct {
		name  string
		as    string
		chain [][]byte
		ok    bool
	}{
		{"another node's certificate", "n1", chainOf(p.store("n3")), false},
		{"another CA", "n1", chainOf(other.store("n1")), false},
		{"garbage", "n1", [][]byte{{1, 2, 3}}, false},
		{"the node's own", "n1", chainOf(n1), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := appendCertMsg(nil, tt.as, tt.chain)
			if err != nil {
				t.Fatal(err)
			}
			before := a.unauthenticated.Load()
			a.take(msg)
			a.drain()
			_, known := a.lookup(tt.as, keyIDOf(n1.Certificate().Leaf))
			if known != tt.ok {
				t.Fatalf("n1's key known = %v, want %v", known, tt.ok)
			}
			if dropped := a.unauthenticated.Load() > before; dropped == tt.ok {
				t.Fatalf("dropped and counted = %v, want %v", dropped, !tt.ok)
			}
		})
	}
}

// TestForgetCertificates checks that the directory drops what it holds
// of nodes that are gone, keeps this node's own and the known nodes', and
// learns a forgotten node's certificate again when it comes back.
func TestForgetCertificates(t *testing.T) {
	p := newTestPKI(t, testFarm)
	stores := map[string]*pki.Store{}
	for _, n := range []string{"n1", "n2", "n3"} {
		stores[n] = p.store(n)
	}
	a := newTestAuth(t, stores["n2"], "n2")
	learn := func(name string) {
		msg, err := appendCertMsg(nil, name, chainOf(stores[name]))
		if err != nil {
			t.Fatal(err)
		}
		a.take(msg)
		a.drain()
	}
	known := func(name string) bool {
		_, ok := a.lookup(name, keyIDOf(stores[name].Certificate().Leaf))
		return ok
	}
	learn("n1")
	learn("n3")
	a.ask("n4")
	a.forget(map[string]bool{"n1": true})
	if !known("n1") || known("n3") || !known("n2") {
		t.Fatalf("after forgetting all but n1: n1 %v, n3 %v, this node %v; want true, false, true", known("n1"), known("n3"), known("n2"))
	}
	a.mu.Lock()
	_, asked := a.asked["n4"]
	left := len(a.certs)
	a.mu.Unlock()
	if asked || left != 2 {
		t.Errorf("request to n4 still pending %v, certificates of %d nodes left; want false, 2", asked, left)
	}
	learn("n3")
	if !known("n3") {
		t.Error("n3's certificate not learned again after it was forgotten")
	}
}

// TestCertAnswersBounded checks that cert requests are answered only when
// addressed to this node, at most once a second per requester and
// certAnswersPerSecond in all.
func TestCertAnswersBounded(t *testing.T) {
	p := newTestPKI(t, testFarm)
	a := newTestAuth(t, p.store("n1"), "n1")
	req := func(from, to string) {
		b, err := appendCertRequest(nil, from, to)
		if err != nil {
			t.Fatal(err)
		}
		a.take(b)
		a.drain()
	}
	for range 10 {
		req("n2", "n1")
	}
	req("n3", "n9") // not for n1
	if n := a.sentCount(""); n != 1 {
		t.Fatalf("%d answers to ten requests of one node and one for another node, want 1", n)
	}
	for i := range 3 * certAnswersPerSecond {
		req("x"+string(rune('a'+i)), "n1")
	}
	if n := a.sentCount(""); n > certAnswersPerSecond {
		t.Fatalf("%d answers in a burst, want at most %d", n, certAnswersPerSecond)
	}
	a.mu.Lock()
	name, chain, err := decodeCertMsg(a.sent[0].msg)
	a.mu.Unlock()
	if err != nil || name != "n1" || len(chain) != 1 {
		t.Fatalf("answer: %q %d certificates %v", name, len(chain), err)
	}
}

// TestSignedGossipTaken checks, in one node's member table with TLS on,
// which reports and metadata it takes: only those the named node signed.
func TestSignedGossipTaken(t *testing.T) {
	p := newTestPKI(t, testFarm)
	n1, n3 := p.store("n1"), p.store("n3")
	a := newTestAuth(t, p.store("n2"), "n2")
	for name, s := range map[string]*pki.Store{"n1": n1, "n3": n3} {
		msg, _ := appendCertMsg(nil, name, chainOf(s))
		a.take(msg)
	}
	a.drain()
	tb := newMemberTable(hclog.NewNullLogger(), func() []byte { return nil }, func(bool) {})
	tb.auth = a.gossipAuth
	meta := func(seq uint64, src *pki.Store) []byte {
		b, _ := EncodeReport(Report{Seq: seq, Sessions: uint32(seq)})
		return signedBy(t, src, b, sigMeta, "n1")
	}
	tb.NotifyJoin(&memberlist.Node{Name: "n1", Addr: net.IPv4(127, 0, 0, 1), Port: 7946, Meta: meta(10, n1)})
	if e, _ := tb.lookup("n1"); e.report.Seq != 10 {
		t.Fatalf("n1's own signed metadata was not taken: %+v", e.report)
	}
	report := func(seq uint64) []byte {
		b, _ := appendReportMsg(nil, "n1", Report{Seq: seq, Sessions: uint32(seq)})
		return b
	}
	flip := func(b []byte) []byte { b = bytes.Clone(b); b[len(b)-1] ^= 1; return b }
	tests := []struct {
		name  string
		meta  bool
		b     []byte
		taken bool
	}{
		{"report signed by another node", false, signedBy(t, n3, report(20), sigReport, "n1"), false},
		{"report signed by another node as itself", false, signedBy(t, n3, report(20), sigReport, "n3"), false},
		{"unsigned report", false, report(20), false},
		{"report with a bad signature", false, flip(signedBy(t, n1, report(20), sigReport, "n1")), false},
		{"report signed as metadata", false, signedBy(t, n1, report(20), sigMeta, "n1"), false},
		{"report signed by its node", false, signedBy(t, n1, report(20), sigReport, "n1"), true},
		{"metadata signed by another node", true, meta(30, n3), false},
		{"unsigned metadata", true, func() []byte { b, _ := EncodeReport(Report{Seq: 30}); return b }(), false},
		{"metadata with a bad signature", true, flip(meta(30, n1)), false},
		{"metadata signed by its node", true, meta(30, n1), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := tb.lookup("n1")
			dropped := a.unauthenticated.Load()
			if tt.meta {
				tb.NotifyUpdate(&memberlist.Node{Name: "n1", Addr: net.IPv4(127, 0, 0, 1), Port: 7946, Meta: tt.b})
			} else {
				tb.NotifyMsg(tt.b)
			}
			after, _ := tb.lookup("n1")
			if taken := after.report.Seq != before.report.Seq; taken != tt.taken {
				t.Fatalf("taken = %v (seq %d -> %d), want %v", taken, before.report.Seq, after.report.Seq, tt.taken)
			}
			if counted := a.unauthenticated.Load() > dropped; counted == tt.taken {
				t.Fatalf("counted as unauthenticated = %v, want %v", counted, !tt.taken)
			}
		})
	}
}

// TestUnknownKeyFetchesCertificate checks that metadata signed by a key
// not known yet is kept, the certificate asked for, and the metadata
// taken once the certificate arrives.
func TestUnknownKeyFetchesCertificate(t *testing.T) {
	p := newTestPKI(t, testFarm)
	n1 := p.store("n1")
	a := newTestAuth(t, p.store("n2"), "n2")
	changes := 0
	tb := newMemberTable(hclog.NewNullLogger(), func() []byte { return nil }, func(bool) { changes++ })
	tb.auth = a.gossipAuth
	a.learned = tb.retryMeta
	b, _ := EncodeReport(Report{Seq: 7, Sessions: 3})
	tb.NotifyJoin(&memberlist.Node{Name: "n1", Addr: net.IPv4(127, 0, 0, 1), Port: 7946, Meta: signedBy(t, n1, b, sigMeta, "n1")})
	if e, _ := tb.lookup("n1"); !e.reportedAt.IsZero() {
		t.Fatal("metadata of an unknown key was taken")
	}
	a.drain()
	if n := a.sentCount("n1"); n != 1 {
		t.Fatalf("%d cert requests to n1, want 1", n)
	}
	msg, _ := appendCertMsg(nil, "n1", chainOf(n1))
	a.take(msg)
	a.drain()
	if e, _ := tb.lookup("n1"); e.report.Seq != 7 || e.key != keyIDOf(n1.Certificate().Leaf) {
		t.Fatalf("after the certificate arrived n1's report is %+v", e.report)
	}
}

// TestGossipCertificateReload runs a TLS farm, reloads one node's
// certificate (a new key) and checks that the others take its reports
// signed with the new key.
func TestGossipCertificateReload(t *testing.T) {
	p := newTestPKI(t, testFarm)
	nodes, stores := startTLSFarm(t, p)
	waitSingleServer(t, nodes, 20*time.Second)
	next := p.bundle("n3", p.ca)
	stores["n3"].Set(next)
	want := keyIDOf(next.Cert.Leaf)
	n3 := nodeNamed(nodes, "n3")
	for i, c := range nodes {
		n3.SetReport(Report{Sessions: uint32(40 + i), Capacity: 100})
		eventually(t, 10*time.Second, "n3's new key on "+c.Name(), func() bool {
			n3.SetReport(Report{Sessions: uint32(40 + i), Capacity: 100})
			e, ok := c.members.lookup("n3")
			return ok && e.key == want && e.report.Sessions == uint32(40+i)
		})
	}
}

// TestForgedGossipInFarm is the attack of a gossip key holder with a
// valid certificate for n3 on a running TLS farm: report messages and
// metadata naming n1, sent to every node, never change n1's report there.
func TestForgedGossipInFarm(t *testing.T) {
	p := newTestPKI(t, testFarm)
	nodes := startFarmWith(t, 3, 3, nil, p.withTLS)
	waitSingleServer(t, nodes, 20*time.Second)
	n1, n3 := nodeNamed(nodes, "n1"), nodeNamed(nodes, "n3")
	n1.SetReport(Report{Sessions: 1, Capacity: 100})
	for _, c := range nodes {
		eventually(t, 5*time.Second, "n1's report on "+c.Name(), func() bool {
			m, ok := member(c, "n1")
			return ok && m.Report.Sessions == 1
		})
	}
	attacker := n3.cfg.TLS.(*pki.Store)
	forged := Report{Sessions: 999, Capacity: 100, Seq: 1 << 62, RaftAddr: n3.RaftAddr()}
	msg, _ := appendReportMsg(nil, "n1", forged)
	meta, _ := EncodeReport(forged)
	before := map[string]uint64{}
	for _, c := range nodes {
		before[c.Name()] = c.Stats().GossipUnauthenticated
	}
	for _, c := range without(nodes, n1) {
		to := memberlist.Node{Name: c.Name(), Addr: c.GossipAddr().Addr().AsSlice(), Port: c.GossipAddr().Port()}
		for _, b := range [][]byte{msg, signedBy(t, attacker, msg, sigReport, "n1"), signedBy(t, attacker, msg, sigReport, "n3")} {
			if err := n3.ml.SendBestEffort(&to, b); err != nil {
				t.Fatal(err)
			}
		}
		// Metadata as memberlist would deliver it from a forged alive
		// message.
		c.members.NotifyUpdate(&memberlist.Node{Name: "n1", Addr: n1.GossipAddr().Addr().AsSlice(), Port: n1.GossipAddr().Port(),
			Meta: signedBy(t, attacker, meta, sigMeta, "n1")})
	}
	for _, c := range without(nodes, n1) {
		eventually(t, 5*time.Second, "forgeries counted on "+c.Name(), func() bool {
			return c.Stats().GossipUnauthenticated >= before[c.Name()]+2
		})
	}
	time.Sleep(2 * DefaultPublishInterval)
	for _, c := range nodes {
		if m, _ := member(c, "n1"); m.Report.Sessions == 999 || m.Report.Seq == 1<<62 {
			t.Errorf("%s took a forged report of n1: %+v", c.Name(), m.Report)
		}
	}
}

// TestMetaAsksOnlyWhenWanted checks that metadata signed by an unknown key
// makes a node ask for the signer's certificate only when askForMeta says
// so, while any other signed message always does.
func TestMetaAsksOnlyWhenWanted(t *testing.T) {
	p := newTestPKI(t, testFarm)
	n1 := p.store("n1")
	b, _ := EncodeReport(Report{Seq: 7})
	for _, tc := range []struct {
		name       string
		askForMeta func() bool
		kind       byte
		want       int
	}{
		{"meta, no predicate", nil, sigMeta, 1},
		{"meta, may lead", func() bool { return true }, sigMeta, 1},
		{"meta, outside raft", func() bool { return false }, sigMeta, 0},
		{"report, outside raft", func() bool { return false }, sigReport, 1},
		{"state, outside raft", func() bool { return false }, sigState, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newTestAuth(t, p.store("n2"), "n2")
			a.askForMeta = tc.askForMeta
			signed := signedBy(t, n1, b, tc.kind, "n1")
			trailerAt := len(b)
			if _, err := a.verify(tc.kind, "n1", signed[:trailerAt], signed[trailerAt:]); !errors.Is(err, errUnknownKey) {
				t.Fatalf("verify: %v, want errUnknownKey", err)
			}
			a.drain()
			if n := a.sentCount("n1"); n != tc.want {
				t.Fatalf("%d cert requests to n1, want %d", n, tc.want)
			}
		})
	}
}

// TestPushedSparesAnswerBudget checks that a request from a node this one
// pushed its certificate to a moment ago is neither answered again nor
// counted against the answer budget (the leader pushes its certificate
// to each member it sends a first state message to, and the members may
// ask before it arrives).
func TestPushedSparesAnswerBudget(t *testing.T) {
	p := newTestPKI(t, testFarm)
	a := newTestAuth(t, p.store("n1"), "n1")
	a.push("n2")
	a.drain()
	b, err := appendCertRequest(nil, "n2", "n1")
	if err != nil {
		t.Fatal(err)
	}
	a.take(b)
	a.drain()
	if n := a.sentCount("n2"); n != 1 {
		t.Fatalf("%d certificates sent to n2, want the push alone", n)
	}
	if a.answers != 0 {
		t.Fatalf("the request spent %d of the answer budget", a.answers)
	}
}
