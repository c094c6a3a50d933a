package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/pion/stun/v3"
)

// rawAttr is one attribute for build.
type rawAttr struct {
	t stun.AttrType
	v []byte
}

// build encodes a message with pion/stun directly, so the tests can make
// messages this package's encoder refuses to.
func build(typ stun.MessageType, fingerprint bool, attrs ...rawAttr) []byte {
	m := &stun.Message{Type: typ, TransactionID: goldenTx}
	m.WriteHeader()
	for _, a := range attrs {
		m.Add(a.t, a.v)
	}
	if fingerprint {
		if err := stun.Fingerprint.AddTo(m); err != nil {
			panic(err)
		}
	}
	return m.Raw
}

// edit returns a copy of b changed by f.
func edit(b []byte, f func([]byte) []byte) []byte {
	return f(append([]byte(nil), b...))
}

var session = rawAttr{AttrSession, goldenSession[:]}

func TestDecodeRequestErrors(t *testing.T) {
	probe := build(stun.BindingRequest, true, session)
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrNotSTUN},
		{"short header", probe[:HeaderSize-1], ErrNotSTUN},
		{"truncated", probe[:len(probe)-4], ErrNotSTUN},
		{"truncated attribute header", edit(probe, func(b []byte) []byte {
			b[3] += 2 // claim two more bytes than there are
			return append(b, 0, 0)
		}), ErrNotSTUN},
		{"trailing bytes", append(append([]byte(nil), probe...), 0, 0, 0, 0), ErrNotSTUN},
		{"wrong cookie", edit(probe, func(b []byte) []byte { b[4] ^= 1; return b }), ErrNotSTUN},
		{"top bits set", edit(probe, func(b []byte) []byte { b[0] |= 0x80; return b }), ErrNotSTUN},
		{"success response", build(stun.BindingSuccess, false, session), ErrNotRequest},
		{"error response", build(stun.BindingError, false, session), ErrNotRequest},
		{"indication", build(stun.NewType(stun.MethodBinding, stun.ClassIndication), false, session), ErrNotRequest},
		{"refresh request", build(stun.NewType(stun.MethodRefresh, stun.ClassRequest), false), ErrMethod},
		{"unknown method", build(stun.NewType(stun.Method(0x0abc), stun.ClassRequest), false), ErrMethod},
		{"bad fingerprint", edit(probe, func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrFingerprint},
		{"changed payload", edit(probe, func(b []byte) []byte { b[HeaderSize+4] ^= 1; return b }), ErrFingerprint},
		{"fingerprint not last", edit(probe, func(b []byte) []byte {
			m := &stun.Message{Raw: b}
			_ = m.Decode()
			m.Add(AttrDrain, nil)
			return m.Raw
		}), ErrFingerprint},
		{"short fingerprint", build(stun.BindingRequest, false, session, rawAttr{stun.AttrFingerprint, []byte{1, 2}}),
			ErrFingerprint},
		{"short session", build(stun.BindingRequest, true, rawAttr{AttrSession, goldenSession[:7]}), ErrAttribute},
		{"long session", build(stun.BindingRequest, true, rawAttr{AttrSession, make([]byte, 9)}), ErrAttribute},
		{"oversize service", build(stun.BindingRequest, true, session,
			rawAttr{AttrService, bytes.Repeat([]byte{'s'}, MaxServiceLen+1)}), ErrAttribute},
		{"oversize ticket", build(stun.BindingRequest, true, session,
			rawAttr{AttrTicket, make([]byte, MaxTicketLen+1)}), ErrAttribute},
		{"lost server bad family", build(stun.BindingRequest, true, session,
			rawAttr{AttrLostServer, []byte{0, 3, 0x2c, 0x85, 1, 2, 3, 4}}), ErrAttribute},
		{"lost server short", build(stun.BindingRequest, true, session,
			rawAttr{AttrLostServer, []byte{0, 1, 0x2c}}), ErrAttribute},
		{"lost server ipv6 family, ipv4 length", build(stun.BindingRequest, true, session,
			rawAttr{AttrLostServer, []byte{0, 2, 0x2c, 0x85, 1, 2, 3, 4}}), ErrAttribute},
		{"client address ipv4 family, ipv6 length", build(stun.BindingRequest, true, session,
			rawAttr{AttrClientAddress, append([]byte{0, 1, 0x2c, 0x85}, make([]byte, 16)...)}), ErrAttribute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				d Decoder
				r Request
			)
			err := d.DecodeRequest(tt.b, &r)
			if !errors.Is(err, tt.want) {
				t.Errorf("DecodeRequest = %v, want %v\n%s", err, tt.want, dump(tt.b))
			}
		})
	}
}

