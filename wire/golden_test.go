package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/dchest/siphash"
	"github.com/pion/stun/v3"
)

// Requests the golden answers reply to. Size is what Limit reads; the
// limits below are chosen per case.
var (
	goldenProbeReq = Request{TxID: goldenTx, Method: stun.MethodBinding, Session: goldenSession,
		HasSession: true, Fingerprint: true, Size: ProbeSize}
	goldenStockReq   = Request{TxID: goldenTx, Method: stun.MethodBinding, Size: 20}
	goldenStockFPReq = Request{TxID: goldenTx, Method: stun.MethodBinding, Fingerprint: true, Size: 28}
	goldenAllocReq   = Request{TxID: goldenTx, Method: stun.MethodAllocate, Size: 36}
	goldenKeepReq    = Request{TxID: goldenTx, Method: stun.MethodBinding, Session: goldenSession,
		HasSession: true, Fingerprint: true, Size: KeepaliveSize}
)

func goldenRedirect4() *Redirect {
	return &Redirect{Server: server4, Ticket: goldenTicket(), Interval: goldenInterval,
		DeadAfter: goldenDeadAfter, Term: goldenTerm, Backups: []netip.AddrPort{backup4a, backup4b}}
}

func goldenRedirect6() *Redirect {
	return &Redirect{Server: server6, Ticket: goldenTicket(), Interval: goldenInterval,
		DeadAfter: goldenDeadAfter, Term: goldenTerm, Backups: []netip.AddrPort{backup6}}
}

