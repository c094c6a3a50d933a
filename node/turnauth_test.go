package node

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/wire"
)

const (
	strictRealm  = "usher.test"
	strictSecret = "s3cret"
)

// strictResponder is testResponder over server1 in strict mode: the TURN
// REST secret strictSecret and the static user alice with password pw.
func strictResponder(clk *fakeClock) *Responder {
	r := testResponder(clk, Solo, server1)
	r.cfg.TURNAuth = NewTURNAuth(strictRealm, []byte(strictSecret), map[string]string{"alice": "pw"})
	return r
}

// restCredentials returns a TURN REST username expiring at expiry for
// user, and its password under secret, as a coturn deployment's web
// service hands them out.
func restCredentials(expiry time.Time, user, secret string) (string, string) {
	name := strconv.FormatInt(expiry.Unix(), 10) + ":" + user
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(name))
	return name, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// authAllocate is a stock TURN Allocate with long-term credentials, signed
// when sign is set, with FINGERPRINT.
func authAllocate(t testing.TB, user, realm, pw, nonce string, sign bool) []byte {
	t.Helper()
	setters := []stun.Setter{stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
		stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}},
		stun.NewUsername(user), stun.NewRealm(realm), stun.NewNonce(nonce)}
	if sign {
		setters = append(setters, stun.NewLongTermIntegrity(user, realm, pw))
	}
	m, err := stun.Build(append(setters, stun.Fingerprint)...)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

// authAnswer is what a test reads from a strict-mode answer.
type authAnswer struct {
	m            *stun.Message
	code         stun.ErrorCode
	realm, nonce string
	attrs        []stun.AttrType
}

func readAuthAnswer(t testing.TB, b []byte) authAnswer {
	t.Helper()
	m := &stun.Message{Raw: bytes.Clone(b)}
	if err := m.Decode(); err != nil {
		t.Fatalf("answer: %v", err)
	}
	a := authAnswer{m: m}
	var ec stun.ErrorCodeAttribute
	if ec.GetFrom(m) == nil {
		a.code = ec.Code
	}
	if v, err := m.Get(stun.AttrRealm); err == nil {
		a.realm = string(v)
	}
	if v, err := m.Get(stun.AttrNonce); err == nil {
		a.nonce = string(v)
	}
	for _, at := range m.Attributes {
		a.attrs = append(a.attrs, at.Type)
	}
	if m.Contains(stun.AttrFingerprint) {
		if err := stun.Fingerprint.Check(m); err != nil {
			t.Errorf("answer's fingerprint: %v", err)
		}
	}
	return a
}

// challenge sends a stock Allocate without credentials from client and
// returns the nonce of its 401.
func challenge(t testing.TB, r *Responder, client netip.AddrPort) string {
	t.Helper()
	out, why := r.answer(nil, stockAllocate(), client)
	if why != dropNone {
		t.Fatal(why)
	}
	a := readAuthAnswer(t, out)
	if a.code != stun.CodeUnauthorized || a.realm != strictRealm || a.nonce == "" {
		t.Fatalf("challenge: code %d realm %q nonce %q", a.code, a.realm, a.nonce)
	}
	return a.nonce
}

