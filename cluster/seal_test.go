package cluster

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/usherlb/usher/internal/pki"
)

func TestSecrets(t *testing.T) {
	b := appendSecrets(nil, &State{TicketKey: []byte{0xaa, 0xbb}})
	if got, want := hex.EncodeToString(b), "01"+"0002"+"aabb"; got != want {
		t.Fatalf("secrets %s, want %s", got, want)
	}
	var st State
	if err := decodeSecrets(append(b, 0x7f, 0, 1, 5), &st); err != nil || !bytes.Equal(st.TicketKey, []byte{0xaa, 0xbb}) {
		t.Fatalf("decodeSecrets = %x, %v (an unknown entry is skipped)", st.TicketKey, err)
	}
	k1, k2 := bytes.Repeat([]byte{0x11}, 16), bytes.Repeat([]byte{0x22}, 16)
	kr := Keyring{Keys: [][]byte{k1, k2}, Primary: 1}
	b2 := appendSecrets(nil, &State{Keyring: kr})
	if got, want := hex.EncodeToString(b2), "02"+"0023"+"01"+"10"+hex.EncodeToString(k1)+"10"+hex.EncodeToString(k2); got != want {
		t.Fatalf("keyring secret %s, want %s", got, want)
	}
	st = State{}
	if err := decodeSecrets(b2, &st); err != nil || !st.Keyring.Equal(kr) {
		t.Fatalf("decodeSecrets(keyring) = %v, %v, want %v", st.Keyring, err, kr)
	}
	badKeyrings := [][]byte{
		{2, 0, 0},              // empty value
		{2, 0, 1, 0},           // no key
		{2, 0, 3, 5, 1, 0xaa},  // primary out of range, key of 1 byte
		{2, 0, 3, 0, 16, 0xaa}, // truncated key
		{2, 0, 2, 0, 3},        // key of 3 bytes, truncated
	}
	for _, bad := range append(badKeyrings, []byte{1}, []byte{1, 0, 3, 1}, append(bytes.Clone(b), b...), []byte{1, 0, 0}) {
		if err := decodeSecrets(bad, &State{}); !errors.Is(err, ErrBadReport) {
			t.Errorf("decodeSecrets(%x) = %v, want ErrBadReport", bad, err)
		}
	}
}

func FuzzSealed(f *testing.F) {
	p := newTestPKI(f, testFarm)
	n1 := p.store("n1")
	own, err := newLocalKey(n1.Certificate())
	if err != nil {
		f.Fatal(err)
	}
	blob, err := sealTo([]byte{1, 0, 1, 7}, []byte("aad"), own.leaf)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(blob)
	f.Fuzz(func(t *testing.T, b []byte) {
		// Nothing but the sealed blob opens, and nothing panics.
		plain, err := openSealed(b, []byte("aad"), own)
		if err == nil && !bytes.Equal(b, blob) {
			t.Fatalf("a forged blob opened to %x", plain)
		}
		var st State
		decodeSecrets(b, &st)
	})
}