// Golden messages. The transaction ID is "usher-golden"
// (75736865722d676f6c64656e), the session "sess-001" (736573732d303031).
const (
	goldenProbeMin = `
		0001 0014 2112a442 75736865722d676f6c64656e  # Binding request, length 20, cookie, tx
		c0a1 0008 736573732d303031                   # USHER-SESSION "sess-001"
		8028 0004 310e4a75                           # FINGERPRINT
	`
	goldenProbeFull = `
		0001 0044 2112a442 75736865722d676f6c64656e  # Binding request, length 68
		c0a1 0008 736573732d303031                   # USHER-SESSION "sess-001"
		c0a0 0005 766f696365 000000                  # USHER-SERVICE "voice" + 3 bytes alignment
		c0a2 0008 0001 2c85 e112a64b                 # USHER-LOST-SERVER 192.0.2.9:3479 (XOR)
		c0a7 0014 0002 e242 0113a9fa 75726865722d676f6c646569
		                                             # USHER-CLIENT-ADDRESS [2001:db8:1::7]:50000 (XOR with cookie+tx)
		8028 0004 82fdffa7                           # FINGERPRINT
	`
	goldenProbePadded = `
		0001 004c 2112a442 75736865722d676f6c64656e  # Binding request, length 76 (96 bytes in all)
		c0a1 0008 736573732d303031                   # USHER-SESSION "sess-001"
		c0a0 0005 766f696365 000000                  # USHER-SERVICE "voice"
		0026 0028 00000000000000000000 00000000000000000000
		          00000000000000000000 00000000000000000000
		                                             # PADDING, 40 zero bytes
		8028 0004 4911edb6                           # FINGERPRINT
	`
	// goldenProbeWorked and goldenRedirectFull4, the answer to it, are the
	// worked example of docs/protocol.md.
	goldenProbeWorked = `
		0001 006c 2112a442 75736865722d676f6c64656e  # Binding request, length 108 (128 bytes in all)
		c0a1 0008 736573732d303031                   # USHER-SESSION "sess-001"
		c0a0 0005 766f696365 000000                  # USHER-SERVICE "voice"
		0026 0048 0000000000000000 0000000000000000 0000000000000000
		          0000000000000000 0000000000000000 0000000000000000
		          0000000000000000 0000000000000000 0000000000000000
		                                             # PADDING, 72 zero bytes
		8028 0004 7903bff9                           # FINGERPRINT
	`
	goldenKeepalive = `
		0001 0030 2112a442 75736865722d676f6c64656e  # Binding request, length 48 (68 bytes, already past PadTo 64: no PADDING)
		c0a1 0008 736573732d303031                   # USHER-SESSION "sess-001"
		c0a3 0015 02 6b49d200 52abb3443e1aaa6d824d6929d124add7 000000
		                                             # USHER-TICKET: version 1, expiry 1800000000, MAC; 3 bytes alignment
		8028 0004 ba3aa6f3                           # FINGERPRINT
	`
	goldenRedirectFull4 = `
		0111 0068 2112a442 75736865722d676f6c64656e  # Binding error response, length 104
		0009 0004 0000 0300                          # ERROR-CODE 300 (class 3, number 0), no reason
		8023 0008 0001 0d97 c000020a                 # ALTERNATE-SERVER 192.0.2.10:3479 (plain)
		c0a6 0008 0000000000000007                   # USHER-TERM 7
		c0a3 0015 02 6b49d200 52abb3443e1aaa6d824d6929d124add7 000000
		                                             # USHER-TICKET (21 bytes)
		c0a4 0008 000003e8 00000bb8                  # USHER-TIMERS 1000 ms, 3000 ms
		c0a5 0008 0001 2c85 e112a649                 # USHER-BACKUP 192.0.2.11:3479 (XOR)
		c0a5 0008 0001 2c85 e112a64e                 # USHER-BACKUP 192.0.2.12:3479 (XOR)
		8028 0004 b3c67956                           # FINGERPRINT
	`
	// Limit 72: TERM fits (52), TICKET would not (80), TIMERS does (64),
	// FINGERPRINT does (72), no backup does.
	goldenRedirectTrimmed4 = `
		0111 0034 2112a442 75736865722d676f6c64656e  # Binding error response, length 52
		0009 0004 0000 0300                          # ERROR-CODE 300
		8023 0008 0001 0d97 c000020a                 # ALTERNATE-SERVER 192.0.2.10:3479
		c0a6 0008 0000000000000007                   # USHER-TERM 7
		c0a4 0008 000003e8 00000bb8                  # USHER-TIMERS 1000 ms, 3000 ms
		8028 0004 b5314dcf                           # FINGERPRINT
	`
	goldenRedirectFull6 = `
		0111 0074 2112a442 75736865722d676f6c64656e  # Binding error response, length 116
		0009 0004 0000 0300                          # ERROR-CODE 300
		8023 0014 0002 0d97 20010db8000000000000000000000010
		                                             # ALTERNATE-SERVER [2001:db8::10]:3479
		c0a6 0008 0000000000000007                   # USHER-TERM 7
		c0a3 0015 02 6b49d200 52abb3443e1aaa6d824d6929d124add7 000000
		                                             # USHER-TICKET
		c0a4 0008 000003e8 00000bb8                  # USHER-TIMERS 1000 ms, 3000 ms
		c0a5 0014 0002 2c85 0113a9fa 75736865722d676f6c64657f
		                                             # USHER-BACKUP [2001:db8::11]:3479 (XOR)
		8028 0004 c70a4ec7                           # FINGERPRINT
	`
	goldenStockMin4 = `
		0111 0014 2112a442 75736865722d676f6c64656e  # Binding error response, length 20
		0009 0004 0000 0300                          # ERROR-CODE 300
		8023 0008 0001 0d97 c000020a                 # ALTERNATE-SERVER 192.0.2.10:3479
	`
	goldenStockMinFP4 = `
		0111 001c 2112a442 75736865722d676f6c64656e  # Binding error response, length 28
		0009 0004 0000 0300                          # ERROR-CODE 300
		8023 0008 0001 0d97 c000020a                 # ALTERNATE-SERVER 192.0.2.10:3479
		8028 0004 83dab7e3                           # FINGERPRINT (the request had one)
	`
	goldenStockMinFP6 = `
		0111 0028 2112a442 75736865722d676f6c64656e  # Binding error response, length 40
		0009 0004 0000 0300                          # ERROR-CODE 300
		8023 0014 0002 0d97 20010db8000000000000000000000010
		                                             # ALTERNATE-SERVER [2001:db8::10]:3479
		8028 0004 f09a6b81                           # FINGERPRINT
	`
	goldenAllocate = `
		0113 0014 2112a442 75736865722d676f6c64656e  # Allocate error response, length 20
		0009 0004 0000 0300                          # ERROR-CODE 300
		8023 0008 0001 0d97 c000020a                 # ALTERNATE-SERVER 192.0.2.10:3479
	`
	goldenKeepaliveAnswer4 = `
		0101 0014 2112a442 75736865722d676f6c64656e  # Binding success response, length 20
		0020 0008 0001 e242 e721c045                 # XOR-MAPPED-ADDRESS 198.51.100.7:50000
		8028 0004 76824478                           # FINGERPRINT
	`
	goldenKeepaliveAnswerDrain6 = `
		0101 0024 2112a442 75736865722d676f6c64656e  # Binding success response, length 36
		0020 0014 0002 e242 0113a9fa 75726865722d676f6c646569
		                                             # XOR-MAPPED-ADDRESS [2001:db8:1::7]:50000
		c0a8 0000                                    # USHER-DRAIN
		8028 0004 7d30e3fb                           # FINGERPRINT
	`
	goldenUnauthorized = `
		0111 0010 2112a442 75736865722d676f6c64656e  # Binding error response, length 16
		0009 0004 0000 0401                          # ERROR-CODE 401, no reason
		8028 0004 1b494c04                           # FINGERPRINT
	`
	goldenTicketBytes = `
		02                                           # version
		6b49d200                                     # expiry 1800000000 (Unix seconds)
		52abb3443e1aaa6d824d6929d124add7             # SipHash-2-4-128
	`
)

