package wire

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// Fixed inputs shared by the golden, round-trip and benchmark tests.
var (
	// goldenTx spells "usher-golden".
	goldenTx = [stun.TransactionIDSize]byte{'u', 's', 'h', 'e', 'r', '-', 'g', 'o', 'l', 'd', 'e', 'n'}
	// goldenSession spells "sess-001".
	goldenSession = SessionID{'s', 'e', 's', 's', '-', '0', '0', '1'}
	// goldenKey is the ticket key 0x00, 0x01, ... 0x1f.
	goldenKey = func() []byte {
		k := make([]byte, 32)
		for i := range k {
			k[i] = byte(i)
		}
		return k
	}()
	goldenExpiry = uint32(1_800_000_000)

	server4  = netip.MustParseAddrPort("192.0.2.10:3479")
	server6  = netip.MustParseAddrPort("[2001:db8::10]:3479")
	backup4a = netip.MustParseAddrPort("192.0.2.11:3479")
	backup4b = netip.MustParseAddrPort("192.0.2.12:3479")
	backup6  = netip.MustParseAddrPort("[2001:db8::11]:3479")
	lost4    = netip.MustParseAddrPort("192.0.2.9:3479")
	client4  = netip.MustParseAddrPort("198.51.100.7:50000")
	client6  = netip.MustParseAddrPort("[2001:db8:1::7]:50000")

	goldenInterval  = time.Second
	goldenDeadAfter = 3 * time.Second
	goldenTerm      = uint64(7)
)

// goldenTicket returns the ticket minted under goldenKey for goldenSession,
// client4 and server4, expiring at goldenExpiry.
func goldenTicket() []byte {
	return NewTicketer(goldenKey).Append(nil, goldenSession, client4, server4, goldenExpiry)
}

// unhex decodes a readable hex dump: everything after a '#' on a line is a
// comment, and whitespace is ignored.
func unhex(t testing.TB, dump string) []byte {
	t.Helper()
	var b strings.Builder
	for line := range strings.Lines(dump) {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		b.WriteString(strings.Join(strings.Fields(line), ""))
	}
	out, err := hex.DecodeString(b.String())
	if err != nil {
		t.Fatalf("bad hex dump: %v", err)
	}
	return out
}

// dump renders b as a readable hex dump, one line for the header and one
// per attribute, for failure messages.
func dump(b []byte) string {
	var s strings.Builder
	if len(b) < HeaderSize {
		return hex.EncodeToString(b)
	}
	s.WriteString(hex.EncodeToString(b[:HeaderSize]) + "\n")
	for b = b[HeaderSize:]; len(b) >= 4; {
		n := 4 + padded(int(b[2])<<8|int(b[3]))
		if n > len(b) {
			n = len(b)
		}
		s.WriteString(hex.EncodeToString(b[:n]) + "\n")
		b = b[n:]
	}
	if len(b) > 0 {
		s.WriteString(hex.EncodeToString(b) + "\n")
	}
	return s.String()
}

// decodeStun parses b with pion/stun alone, for checks independent of this
// package's decoders.
func decodeStun(t testing.TB, b []byte) *stun.Message {
	t.Helper()
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := m.Decode(); err != nil {
		t.Fatalf("pion/stun cannot decode %x: %v", b, err)
	}
	return m
}