// TestStrictAllocate walks stock TURN Allocates through strict mode: each
// case gets a fresh 401 for its nonce (unless it brings its own), then
// sends its retry, whose answer must be the 300 signed with the right key
// or the error code given, with REALM and a fresh NONCE; every 401 has the
// same attributes, whatever failed.
func TestStrictAllocate(t *testing.T) {
	const forged = "AAAAAAAAAAAAAAAA"
	for _, tc := range []struct {
		name     string
		user, pw func(now time.Time) (string, string)
		realm    string
		nonce    string // "" for the challenge's
		from     netip.AddrPort
		wait     time.Duration // between the challenge and the retry
		unsigned bool
		tamper   bool // flip a bit of REQUESTED-TRANSPORT after signing
		want     stun.ErrorCode
	}{
		{name: "rest user", user: rest(time.Hour, "bob", strictSecret), want: stun.CodeTryAlternate},
		{name: "rest user without name", user: rest(time.Hour, "", strictSecret), want: stun.CodeTryAlternate},
		{name: "static user", user: static("alice", "pw"), want: stun.CodeTryAlternate},
		{name: "static user, nonce nearly stale", user: static("alice", "pw"), wait: nonceLifetime - time.Second, want: stun.CodeTryAlternate},
		{name: "wrong password", user: static("alice", "pW"), want: stun.CodeUnauthorized},
		{name: "unknown user", user: static("mallory", "pw"), want: stun.CodeUnauthorized},
		{name: "rest user expired", user: rest(-time.Second, "bob", strictSecret), want: stun.CodeUnauthorized},
		{name: "rest user expiring during the wait", user: rest(time.Minute, "bob", strictSecret), wait: time.Minute, want: stun.CodeUnauthorized},
		{name: "rest user, wrong secret", user: rest(time.Hour, "bob", "other"), want: stun.CodeUnauthorized},
		{name: "wrong realm", user: static("alice", "pw"), realm: "other.test", want: stun.CodeUnauthorized},
		{name: "another client's nonce", user: static("alice", "pw"), from: clientB, want: stun.CodeUnauthorized},
		{name: "forged nonce", user: static("alice", "pw"), nonce: forged, want: stun.CodeUnauthorized},
		{name: "unsigned", user: static("alice", "pw"), unsigned: true, want: stun.CodeUnauthorized},
		{name: "tampered", user: static("alice", "pw"), tamper: true, want: stun.CodeUnauthorized},
		{name: "stale nonce", user: static("alice", "pw"), wait: nonceLifetime, want: stun.CodeStaleNonce},
		{name: "stale nonce, wrong password", user: static("alice", "bad"), wait: nonceLifetime, want: stun.CodeStaleNonce},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			r := strictResponder(clk)
			nonce := challenge(t, r, clientA)
			if tc.nonce != "" {
				nonce = tc.nonce
			}
			realm, from := strictRealm, clientA
			if tc.realm != "" {
				realm = tc.realm
			}
			if tc.from.IsValid() {
				from = tc.from
			}
			user, pw := tc.user(clk.Now())
			clk.Advance(tc.wait)
			pkt := authAllocate(t, user, realm, pw, nonce, !tc.unsigned)
			if tc.tamper {
				pkt = refingerprint(t, pkt, func(b []byte) { b[24] ^= 1 }) // REQUESTED-TRANSPORT's protocol
			}
			out, why := r.answer(nil, pkt, from)
			if why != dropNone {
				t.Fatal(why)
			}
			a := readAuthAnswer(t, out)
			if a.code != tc.want {
				t.Fatalf("code %d, want %d", a.code, tc.want)
			}
			if tc.want == stun.CodeTryAlternate {
				var alt stun.AlternateServer
				if err := alt.GetFrom(a.m); err != nil || alt.Port != int(server1.Port()) {
					t.Errorf("alternate server %v, %v", alt, err)
				}
				if err := stun.NewLongTermIntegrity(user, strictRealm, pw).Check(a.m); err != nil {
					t.Errorf("the 300's MESSAGE-INTEGRITY: %v", err)
				}
				if n := len(a.attrs); n < 2 || a.attrs[n-2] != stun.AttrMessageIntegrity || a.attrs[n-1] != stun.AttrFingerprint {
					t.Errorf("the 300 ends with %v, want MESSAGE-INTEGRITY, FINGERPRINT", a.attrs)
				}
				return
			}
			want := []stun.AttrType{stun.AttrErrorCode, stun.AttrRealm, stun.AttrNonce, stun.AttrFingerprint}
			if !slices.Equal(a.attrs, want) || a.realm != strictRealm {
				t.Errorf("attributes %v realm %q, want %v %q", a.attrs, a.realm, want, strictRealm)
			}
			if a.m.Contains(stun.AttrMessageIntegrity) {
				t.Error("an error answer carries MESSAGE-INTEGRITY")
			}
			// The answer's nonce is fresh: a right retry with it passes.
			if a.nonce == nonce && tc.want == stun.CodeStaleNonce {
				t.Error("438 repeats the stale nonce")
			}
			retry := authAllocate(t, "alice", strictRealm, "pw", a.nonce, true)
			out, _ = r.answer(nil, retry, from)
			if c := readAuthAnswer(t, out).code; c != stun.CodeTryAlternate {
				t.Errorf("retry with the answer's nonce: code %d", c)
			}
		})
	}
}

