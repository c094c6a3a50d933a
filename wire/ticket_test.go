package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/dchest/siphash"
)

func TestTicketVerify(t *testing.T) {
	tk := goldenTicket()
	if len(tk) != TicketLen || TicketLen > MaxTicketLen {
		t.Fatalf("ticket is %d bytes, TicketLen %d", len(tk), TicketLen)
	}
	otherKey := bytes.Repeat([]byte{0x42}, 32)
	mutate := func(i int, x byte) []byte {
		b := append([]byte(nil), tk...)
		b[i] ^= x
		return b
	}
	otherSession := goldenSession
	otherSession[7] ^= 1
	tests := []struct {
		name    string
		key     []byte
		ticket  []byte
		session SessionID
		client  netip.AddrPort
		server  netip.AddrPort
		now     uint32
		want    error
	}{
		{"valid", goldenKey, tk, goldenSession, client4, server4, goldenExpiry - 3600, nil},
		{"valid at expiry", goldenKey, tk, goldenSession, client4, server4, goldenExpiry, nil},
		{"valid at zero time", goldenKey, tk, goldenSession, client4, server4, 0, nil},
		{"ipv4-mapped addresses are the same", goldenKey, tk, goldenSession,
			netip.MustParseAddrPort("[::ffff:198.51.100.7]:50000"),
			netip.MustParseAddrPort("[::ffff:192.0.2.10]:3479"), goldenExpiry, nil},
		{"expired", goldenKey, tk, goldenSession, client4, server4, goldenExpiry + 1, ErrTicketExpired},
		{"long expired", goldenKey, tk, goldenSession, client4, server4, ^uint32(0), ErrTicketExpired},
		{"wrong session", goldenKey, tk, otherSession, client4, server4, goldenExpiry, ErrTicketInvalid},
		{"wrong client address", goldenKey, tk, goldenSession,
			netip.MustParseAddrPort("198.51.100.8:50000"), server4, goldenExpiry, ErrTicketInvalid},
		{"wrong client port", goldenKey, tk, goldenSession,
			netip.MustParseAddrPort("198.51.100.7:50001"), server4, goldenExpiry, ErrTicketInvalid},
		{"wrong server", goldenKey, tk, goldenSession, client4, backup4a, goldenExpiry, ErrTicketInvalid},
		{"wrong server port", goldenKey, tk, goldenSession, client4,
			netip.MustParseAddrPort("192.0.2.10:3480"), goldenExpiry, ErrTicketInvalid},
		{"server and client swapped", goldenKey, tk, goldenSession, server4, client4, goldenExpiry, ErrTicketInvalid},
		{"wrong key", otherKey, tk, goldenSession, client4, server4, goldenExpiry, ErrTicketInvalid},
		{"expiry extended", goldenKey, mutate(1, 0x10), goldenSession, client4, server4, goldenExpiry, ErrTicketInvalid},
		{"tampered and expired", goldenKey, mutate(TicketLen-1, 1), goldenSession, client4, server4,
			goldenExpiry + 1, ErrTicketInvalid},
		{"mac changed", goldenKey, mutate(10, 0x80), goldenSession, client4, server4, goldenExpiry, ErrTicketInvalid},
		{"wrong version", goldenKey, mutate(0, 0x03), goldenSession, client4, server4, goldenExpiry, ErrTicketInvalid},
		{"empty", goldenKey, nil, goldenSession, client4, server4, goldenExpiry, ErrTicketInvalid},
		{"short", goldenKey, tk[:TicketLen-1], goldenSession, client4, server4, goldenExpiry, ErrTicketInvalid},
		{"long", goldenKey, append(append([]byte(nil), tk...), 0), goldenSession, client4, server4,
			goldenExpiry, ErrTicketInvalid},
		{"zero addresses", goldenKey, tk, goldenSession, netip.AddrPort{}, netip.AddrPort{}, goldenExpiry,
			ErrTicketInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := NewTicketer(tt.key).Verify(tt.ticket, tt.session, tt.client, tt.server, tt.now)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestTicketAppend(t *testing.T) {
	tr := NewTicketer(goldenKey)
	prefix := []byte("xy")
	b := tr.Append(append(make([]byte, 0, 64), prefix...), goldenSession, client6, server6, goldenExpiry)
	if !bytes.Equal(b[:2], prefix) || len(b) != 2+TicketLen {
		t.Fatalf("Append after a prefix: %x", b)
	}
	// One Ticketer used over and over, for different tickets, must give
	// the same answers as fresh ones: its buffers carry no state.
	for i := range 3 {
		if err := tr.Verify(b[2:], goldenSession, client6, server6, goldenExpiry); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if err := tr.Verify(goldenTicket(), goldenSession, client4, server4, goldenExpiry); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if err := tr.Verify(b[2:], goldenSession, client4, server6, goldenExpiry); !errors.Is(err, ErrTicketInvalid) {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	if other := tr.Append(nil, goldenSession, client6, server6, goldenExpiry+1); bytes.Equal(other[5:], b[2+5:]) {
		t.Error("the MAC does not cover the expiry")
	}
}

// TestSipHash128Vector checks the MAC's primitive against the first
// 128-bit test vector of the SipHash reference implementation (key
// 00..0f, empty message), so a library that changed its output order or
// rounds would show here and not only as a golden mismatch.
func TestSipHash128Vector(t *testing.T) {
	var key [16]byte
	for i := range key {
		key[i] = byte(i)
	}
	lo, hi := siphash.Hash128(binary.LittleEndian.Uint64(key[:8]), binary.LittleEndian.Uint64(key[8:]), nil)
	got := binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, lo), hi)
	want := []byte{0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6, 0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02, 0x93}
	if !bytes.Equal(got, want) {
		t.Errorf("SipHash-2-4-128(00..0f, \"\") = %x, want %x", got, want)
	}
}

// BenchmarkTicketMAC compares the ticket's SipHash-2-4-128 MAC with the
// HMAC-SHA256 that ticket version 1 used, over the same 49-byte input, in
// one invocation: the reason for version 2.
func BenchmarkTicketMAC(b *testing.B) {
	b.Run("siphash128", func(b *testing.B) {
		tk := NewTicketer(goldenKey)
		b.ReportAllocs()
		for b.Loop() {
			tk.compute(goldenSession, client4, server4, goldenExpiry)
		}
	})
	b.Run("hmac-sha256", func(b *testing.B) {
		mac := hmac.New(sha256.New, goldenKey)
		var in [49]byte
		var sum [sha256.Size]byte
		b.ReportAllocs()
		for b.Loop() {
			mac.Reset()
			mac.Write(in[:])
			mac.Sum(sum[:0])
		}
	})
}