// TestSealedSecret checks that a sealed secret opens only with the
// recipient's key and only with the clear part it was sealed with, and
// that the ticket key does not appear in the message.
func TestSealedSecret(t *testing.T) {
	p := newTestPKI(t, testFarm)
	keyOf := func(node string) *localKey {
		k, err := newLocalKey(p.store(node).Certificate())
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	n4, n3 := keyOf("n4"), keyOf("n3")
	ticket := bytes.Repeat([]byte{0x5a}, TicketKeySize)
	st := &State{TicketKey: ticket, Index: 9, Drained: map[string]bool{"n4": true}}
	seal := func(plain, aad []byte) ([]byte, error) { return sealTo(plain, aad, n4.leaf) }
	msg, err := appendStateMsg(nil, "n4", st, []string{"n1"}, "n1", 3, seal)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(msg, ticket) || bytes.Contains(msg, ticket[:8]) {
		t.Fatal("the sealed state message holds the ticket key in clear")
	}
	m, err := parseStateMsg(msg)
	if err != nil || !m.sealed {
		t.Fatalf("parseStateMsg = %+v, %v", m, err)
	}
	plain, err := openSealed(m.secret, m.header, n4)
	if err != nil {
		t.Fatalf("the recipient cannot open its secret: %v", err)
	}
	var got State
	if err := decodeSecrets(plain, &got); err != nil || !bytes.Equal(got.TicketKey, ticket) {
		t.Fatalf("opened %x, %v", got.TicketKey, err)
	}
	// Another node of the farm, even sealed-to's key id forged.
	forged := bytes.Clone(m.secret)
	copy(forged, n3.id[:])
	if _, err := openSealed(forged, m.header, n3); !errors.Is(err, errSeal) {
		t.Fatalf("another node opened the secret: %v", err)
	}
	if _, err := openSealed(m.secret, m.header, n3); !errors.Is(err, errSeal) {
		t.Fatalf("another node opened the secret: %v", err)
	}
	// The clear part is bound: another index or recipient name fails.
	header := bytes.Clone(m.header)
	header[len(header)-2] ^= 1 // the term
	if _, err := openSealed(m.secret, header, n4); !errors.Is(err, errSeal) {
		t.Fatalf("the secret opened with another clear part: %v", err)
	}
}

// TestStateMsgUnderTLS runs a TLS farm with a member outside raft: it gets
// the ticket key and its drain from the leader, sealed to it; a message a
// gossip key holder sniffs does not open with its key; and state messages
// forged by another node of the farm change nothing.
func TestStateMsgUnderTLS(t *testing.T) {
	nodes, leader := startOneVoterTLSFarm(t)
	outside := nodeNamed(nodes, "n3")
	eventually(t, 20*time.Second, "the ticket key on the member outside raft", func() bool {
		return len(outside.State().TicketKey) == TicketKeySize
	})
	key := leader.State().TicketKey
	if !bytes.Equal(outside.State().TicketKey, key) {
		t.Fatal("the member outside raft has another ticket key")
	}
	if err := leader.SetDrain(outside.Name(), true); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the drain reaches the member outside raft", func() bool { return outside.State().Drained[outside.Name()] })

	// Sniffed: the message the leader sends, in another node's hands.
	st := leader.fsm.state.Load()
	msg, err := leader.encodeStateMsg(nil, outside.Name(), st, []string{leader.Name()}, leader.raft.CurrentTerm())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(msg, key) {
		t.Fatal("the state message holds the ticket key in clear")
	}
	sniffer := nodeNamed(nodes, "n2")
	m, err := parseStateMsg(msg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openSealed(m.secret, m.header, sniffer.auth.key()); err == nil {
		t.Fatal("another node of the farm opened the member's sealed secret")
	}

	// Forged: a newer state, undrained with another ticket key, signed by
	// the sniffer naming the leader, naming itself, and unsigned in clear.
	// The member is sent the sniffer's certificate (a member outside the
	// raft configuration fetches none of the others' on its own), so the
	// second one is refused for naming a leader that is not the member's.
	sniffer.auth.push(outside.Name())
	eventually(t, 5*time.Second, "the sniffer's key known to the member", func() bool {
		_, ok := outside.auth.lookup(sniffer.Name(), sniffer.auth.key().id)
		return ok
	})
	before := outside.Stats().GossipUnauthenticated
	forgedState := &State{TicketKey: bytes.Repeat([]byte{1}, TicketKeySize), Index: st.Index + 100}
	sealToOutside := func(plain, aad []byte) ([]byte, error) { return sealTo(plain, aad, outside.auth.key().leaf) }
	term := leader.raft.CurrentTerm() + 5
	var forged [][]byte
	for _, claimed := range []string{leader.Name(), sniffer.Name()} {
		b, err := appendStateMsg(nil, outside.Name(), forgedState, []string{sniffer.Name()}, claimed, term, sealToOutside)
		if err != nil {
			t.Fatal(err)
		}
		forged = append(forged, signedBy(t, sniffer.cfg.TLS.(*pki.Store), b, sigState, claimed))
	}
	clear, _ := appendStateMsg(nil, outside.Name(), forgedState, []string{sniffer.Name()}, leader.Name(), term, nil)
	forged = append(forged, clear)
	for _, b := range forged {
		outside.members.NotifyMsg(b)
	}
	if got := outside.Stats().GossipUnauthenticated - before; got < uint64(len(forged)) {
		t.Errorf("%d of %d forged state messages counted", got, len(forged))
	}
	time.Sleep(2 * stateResend)
	if got := outside.State(); !bytes.Equal(got.TicketKey, key) || !got.Drained[outside.Name()] {
		t.Fatalf("a forged state message took effect: ticket key %x drained %v", got.TicketKey, got.Drained)
	}
	if n, _ := outside.Leader(); n != leader.Name() {
		t.Fatalf("the member names leader %q", n)
	}
}
