package wire

import (
	"bytes"
	"crypto/md5"
	"errors"
	"net"
	"testing"

	"github.com/pion/stun/v3"
)

// rfc5769LongTerm is the sample request with long-term authentication of
// RFC 5769, section 2.4: USERNAME "マトリックス", NONCE, REALM "example.org"
// and MESSAGE-INTEGRITY under the password "TheMatrIX" (SASLprep'd).
const rfc5769LongTerm = `
	00 01 00 60  21 12 a4 42  78 ad 34 33  c6 ad 72 c0  29 da 41 2e
	00 06 00 12  e3 83 9e e3  83 88 e3 83  aa e3 83 83  e3 82 af e3  82 b9 00 00 # USERNAME
	00 15 00 1c  66 2f 2f 34  39 39 6b 39  35 34 64 36  4f 4c 33 34  6f 4c 39 46  53 54 76 79  36 34 73 41 # NONCE
	00 14 00 0b  65 78 61 6d  70 6c 65 2e  6f 72 67 00 # REALM
	00 08 00 14  f6 70 24 65  6d d6 4a 3e  02 b8 e0 71  2e 85 c9 a2  8c a8 96 66 # MESSAGE-INTEGRITY
`

// longTermKey is the long-term credential key MD5(user ":" realm ":" pw).
func longTermKey(user, realm, pw string) []byte {
	k := md5.Sum([]byte(user + ":" + realm + ":" + pw))
	return k[:]
}

func TestVerifyIntegrityRFC5769(t *testing.T) {
	b := unhex(t, rfc5769LongTerm)
	var d Decoder
	var r Request
	if err := d.DecodeRequest(b, &r); err != nil {
		t.Fatal(err)
	}
	const user, realm = "\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9", "example.org"
	if string(r.Username) != user || string(r.Realm) != realm || string(r.Nonce) != "f//499k954d6OL34oL9FSTvy64sA" {
		t.Fatalf("username %q realm %q nonce %q", r.Username, r.Realm, r.Nonce)
	}
	if r.Integrity != len(b)-24 {
		t.Fatalf("integrity at %d, want %d", r.Integrity, len(b)-24)
	}
	for _, tc := range []struct {
		name string
		key  []byte
		flip int // byte to flip, or -1
		want bool
	}{
		{"good", longTermKey(user, realm, "TheMatrIX"), -1, true},
		{"wrong password", longTermKey(user, realm, "TheMatrix"), -1, false},
		{"wrong realm", longTermKey(user, "example.com", "TheMatrIX"), -1, false},
		{"tampered nonce", longTermKey(user, realm, "TheMatrIX"), 48, false},
		{"tampered header", longTermKey(user, realm, "TheMatrIX"), 9, false},
		{"tampered mac", longTermKey(user, realm, "TheMatrIX"), len(b) - 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := bytes.Clone(b)
			if tc.flip >= 0 {
				m[tc.flip] ^= 1
			}
			if got := VerifyIntegrity(m, &r, tc.key); got != tc.want {
				t.Errorf("VerifyIntegrity = %v, want %v", got, tc.want)
			}
		})
	}
	if VerifyIntegrity(b, &Request{}, longTermKey(user, realm, "TheMatrIX")) {
		t.Error("a request without MESSAGE-INTEGRITY verified")
	}
}

// signedAllocate builds with pion a stock Allocate with long-term
// credentials, and FINGERPRINT when fp is set.
func signedAllocate(t testing.TB, user, realm, pw, nonce string, fp bool) []byte {
	t.Helper()
	setters := []stun.Setter{
		stun.NewTransactionIDSetter(goldenTx),
		stun.NewType(stun.MethodAllocate, stun.ClassRequest),
		stun.NewUsername(user), stun.NewRealm(realm), stun.NewNonce(nonce),
		stun.NewLongTermIntegrity(user, realm, pw),
	}
	if fp {
		setters = append(setters, stun.Fingerprint)
	}
	m, err := stun.Build(setters...)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

// Each answer of the strict mode is held to the bytes pion/stun builds for
// it, and its MESSAGE-INTEGRITY and FINGERPRINT check with pion.
func TestAuthAnswersMatchPion(t *testing.T) {
	const user, realm, pw, nonce = "1800000000:alice", "usher.test", "pw", "bm9uY2U"
	key := longTermKey(user, realm, pw)
	for _, fp := range []bool{false, true} {
		var d Decoder
		var req Request
		if err := d.DecodeRequest(signedAllocate(t, user, realm, pw, nonce, fp), &req); err != nil {
			t.Fatal(err)
		}
		if req.Fingerprint != fp {
			t.Fatalf("fingerprint %v, want %v", req.Fingerprint, fp)
		}
		// With FINGERPRINT after it, the length VerifyIntegrity hashes is
		// not the message's own.
		if !VerifyIntegrity(signedAllocate(t, user, realm, pw, nonce, fp), &req, key) {
			t.Errorf("fp=%v: pion's MESSAGE-INTEGRITY does not verify", fp)
		}
		if VerifyIntegrity(signedAllocate(t, user, realm, "pW", nonce, fp), &req, key) {
			t.Errorf("fp=%v: a wrong password verifies", fp)
		}
		for _, server := range []struct {
			name string
			ip   net.IP
		}{{"v4", net.IP(server4.Addr().AsSlice())}, {"v6", net.IP(server6.Addr().AsSlice())}} {
			ap := server4
			if server.name == "v6" {
				ap = server6
			}
			var e Encoder
			got, err := e.AppendSignedRedirect([]byte("x"), &req, &Redirect{Server: ap, Term: 3}, key, 1000)
			if err != nil {
				t.Fatal(err)
			}
			setters := []stun.Setter{
				stun.NewTransactionIDSetter(goldenTx),
				stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse),
				stun.ErrorCodeAttribute{Code: stun.CodeTryAlternate},
				&stun.AlternateServer{IP: server.ip, Port: int(ap.Port())},
				stun.NewLongTermIntegrity(user, realm, pw),
			}
			if fp {
				setters = append(setters, stun.Fingerprint)
			}
			want, err := stun.Build(setters...)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[1:], want.Raw) || got[0] != 'x' {
				t.Errorf("fp=%v %s: signed redirect\n%s\nwant\n%s", fp, server.name, dump(got[1:]), dump(want.Raw))
			}
			m := decodeStun(t, got[1:])
			if err := stun.NewLongTermIntegrity(user, realm, pw).Check(m); err != nil {
				t.Errorf("fp=%v %s: pion rejects the integrity: %v", fp, server.name, err)
			}
		}
		for _, code := range []stun.ErrorCode{stun.CodeUnauthorized, stun.CodeStaleNonce} {
			var e Encoder
			got, err := e.AppendAuthError(nil, &req, code, []byte(realm), []byte(nonce), 1000)
			if err != nil {
				t.Fatal(err)
			}
			setters := []stun.Setter{
				stun.NewTransactionIDSetter(goldenTx),
				stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse),
				stun.ErrorCodeAttribute{Code: code},
				stun.NewRealm(realm), stun.NewNonce(nonce),
			}
			if fp {
				setters = append(setters, stun.Fingerprint)
			}
			want, err := stun.Build(setters...)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want.Raw) {
				t.Errorf("fp=%v %d:\n%s\nwant\n%s", fp, code, dump(got), dump(want.Raw))
			}
		}
	}
}

