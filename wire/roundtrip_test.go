package wire

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

func TestProbeRoundTrip(t *testing.T) {
	mapped := netip.MustParseAddrPort("[::ffff:192.0.2.9]:3479")
	tests := []struct {
		name string
		p    Probe
		// wantLost is what decoding gives back for p.LostServer: an
		// IPv4-mapped IPv6 address travels as IPv4.
		wantLost netip.AddrPort
	}{
		{"minimal", Probe{TxID: goldenTx, Session: goldenSession}, netip.AddrPort{}},
		{"ipv4", Probe{TxID: goldenTx, Session: goldenSession, Service: "voice", LostServer: lost4,
			ClientAddress: client4, PadTo: ProbeSize}, lost4},
		{"ipv6", Probe{TxID: goldenTx, Session: goldenSession, Service: "video", LostServer: server6,
			ClientAddress: client6, PadTo: ProbeSize}, server6},
		{"ipv4-mapped", Probe{TxID: goldenTx, Session: goldenSession, LostServer: mapped}, lost4},
		{"longest service", Probe{TxID: goldenTx, Session: goldenSession,
			Service: string(bytes.Repeat([]byte{'s'}, MaxServiceLen))}, netip.AddrPort{}},
		{"odd pad", Probe{TxID: goldenTx, Session: goldenSession, PadTo: 61}, netip.AddrPort{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				e Encoder
				d Decoder
				r Request
			)
			b, err := e.AppendProbe(nil, &tt.p)
			if err != nil {
				t.Fatal(err)
			}
			unpadded := tt.p
			unpadded.PadTo = 0
			bare, err := e.AppendProbe(nil, &unpadded)
			if err != nil {
				t.Fatal(err)
			}
			// Padding makes the probe exactly PadTo, rounded up to a
			// multiple of four, unless it was already larger.
			if want := max(len(bare), padded(tt.p.PadTo)); len(b) != want {
				t.Errorf("probe is %d bytes, want %d (PadTo %d)", len(b), want, tt.p.PadTo)
			}
			if err := d.DecodeRequest(b, &r); err != nil {
				t.Fatalf("decode: %v\n%s", err, dump(b))
			}
			want := Request{
				TxID:          tt.p.TxID,
				Method:        stun.MethodBinding,
				Session:       tt.p.Session,
				HasSession:    true,
				Service:       []byte(tt.p.Service),
				LostServer:    tt.wantLost,
				ClientAddress: tt.p.ClientAddress,
				Fingerprint:   true,
				Size:          len(b),
			}
			checkRequest(t, &r, &want)
		})
	}
}

func TestKeepaliveRoundTrip(t *testing.T) {
	for _, tk := range [][]byte{nil, goldenTicket(), bytes.Repeat([]byte{0xee}, MaxTicketLen)} {
		var (
			e Encoder
			d Decoder
			r Request
		)
		k := Keepalive{TxID: goldenTx, Session: goldenSession, Ticket: tk, PadTo: KeepaliveSize}
		b, err := e.AppendKeepalive(nil, &k)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < KeepaliveSize {
			t.Errorf("keepalive is %d bytes", len(b))
		}
		if err := d.DecodeRequest(b, &r); err != nil {
			t.Fatalf("decode: %v", err)
		}
		checkRequest(t, &r, &Request{TxID: goldenTx, Method: stun.MethodBinding, Session: goldenSession,
			HasSession: true, Ticket: tk, Fingerprint: true, Size: len(b)})
	}
}

func checkRequest(t *testing.T, got, want *Request) {
	t.Helper()
	if got.TxID != want.TxID || got.Method != want.Method || got.Session != want.Session ||
		got.HasSession != want.HasSession || !bytes.Equal(got.Service, want.Service) ||
		!bytes.Equal(got.Ticket, want.Ticket) || got.LostServer != want.LostServer ||
		got.ClientAddress != want.ClientAddress || got.Fingerprint != want.Fingerprint || got.Size != want.Size {
		t.Errorf("decoded\n %+v\nwant\n %+v", *got, *want)
	}
}

func TestRedirectRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		r    Redirect
	}{
		{"ipv4 full", *goldenRedirect4()},
		{"ipv6 full", *goldenRedirect6()},
		{"bare", Redirect{Server: server4}},
		{"mixed backups", Redirect{Server: server6, Term: 1 << 40, Interval: 250 * time.Millisecond,
			DeadAfter: time.Hour, Backups: []netip.AddrPort{backup4a, backup6, backup4b, server4}}},
		{"timers only dead-after", Redirect{Server: server4, DeadAfter: 5 * time.Second}},
	}
	for _, tt := range tests {
		for _, method := range []stun.Method{stun.MethodBinding, stun.MethodAllocate} {
			t.Run(tt.name+"/"+method.String(), func(t *testing.T) {
				var (
					e    Encoder
					d    Decoder
					resp Response
				)
				req := goldenProbeReq
				req.Method = method
				req.TxID[0] ^= byte(method)
				b, err := e.AppendRedirect(nil, &req, &tt.r, 1500)
				if err != nil {
					t.Fatal(err)
				}
				if err := d.DecodeResponse(b, &resp); err != nil {
					t.Fatalf("decode: %v\n%s", err, dump(b))
				}
				if resp.TxID != req.TxID || resp.Method != method || resp.Success ||
					resp.Code != stun.CodeTryAlternate || resp.Size != len(b) {
					t.Errorf("header fields: %+v", resp)
				}
				if resp.Server != tt.r.Server || !bytes.Equal(resp.Ticket, tt.r.Ticket) ||
					resp.Interval != tt.r.Interval || resp.DeadAfter != tt.r.DeadAfter || resp.Term != tt.r.Term {
					t.Errorf("decoded %+v, want %+v", resp, tt.r)
				}
				if resp.NumBackups != min(len(tt.r.Backups), MaxBackups) {
					t.Fatalf("%d backups, want %d", resp.NumBackups, len(tt.r.Backups))
				}
				for i := range resp.NumBackups {
					if resp.Backups[i] != tt.r.Backups[i] {
						t.Errorf("backup %d = %v, want %v", i, resp.Backups[i], tt.r.Backups[i])
					}
				}
			})
		}
	}
}

func TestKeepaliveAnswerRoundTrip(t *testing.T) {
	for _, a := range []KeepaliveAnswer{
		{Mapped: client4}, {Mapped: client4, Drain: true},
		{Mapped: client6}, {Mapped: client6, Drain: true},
	} {
		for _, fp := range []bool{false, true} {
			var (
				e    Encoder
				d    Decoder
				resp Response
			)
			req := goldenKeepReq
			req.Fingerprint = fp
			b, err := e.AppendKeepaliveAnswer(nil, &req, &a, KeepaliveSize)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.DecodeResponse(b, &resp); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !resp.Success || resp.Mapped != a.Mapped || resp.Drain != a.Drain || resp.TxID != req.TxID ||
				resp.Method != stun.MethodBinding || resp.Size != len(b) {
				t.Errorf("%+v (fingerprint %v): decoded %+v", a, fp, resp)
			}
			if m := decodeStun(t, b); m.Contains(stun.AttrFingerprint) != fp {
				t.Errorf("%+v: fingerprint present %v, request had one %v", a, !fp, fp)
			}
		}
	}
}

func TestErrorAnswerRoundTrip(t *testing.T) {
	for _, code := range []stun.ErrorCode{stun.CodeUnauthorized, stun.CodeBadRequest, stun.CodeServerError, 699} {
		var (
			e    Encoder
			d    Decoder
			resp Response
		)
		b, err := e.AppendErrorAnswer(nil, &goldenKeepReq, code, KeepaliveSize)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.DecodeResponse(b, &resp); err != nil {
			t.Fatalf("decode: %v", err)
		}
		if resp.Success || resp.Code != code || resp.TxID != goldenTx {
			t.Errorf("code %d: decoded %+v", code, resp)
		}
	}
}
