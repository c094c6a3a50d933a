package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"
)

func TestHandoffRoundTrip(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	s := NewSealer(key)
	answer := []byte("\x01\x11\x00\x00answer bytes")
	for _, client := range []netip.AddrPort{
		netip.MustParseAddrPort("198.18.0.200:40000"),
		netip.MustParseAddrPort("[2001:db8::5]:1"),
	} {
		b, err := s.AppendHandoff([]byte("prefix"), &Handoff{Client: client, Sent: 1000, Answer: answer})
		if err != nil {
			t.Fatal(err)
		}
		b = b[len("prefix"):]
		if !IsHandoff(b) || len(b) != HandoffOverhead+len(answer) {
			t.Fatalf("handoff of %d bytes", len(b))
		}
		var h Handoff
		if err := s.OpenHandoff(b, &h, 1002, 5); err != nil {
			t.Fatal(err)
		}
		if h.Client != client || h.Sent != 1000 || !bytes.Equal(h.Answer, answer) {
			t.Errorf("opened %+v", h)
		}
	}
}

func TestHandoffRejects(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	s := NewSealer(key)
	good, _ := s.AppendHandoff(nil, &Handoff{Client: netip.MustParseAddrPort("198.18.0.200:4"), Sent: 1000, Answer: []byte("abcd")})
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 1
		return b
	}
	tests := []struct {
		name string
		b    []byte
		s    *Sealer
		now  uint32
		want error
	}{
		{"stun message", []byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42}, s, 1000, ErrNotHandoff},
		{"truncated", good[:len(good)-1], s, 1000, ErrHandoffInvalid},
		{"trailing byte", append(bytes.Clone(good), 0), s, 1000, ErrHandoffInvalid},
		{"client address changed", flip(19), s, 1000, ErrHandoffInvalid},
		{"client port changed", flip(21), s, 1000, ErrHandoffInvalid},
		{"answer changed", flip(handoffHeader), s, 1000, ErrHandoffInvalid},
		{"mac changed", flip(len(good) - 1), s, 1000, ErrHandoffInvalid},
		{"other key", good, NewSealer(bytes.Repeat([]byte{8}, 32)), 1000, ErrHandoffInvalid},
		{"too old", good, s, 1006, ErrHandoffStale},
		{"from the future", good, s, 998, ErrHandoffStale},
		{"header only", good[:HandoffOverhead-1], s, 1000, ErrHandoffInvalid},
	}
	for _, tt := range tests {
		var h Handoff
		if err := tt.s.OpenHandoff(tt.b, &h, tt.now, 5); !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestHandoffGolden(t *testing.T) {
	s := NewSealer(goldenKey)
	b, err := s.AppendHandoff(nil, &Handoff{Client: netip.MustParseAddrPort("198.18.0.200:40000"), Sent: 0x01020304, Answer: []byte{0xaa, 0xbb}})
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, `
		55534831                          # "USH1"
		00000000000000000000ffffc61200c8  # client 198.18.0.200, IPv4 mapped
		9c40                              # port 40000
		01020304                          # sent
		0002 aabb                         # answer length, answer
	`)
	if !bytes.Equal(b[:len(want)], want) {
		t.Errorf("handoff header\n got %x\nwant %x", b[:len(want)], want)
	}
}

func FuzzOpenHandoff(f *testing.F) {
	s := NewSealer(bytes.Repeat([]byte{7}, 32))
	good, _ := s.AppendHandoff(nil, &Handoff{Client: netip.MustParseAddrPort("198.18.0.200:4"), Sent: 1000, Answer: []byte("abcd")})
	f.Add(good)
	f.Add([]byte("USH1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Handoff
		if err := s.OpenHandoff(b, &h, 1000, 5); err == nil {
			// Only what the key sealed opens: re-sealing gives the input back.
			again, _ := s.AppendHandoff(nil, &h)
			if !bytes.Equal(again, b) {
				t.Fatalf("opened a handoff the key did not seal: %x", b)
			}
		}
	})
}

func TestHandoffKey(t *testing.T) {
	// Golden: the derivation is part of the protocol (docs/protocol.md).
	got := hex.EncodeToString(HandoffKey(bytes.Repeat([]byte{7}, 32)))
	want := "bdc8de64f6c826a087d2c67ef5495b2de958dd000ee289aa46669a18500c3675"
	if got != want {
		t.Errorf("HandoffKey = %s, want %s", got, want)
	}
	if bytes.Equal(HandoffKey([]byte{1}), HandoffKey([]byte{2})) {
		t.Error("two farm keys give one handoff key")
	}
}

func TestHandoffMAC(t *testing.T) {
	s := NewSealer(HandoffKey(bytes.Repeat([]byte{7}, 32)))
	pkt, err := s.AppendHandoff(nil, &Handoff{Client: netip.MustParseAddrPort("198.18.0.200:4000"), Sent: 10, Answer: []byte{1, 2, 3, 4}})
	if err != nil {
		t.Fatal(err)
	}
	if mac := HandoffMAC(pkt); !bytes.Equal(mac, pkt[len(pkt)-TicketMACLen:]) {
		t.Errorf("HandoffMAC = %x", mac)
	}
	for _, b := range [][]byte{pkt[:len(pkt)-1], pkt[:HandoffOverhead-1], append(append([]byte(nil), pkt...), 0)} {
		if mac := HandoffMAC(b); mac != nil {
			t.Errorf("HandoffMAC of %d bytes = %x, want nil", len(b), mac)
		}
	}
}