func TestDecodeRequestAccepts(t *testing.T) {
	tests := []struct {
		name  string
		b     []byte
		check func(*Request) bool
	}{
		{"stock binding", build(stun.BindingRequest, false), func(r *Request) bool {
			return !r.HasSession && !r.Fingerprint && r.Session == SessionID(goldenTx[:SessionLen]) && r.Size == HeaderSize
		}},
		{"stock binding with fingerprint", build(stun.BindingRequest, true), func(r *Request) bool {
			return !r.HasSession && r.Fingerprint && r.Size == 28
		}},
		{"stock allocate", build(stun.NewType(stun.MethodAllocate, stun.ClassRequest), false,
			rawAttr{stun.AttrRequestedTransport, []byte{17, 0, 0, 0}}), func(r *Request) bool {
			return r.Method == stun.MethodAllocate && !r.HasSession
		}},
		{"unknown attributes ignored", build(stun.BindingRequest, true, session,
			rawAttr{0xC0AF, []byte("future")}, rawAttr{stun.AttrSoftware, []byte("x")}), func(r *Request) bool {
			return r.HasSession && r.Session == goldenSession
		}},
		{"empty service", build(stun.BindingRequest, true, session, rawAttr{AttrService, nil}), func(r *Request) bool {
			return len(r.Service) == 0
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				d Decoder
				r Request
			)
			if err := d.DecodeRequest(tt.b, &r); err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			if !tt.check(&r) {
				t.Errorf("decoded %+v", r)
			}
		})
	}
}

func TestDecodeResponseErrors(t *testing.T) {
	errType := stun.BindingError
	code300 := rawAttr{stun.AttrErrorCode, []byte{0, 0, 3, 0}}
	redirect := build(errType, true, code300, rawAttr{stun.AttrAlternateServer, []byte{0, 1, 0x0d, 0x97, 192, 0, 2, 10}})
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrNotSTUN},
		{"truncated", redirect[:len(redirect)-1], ErrNotSTUN},
		{"trailing bytes", append(append([]byte(nil), redirect...), 0, 0, 0, 0), ErrNotSTUN},
		{"wrong cookie", edit(redirect, func(b []byte) []byte { b[7] ^= 1; return b }), ErrNotSTUN},
		{"request", build(stun.BindingRequest, true, session), ErrNotResponse},
		{"indication", build(stun.NewType(stun.MethodBinding, stun.ClassIndication), false), ErrNotResponse},
		{"bad fingerprint", edit(redirect, func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrFingerprint},
		{"short error code", build(errType, false, rawAttr{stun.AttrErrorCode, []byte{0, 0, 3}}), ErrAttribute},
		{"bad alternate server", build(errType, false, code300,
			rawAttr{stun.AttrAlternateServer, []byte{0, 2, 0x0d, 0x97, 192, 0, 2, 10}}), ErrAttribute},
		{"bad mapped address", build(stun.BindingSuccess, false,
			rawAttr{stun.AttrXORMappedAddress, []byte{0, 1, 0, 0}}), ErrAttribute},
		{"oversize ticket", build(errType, false, code300, rawAttr{AttrTicket, make([]byte, MaxTicketLen+1)}), ErrAttribute},
		{"short timers", build(errType, false, code300, rawAttr{AttrTimers, make([]byte, 4)}), ErrAttribute},
		{"long term", build(errType, false, code300, rawAttr{AttrTerm, make([]byte, 12)}), ErrAttribute},
		{"bad backup", build(errType, false, code300, rawAttr{AttrBackup, []byte{0, 9, 0, 0, 1, 2, 3, 4}}), ErrAttribute},
		{"drain with value", build(stun.BindingSuccess, false, rawAttr{AttrDrain, []byte{1}}), ErrAttribute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				d Decoder
				r Response
			)
			if err := d.DecodeResponse(tt.b, &r); !errors.Is(err, tt.want) {
				t.Errorf("DecodeResponse = %v, want %v\n%s", err, tt.want, dump(tt.b))
			}
		})
	}
}

// TestDecodeResponseBackupCap checks that a redirect with more backups than
// MaxBackups decodes, keeping the first MaxBackups.
func TestDecodeResponseBackupCap(t *testing.T) {
	backups := make([]netip.AddrPort, 0, MaxBackups+3)
	for i := range MaxBackups + 3 {
		backups = append(backups, netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(20 + i)}), 3479))
	}
	var (
		e Encoder
		d Decoder
		r Response
	)
	b, err := e.AppendRedirect(nil, &goldenProbeReq, &Redirect{Server: server4, Backups: backups}, 1500)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.DecodeResponse(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.NumBackups != MaxBackups {
		t.Fatalf("NumBackups = %d", r.NumBackups)
	}
	for i := range MaxBackups {
		if r.Backups[i] != backups[i] {
			t.Errorf("backup %d = %v, want %v", i, r.Backups[i], backups[i])
		}
	}
}