func TestGolden(t *testing.T) {
	tests := []struct {
		name   string
		encode func(e *Encoder, dst []byte) ([]byte, error)
		want   string
	}{
		{"probe/minimal", func(e *Encoder, dst []byte) ([]byte, error) {
			return e.AppendProbe(dst, &Probe{TxID: goldenTx, Session: goldenSession})
		}, goldenProbeMin},
		{"probe/all attributes", func(e *Encoder, dst []byte) ([]byte, error) {
			return e.AppendProbe(dst, &Probe{TxID: goldenTx, Session: goldenSession, Service: "voice",
				LostServer: lost4, ClientAddress: client6})
		}, goldenProbeFull},
		{"probe/padded", func(e *Encoder, dst []byte) ([]byte, error) {
			return e.AppendProbe(dst, &Probe{TxID: goldenTx, Session: goldenSession, Service: "voice", PadTo: 96})
		}, goldenProbePadded},
		{"probe/worked example", func(e *Encoder, dst []byte) ([]byte, error) {
			return e.AppendProbe(dst, &Probe{TxID: goldenTx, Session: goldenSession, Service: "voice", PadTo: 128})
		}, goldenProbeWorked},
		{"keepalive/ticket", func(e *Encoder, dst []byte) ([]byte, error) {
			return e.AppendKeepalive(dst, &Keepalive{TxID: goldenTx, Session: goldenSession,
				Ticket: goldenTicket(), PadTo: KeepaliveSize})
		}, goldenKeepalive},
		{"redirect/full ipv4", func(e *Encoder, dst []byte) ([]byte, error) {
			return e.AppendRedirect(dst, &goldenProbeReq, goldenRedirect4(), ProbeSize)
		}, goldenRedirectFull4},
		{"redirect/trimmed ipv4", func(e *Encoder, dst []byte) ([]byte, error) {
			return e.AppendRedirect(dst, &goldenProbeReq, goldenRedirect4(), 72)
		}, goldenRedirectTrimmed4},
		{"redirect/full ipv6", func(e *Encoder, dst []byte) ([]byte, error) {
			return e.AppendRedirect(dst, &goldenProbeReq, goldenRedirect6(), ProbeSize)
		}, goldenRedirectFull6},
		{"redirect/stock minimal ipv4", func(e *Encoder, dst []byte) ([]byte, error) {
			return e.AppendRedirect(dst, &goldenStockReq, goldenRedirect4(), Limit(&goldenStockReq, 3))
		}, goldenStockMin4},
		{"redirect/stock minimal fingerprint ipv4", func(e *Encoder, dst []byte) ([]byte, error) {
			return e.AppendRedirect(dst, &goldenStockFPReq, goldenRedirect4(), Limit(&goldenStockFPReq, 3))
		}, goldenStockMinFP4},
		{"redirect/stock minimal fingerprint ipv6", func(e *Encoder, dst []byte) ([]byte, error) {
			return e.AppendRedirect(dst, &goldenStockFPReq, goldenRedirect6(), Limit(&goldenStockFPReq, 3))
		}, goldenStockMinFP6},
		{"redirect/allocate", func(e *Encoder, dst []byte) ([]byte, error) {
			return e.AppendRedirect(dst, &goldenAllocReq, goldenRedirect4(), Limit(&goldenAllocReq, 3))
		}, goldenAllocate},
		{"keepalive answer/ipv4", func(e *Encoder, dst []byte) ([]byte, error) {
			return e.AppendKeepaliveAnswer(dst, &goldenKeepReq, &KeepaliveAnswer{Mapped: client4}, KeepaliveSize)
		}, goldenKeepaliveAnswer4},
		{"keepalive answer/drain ipv6", func(e *Encoder, dst []byte) ([]byte, error) {
			return e.AppendKeepaliveAnswer(dst, &goldenKeepReq, &KeepaliveAnswer{Mapped: client6, Drain: true}, KeepaliveSize)
		}, goldenKeepaliveAnswerDrain6},
		{"error answer/401", func(e *Encoder, dst []byte) ([]byte, error) {
			return e.AppendErrorAnswer(dst, &goldenKeepReq, stun.CodeUnauthorized, KeepaliveSize)
		}, goldenUnauthorized},
		{"ticket", func(_ *Encoder, dst []byte) ([]byte, error) {
			return NewTicketer(goldenKey).Append(dst, goldenSession, client4, server4, goldenExpiry), nil
		}, goldenTicketBytes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := unhex(t, tt.want)
			var e Encoder
			got, err := tt.encode(&e, nil)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got\n%swant\n%s", dump(got), dump(want))
			}
			// Appending after a prefix, into a buffer with room, must
			// leave the prefix alone and add the same bytes.
			prefix := []byte("prefix")
			dst := append(make([]byte, 0, 512), prefix...)
			got, err = tt.encode(&e, dst)
			if err != nil {
				t.Fatalf("encode after prefix: %v", err)
			}
			if !bytes.Equal(got[:len(prefix)], prefix) || !bytes.Equal(got[len(prefix):], want) {
				t.Fatalf("append after prefix: got %x", got)
			}
		})
	}
}