// refingerprint applies change to the message b, whose last attribute is
// FINGERPRINT, and gives it a FINGERPRINT that matches again.
func refingerprint(t *testing.T, b []byte, change func([]byte)) []byte {
	t.Helper()
	raw := bytes.Clone(b[:len(b)-8])
	change(raw)
	binary.BigEndian.PutUint16(raw[2:4], uint16(len(raw)-wire.HeaderSize))
	m := &stun.Message{Raw: raw}
	if err := m.Decode(); err != nil {
		t.Fatal(err)
	}
	if err := stun.Fingerprint.AddTo(m); err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

func rest(ttl time.Duration, user, secret string) func(time.Time) (string, string) {
	return func(now time.Time) (string, string) { return restCredentials(now.Add(ttl), user, secret) }
}

func static(user, pw string) func(time.Time) (string, string) {
	return func(time.Time) (string, string) { return user, pw }
}

// TestStrictLeavesOthersAlone checks that strict mode changes nothing for
// an Usher probe (a 300 with its ticket, unsigned) or a stock Binding (a
// Binding success), and takes no pick for a challenged Allocate.
func TestStrictLeavesOthersAlone(t *testing.T) {
	clk := newFakeClock()
	r := strictResponder(clk)
	challenge(t, r, clientA)
	if n := r.asg.Pending("a"); n != 0 {
		t.Errorf("a challenged Allocate took a pick (%d pending)", n)
	}
	out, why := r.answer(nil, probe(t, wire.Probe{Session: wire.SessionID{7}, PadTo: wire.ProbeSize}), clientA)
	if why != dropNone {
		t.Fatal(why)
	}
	if a := decode(t, out); a.Code != stun.CodeTryAlternate || a.Server != server1 || len(a.Ticket) != wire.TicketLen {
		t.Errorf("usher probe: %+v", a)
	}
	if readAuthAnswer(t, out).m.Contains(stun.AttrMessageIntegrity) {
		t.Error("usher probe's answer is signed")
	}
	out, why = r.answer(nil, stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint).Raw, clientA)
	if why != dropNone {
		t.Fatal(why)
	}
	if a := decode(t, out); !a.Success || a.Mapped != clientA {
		t.Errorf("stock binding: %+v", a)
	}
}