// The strict answers keep to the size limit: FINGERPRINT is dropped first,
// REALM, NONCE and MESSAGE-INTEGRITY never.
func TestAuthAnswersSizeLimit(t *testing.T) {
	const user, realm, pw, nonce = "alice", "usher.test", "pw", "bm9uY2U"
	key := longTermKey(user, realm, pw)
	var d Decoder
	var req Request
	if err := d.DecodeRequest(signedAllocate(t, user, realm, pw, nonce, true), &req); err != nil {
		t.Fatal(err)
	}
	minimal := HeaderSize + sizeErrorCode + addrSize(server4) + sizeIntegrity
	for _, tc := range []struct {
		limit  int
		size   int
		err    error
		withFP bool
	}{
		{minimal + sizeFingerprint, minimal + sizeFingerprint, nil, true},
		{minimal + sizeFingerprint - 1, minimal, nil, false},
		{minimal, minimal, nil, false},
		{minimal - 1, 0, ErrTooLarge, false},
	} {
		var e Encoder
		got, err := e.AppendSignedRedirect(nil, &req, &Redirect{Server: server4}, key, tc.limit)
		if !errors.Is(err, tc.err) || len(got) != tc.size {
			t.Errorf("limit %d: %d bytes, %v; want %d, %v", tc.limit, len(got), err, tc.size, tc.err)
			continue
		}
		if err != nil {
			continue
		}
		m := decodeStun(t, got)
		if m.Contains(stun.AttrFingerprint) != tc.withFP {
			t.Errorf("limit %d: fingerprint %v, want %v", tc.limit, !tc.withFP, tc.withFP)
		}
		if err := stun.NewLongTermIntegrity(user, realm, pw).Check(m); err != nil {
			t.Errorf("limit %d: %v", tc.limit, err)
		}
	}
	errSize := HeaderSize + sizeErrorCode + 4 + padded(len(realm)) + 4 + padded(len(nonce))
	var e Encoder
	if got, err := e.AppendAuthError(nil, &req, stun.CodeUnauthorized, []byte(realm), []byte(nonce), errSize); err != nil || len(got) != errSize {
		t.Errorf("401 at its size: %d bytes, %v", len(got), err)
	}
	if got, err := e.AppendAuthError(nil, &req, stun.CodeUnauthorized, []byte(realm), []byte(nonce), errSize-1); !errors.Is(err, ErrTooLarge) || len(got) != 0 {
		t.Errorf("401 one byte short: %d bytes, %v", len(got), err)
	}
}

// FuzzVerifyIntegrity holds VerifyIntegrity to pion's check of
// MESSAGE-INTEGRITY on any datagram the decoder accepts.
func FuzzVerifyIntegrity(f *testing.F) {
	f.Add(unhex(f, rfc5769LongTerm))
	f.Add(signedAllocate(f, "alice", "usher.test", "pw", "n", true))
	f.Add(signedAllocate(f, "1800000000:bob", "usher.test", "x", "nonce", false))
	key := longTermKey("alice", "usher.test", "pw")
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Decoder
		var r Request
		if err := d.DecodeRequest(b, &r); err != nil {
			return
		}
		if r.Integrity != 0 && !bytes.Equal(b[r.Integrity:r.Integrity+2], []byte{0x00, 0x08}) {
			t.Fatalf("integrity offset %d points at %x", r.Integrity, b[r.Integrity:r.Integrity+2])
		}
		m := &stun.Message{Raw: bytes.Clone(b)}
		if err := m.Decode(); err != nil {
			t.Fatal(err)
		}
		want := stun.MessageIntegrity(key).Check(m) == nil
		if got := VerifyIntegrity(b, &r, key); got != want {
			t.Fatalf("VerifyIntegrity = %v, pion says %v", got, want)
		}
	})
}