// TestGoldenIndependent decodes the golden bytes with pion/stun's own
// getters, so the goldens are checked against a second implementation and
// not only against what this package printed once.
func TestGoldenIndependent(t *testing.T) {
	wantTx := goldenTx
	checkCommon := func(t *testing.T, m *stun.Message, typ stun.MessageType, fingerprint bool) {
		t.Helper()
		if m.Type != typ {
			t.Errorf("type = %v, want %v", m.Type, typ)
		}
		if m.TransactionID != wantTx {
			t.Errorf("transaction ID = %x", m.TransactionID)
		}
		if err := stun.Fingerprint.Check(m); fingerprint && err != nil {
			t.Errorf("fingerprint: %v", err)
		} else if !fingerprint && err == nil {
			t.Errorf("unexpected fingerprint")
		}
	}
	checkXOR := func(t *testing.T, m *stun.Message, at stun.AttrType, want netip.AddrPort) {
		t.Helper()
		var a stun.XORMappedAddress
		if err := a.GetFromAs(m, at); err != nil {
			t.Fatalf("%v: %v", at, err)
		}
		if got := addrPortOf(a.IP, a.Port); got != want {
			t.Errorf("%v = %v, want %v", at, got, want)
		}
	}
	checkRedirect := func(t *testing.T, m *stun.Message, server netip.AddrPort) {
		t.Helper()
		var ec stun.ErrorCodeAttribute
		if err := ec.GetFrom(m); err != nil || ec.Code != stun.CodeTryAlternate || len(ec.Reason) != 0 {
			t.Errorf("error code = %v %q, %v", ec.Code, ec.Reason, err)
		}
		var alt stun.AlternateServer
		if err := alt.GetFrom(m); err != nil {
			t.Fatalf("alternate server: %v", err)
		}
		if got := addrPortOf(alt.IP, alt.Port); got != server {
			t.Errorf("alternate server = %v, want %v", got, server)
		}
	}
	value := func(t *testing.T, m *stun.Message, at stun.AttrType) []byte {
		t.Helper()
		v, err := m.Get(at)
		if err != nil {
			t.Fatalf("%v: %v", at, err)
		}
		return v
	}
	bindingErr := stun.NewType(stun.MethodBinding, stun.ClassErrorResponse)

	t.Run("probe", func(t *testing.T) {
		m := decodeStun(t, unhex(t, goldenProbeFull))
		checkCommon(t, m, stun.BindingRequest, true)
		if v := value(t, m, AttrSession); !bytes.Equal(v, []byte("sess-001")) {
			t.Errorf("session = %q", v)
		}
		if v := value(t, m, AttrService); string(v) != "voice" {
			t.Errorf("service = %q", v)
		}
		checkXOR(t, m, AttrLostServer, lost4)
		checkXOR(t, m, AttrClientAddress, client6)
	})
	t.Run("probe padded", func(t *testing.T) {
		b := unhex(t, goldenProbePadded)
		m := decodeStun(t, b)
		checkCommon(t, m, stun.BindingRequest, true)
		if v := value(t, m, stun.AttrPadding); len(v) != 40 || len(b) != 96 {
			t.Errorf("padding %d bytes, message %d bytes", len(v), len(b))
		}
	})
	t.Run("keepalive", func(t *testing.T) {
		m := decodeStun(t, unhex(t, goldenKeepalive))
		checkCommon(t, m, stun.BindingRequest, true)
		if v := value(t, m, AttrTicket); !bytes.Equal(v, unhex(t, goldenTicketBytes)) {
			t.Errorf("ticket = %x", v)
		}
	})
	t.Run("redirect full ipv4", func(t *testing.T) {
		m := decodeStun(t, unhex(t, goldenRedirectFull4))
		checkCommon(t, m, bindingErr, true)
		checkRedirect(t, m, server4)
		if v := value(t, m, AttrTerm); binary.BigEndian.Uint64(v) != goldenTerm {
			t.Errorf("term = %x", v)
		}
		if v := value(t, m, AttrTimers); binary.BigEndian.Uint32(v) != 1000 || binary.BigEndian.Uint32(v[4:]) != 3000 {
			t.Errorf("timers = %x", v)
		}
		checkXOR(t, m, AttrBackup, backup4a) // pion reads the first one
	})
	t.Run("redirect trimmed ipv4", func(t *testing.T) {
		m := decodeStun(t, unhex(t, goldenRedirectTrimmed4))
		checkCommon(t, m, bindingErr, true)
		checkRedirect(t, m, server4)
		if m.Contains(AttrTicket) || m.Contains(AttrBackup) {
			t.Error("trimmed redirect kept the ticket or a backup")
		}
	})
	t.Run("redirect full ipv6", func(t *testing.T) {
		m := decodeStun(t, unhex(t, goldenRedirectFull6))
		checkCommon(t, m, bindingErr, true)
		checkRedirect(t, m, server6)
		checkXOR(t, m, AttrBackup, backup6)
	})
	for _, tc := range []struct {
		name   string
		golden string
		typ    stun.MessageType
		fp     bool
		server netip.AddrPort
	}{
		{"stock ipv4", goldenStockMin4, bindingErr, false, server4},
		{"stock fingerprint ipv4", goldenStockMinFP4, bindingErr, true, server4},
		{"stock fingerprint ipv6", goldenStockMinFP6, bindingErr, true, server6},
		{"allocate", goldenAllocate, stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse), false, server4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := decodeStun(t, unhex(t, tc.golden))
			checkCommon(t, m, tc.typ, tc.fp)
			checkRedirect(t, m, tc.server)
			want := 2 // ERROR-CODE and ALTERNATE-SERVER only
			if tc.fp {
				want = 3
			}
			if len(m.Attributes) != want {
				t.Errorf("%d attributes, want %d", len(m.Attributes), want)
			}
		})
	}
	t.Run("keepalive answer ipv4", func(t *testing.T) {
		m := decodeStun(t, unhex(t, goldenKeepaliveAnswer4))
		checkCommon(t, m, stun.BindingSuccess, true)
		checkXOR(t, m, stun.AttrXORMappedAddress, client4)
		if m.Contains(AttrDrain) {
			t.Error("unexpected drain")
		}
	})
	t.Run("keepalive answer drain ipv6", func(t *testing.T) {
		m := decodeStun(t, unhex(t, goldenKeepaliveAnswerDrain6))
		checkCommon(t, m, stun.BindingSuccess, true)
		checkXOR(t, m, stun.AttrXORMappedAddress, client6)
		if v := value(t, m, AttrDrain); len(v) != 0 {
			t.Errorf("drain = %x", v)
		}
	})
	t.Run("401", func(t *testing.T) {
		m := decodeStun(t, unhex(t, goldenUnauthorized))
		checkCommon(t, m, bindingErr, true)
		var ec stun.ErrorCodeAttribute
		if err := ec.GetFrom(m); err != nil || ec.Code != stun.CodeUnauthorized {
			t.Errorf("error code = %v, %v", ec.Code, err)
		}
	})
	t.Run("ticket", func(t *testing.T) {
		// Recompute the MAC from the layout documented in ticket.go.
		var in []byte
		in = append(in, 0) // the version, set below
		in = binary.BigEndian.AppendUint32(in, goldenExpiry)
		in = append(in, goldenSession[:]...)
		for _, ap := range []netip.AddrPort{client4, server4} {
			in = append(in, net.ParseIP(ap.Addr().String()).To16()...)
			in = binary.BigEndian.AppendUint16(in, ap.Port())
		}
		in[0] = 2
		d := sha256.Sum256(append([]byte("usher ticket mac v2"), goldenKey...))
		lo, hi := siphash.Hash128(binary.LittleEndian.Uint64(d[0:8]), binary.LittleEndian.Uint64(d[8:16]), in)
		want := []byte{2, 0x6b, 0x49, 0xd2, 0x00}
		want = binary.LittleEndian.AppendUint64(want, lo)
		want = binary.LittleEndian.AppendUint64(want, hi)
		if got := unhex(t, goldenTicketBytes); !bytes.Equal(got, want) {
			t.Errorf("golden ticket %x, independently computed %x", got, want)
		}
	})
}