// TestStrictNonce checks the nonce on its own: good until its lifetime
// is over, stale after, bad for another client or when altered.
func TestStrictNonce(t *testing.T) {
	a := NewTURNAuth(strictRealm, nil, map[string]string{"alice": "pw"})
	now := time.Unix(1_800_000_000, 0)
	n := a.appendNonce(nil, clientA, now)
	if len(n) != nonceLen {
		t.Fatalf("nonce %q is %d bytes, want %d", n, len(n), nonceLen)
	}
	for _, tc := range []struct {
		name   string
		nonce  []byte
		client netip.AddrPort
		at     time.Time
		want   nonceState
	}{
		{"fresh", n, clientA, now, nonceGood},
		{"last second", n, clientA, now.Add(nonceLifetime - time.Second), nonceGood},
		{"expired", n, clientA, now.Add(nonceLifetime), nonceStale},
		{"other client", n, clientB, now, nonceBad},
		{"other port", n, netip.AddrPortFrom(clientA.Addr(), clientA.Port()+1), now, nonceBad},
		{"altered", append([]byte{n[0] ^ 1}, n[1:]...), clientA, now, nonceBad},
		{"short", n[:len(n)-1], clientA, now, nonceBad},
		{"other key", NewTURNAuth(strictRealm, nil, nil).appendNonce(nil, clientA, now), clientA, now, nonceBad},
	} {
		if got := a.checkNonce(tc.nonce, tc.client, tc.at); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestTURNAuthConfig checks the turn_auth block: parsed from HCL and
// flags, its secret file read at build, and every mistake reported under
// the key at fault.
func TestTURNAuthConfig(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "turn-secret")
	if err := os.WriteFile(secretFile, []byte(strictSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	openFile := filepath.Join(dir, "open")
	if err := os.WriteFile(openFile, []byte(strictSecret), 0o644); err != nil {
		t.Fatal(err)
	}
	src := `turn_auth {
  realm = "usher.test"
  secret_file = "` + secretFile + `"
  users = { alice = "pw" }
}`
	c, err := ParseConfig([]byte(src), "usher.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if c.TURNAuth.Realm != strictRealm || c.TURNAuth.Users["alice"] != "pw" {
		t.Fatalf("parsed %+v", c.TURNAuth)
	}
	var problems []string
	bad := func(key, value, problem string) { problems = append(problems, key+"="+value+": "+problem) }
	a := c.TURNAuth.build(bad)
	if a == nil || len(problems) != 0 {
		t.Fatalf("build: %v", problems)
	}
	user, _ := restCredentials(time.Now().Add(time.Hour), "bob", strictSecret)
	if _, ok := a.userKey([]byte(user), time.Now()); !ok || !bytes.Equal(a.secret, []byte(strictSecret)) {
		t.Errorf("secret_file not read: %q", a.secret)
	}
	if k, ok := a.userKey([]byte("alice"), time.Now()); !ok || k != longTermKey("alice", strictRealm, "pw") {
		t.Error("static user's key")
	}

	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var fc Config
	fc.RegisterFlags(fs)
	if err := fs.Parse([]string{"-turn-auth-realm", "r", "-turn-auth-users", "alice=pw", "-turn-auth-users", "bob=x=y"}); err != nil {
		t.Fatal(err)
	}
	if fc.TURNAuth.Realm != "r" || fc.TURNAuth.Users["alice"] != "pw" || fc.TURNAuth.Users["bob"] != "x=y" {
		t.Errorf("flags: %+v", fc.TURNAuth)
	}

	for _, tc := range []struct {
		name string
		cfg  TURNAuthConfig
		key  string
	}{
		{"no realm", TURNAuthConfig{Secret: "s"}, "turn_auth.realm"},
		{"long realm", TURNAuthConfig{Realm: strings.Repeat("r", maxRealmLen+1), Secret: "s"}, "turn_auth.realm"},
		{"no credentials", TURNAuthConfig{Realm: "r"}, "turn_auth.secret"},
		{"secret twice", TURNAuthConfig{Realm: "r", Secret: "s", SecretFile: secretFile}, "turn_auth.secret_file"},
		{"missing file", TURNAuthConfig{Realm: "r", SecretFile: filepath.Join(dir, "none")}, "turn_auth.secret_file"},
		{"open file", TURNAuthConfig{Realm: "r", SecretFile: openFile}, "turn_auth.secret_file"},
		{"empty password", TURNAuthConfig{Realm: "r", Users: map[string]string{"alice": ""}}, "turn_auth.users"},
	} {
		problems = nil
		if a := tc.cfg.build(bad); a != nil || len(problems) != 1 || !strings.HasPrefix(problems[0], tc.key+"=") {
			t.Errorf("%s: built %v, problems %q; want one naming %s", tc.name, a != nil, problems, tc.key)
		}
	}
	if a := (&TURNAuthConfig{}).build(bad); a != nil {
		t.Error("an empty block built a TURNAuth")
	}
}

// BenchmarkResponderStockAllocate is the default path's answer to a stock
// TURN Allocate (turn_auth off), for comparison with
// BenchmarkResponderStrictAllocate.
func BenchmarkResponderStockAllocate(b *testing.B) {
	clk := newFakeClock()
	r := testResponder(clk, Solo, server1, server2, server3)
	benchAnswer(b, clk, r, stockAllocate(), stun.CodeTryAlternate)
}

// BenchmarkResponderStrictAllocate is strict mode's answer to a signed
// stock TURN Allocate: the nonce and MESSAGE-INTEGRITY checked, and the
// 300 signed.
func BenchmarkResponderStrictAllocate(b *testing.B) {
	clk := newFakeClock()
	r := strictResponder(clk)
	// A nonce that outlives the benchmark's clock.
	nonce := r.cfg.TURNAuth.appendNonce(nil, clientA, clk.Now().Add(1000*time.Hour))
	user, pw := restCredentials(clk.Now().Add(1000*time.Hour), "bob", strictSecret)
	benchAnswer(b, clk, r, authAllocate(b, user, strictRealm, pw, string(nonce), true), stun.CodeTryAlternate)
}

// BenchmarkResponderStrictChallenge is strict mode's 401 to a stock TURN
// Allocate without credentials.
func BenchmarkResponderStrictChallenge(b *testing.B) {
	clk := newFakeClock()
	r := strictResponder(clk)
	benchAnswer(b, clk, r, stockAllocate(), stun.CodeUnauthorized)
}

func benchAnswer(b *testing.B, clk *fakeClock, r *Responder, pkt []byte, want stun.ErrorCode) {
	out, _ := r.answer(nil, pkt, clientA)
	if c := readAuthAnswer(b, out).code; c != want {
		b.Fatalf("code %d, want %d", c, want)
	}
	benchLoop(b, clk, r, pkt)
}

// FuzzResponderStrict checks strict mode against any datagram: answers
// keep the size rule, a stock Allocate is redirected only when its
// MESSAGE-INTEGRITY verifies under its user's key, the redirect is then
// signed, and a 401, 438 or 420 takes no pick.
func FuzzResponderStrict(f *testing.F) {
	seeds(f)
	clk := newFakeClock()
	r := strictResponder(clk)
	a := r.cfg.TURNAuth
	nonce := string(a.appendNonce(nil, clientA, clk.Now().Add(1000*time.Hour)))
	user, pw := restCredentials(clk.Now().Add(1000*time.Hour), "bob", strictSecret)
	f.Add(stockAllocate())
	f.Add(authAllocate(f, "alice", strictRealm, "pw", nonce, true))
	f.Add(authAllocate(f, user, strictRealm, pw, nonce, true))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		before := r.asg.Pending("a")
		out, why := r.answer(nil, pkt, clientA)
		if why != dropNone {
			return
		}
		if len(out) > 3*len(pkt) {
			t.Fatalf("%d-byte request, %d-byte answer", len(pkt), len(out))
		}
		if r.req.HasSession || r.req.Method != stun.MethodAllocate {
			return
		}
		ans := readAuthAnswer(t, out)
		switch ans.code {
		case stun.CodeTryAlternate:
			key, ok := a.userKey(r.req.Username, clk.Now())
			if !ok || !wire.VerifyIntegrity(pkt, &r.req, key[:]) {
				t.Fatalf("redirected a stock Allocate from %q without valid credentials", r.req.Username)
			}
			if err := stun.MessageIntegrity(key[:]).Check(ans.m); err != nil {
				t.Fatalf("redirect's MESSAGE-INTEGRITY: %v", err)
			}
		case stun.CodeUnauthorized, stun.CodeStaleNonce, stun.CodeUnknownAttribute:
			if r.asg.Pending("a") != before {
				t.Fatal("a refused Allocate took a pick")
			}
		default:
			t.Fatalf("stock Allocate answered %d", ans.code)
		}
	})
}