// addrPortOf converts pion's address representation.
func addrPortOf(ip net.IP, port int) netip.AddrPort {
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a.Unmap(), uint16(port))
}

// TestGoldenWorkedExample runs the worked example of docs/protocol.md end to
// end: the golden probe, decoded and answered under the size rule, gives the
// golden redirect.
func TestGoldenWorkedExample(t *testing.T) {
	var (
		d   Decoder
		e   Encoder
		req Request
	)
	probe := unhex(t, goldenProbeWorked)
	if err := d.DecodeRequest(probe, &req); err != nil {
		t.Fatal(err)
	}
	if !req.HasSession || string(req.Service) != "voice" || req.Size != 128 {
		t.Fatalf("decoded %+v", req)
	}
	got, err := e.AppendRedirect(nil, &req, goldenRedirect4(), Limit(&req, 3))
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, goldenRedirectFull4); !bytes.Equal(got, want) {
		t.Fatalf("got\n%swant\n%s", dump(got), dump(want))
	}
}

// TestProtocolDocWorkedExample checks that the redirect of docs/protocol.md's
// worked example is the one the encoder writes (goldenRedirectFull4), so
// the document cannot keep an older ticket version or fingerprint.
func TestProtocolDocWorkedExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	_, example, ok := strings.Cut(string(doc), "## Worked example")
	if !ok {
		t.Fatal("docs/protocol.md has no worked example")
	}
	blocks := strings.Split(example, "```")
	if len(blocks) < 4 {
		t.Fatal("the worked example lacks its redirect")
	}
	if got, want := unhex(t, blocks[3]), unhex(t, goldenRedirectFull4); !bytes.Equal(got, want) {
		t.Errorf("the worked example's redirect is\n%swant\n%s", dump(got), dump(want))
	}
}
