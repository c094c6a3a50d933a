package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/pion/stun/v3"
)

// seedMessages are real messages of every kind, for the fuzz corpora.
func seedMessages(t testing.TB) [][]byte {
	seeds := [][]byte{
		build(stun.BindingRequest, false),
		build(stun.BindingRequest, true),
		build(stun.NewType(stun.MethodAllocate, stun.ClassRequest), false,
			rawAttr{stun.AttrRequestedTransport, []byte{17, 0, 0, 0}}),
		build(stun.BindingRequest, true, session, rawAttr{0x7f01, []byte{1, 2, 3, 4}}),
	}
	for _, g := range []string{
		goldenProbeMin, goldenProbeFull, goldenProbePadded, goldenProbeWorked, goldenKeepalive,
		goldenRedirectFull4, goldenRedirectTrimmed4, goldenRedirectFull6, goldenStockMin4, goldenStockMinFP4,
		goldenStockMinFP6, goldenAllocate, goldenKeepaliveAnswer4, goldenKeepaliveAnswerDrain6, goldenUnauthorized,
		goldenOverloadProbe, goldenOverloadBinding, goldenOverloadAllocate, goldenUnknownAttributes,
	} {
		seeds = append(seeds, unhex(t, g))
	}
	return seeds
}

// isWireError reports whether err is one of the decoders' sentinels.
func isWireError(err error) bool {
	for _, s := range []error{ErrNotSTUN, ErrNotRequest, ErrMethod, ErrAttribute, ErrFingerprint, ErrNotResponse, ErrUnknownAttribute} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range seedMessages(f) {
		f.Add(s, uint8(3))
	}
	fullTicket := bytes.Repeat([]byte{0xab}, MaxTicketLen)
	answers := []Redirect{
		{Server: server4},
		*goldenRedirect4(),
		{Server: server6, Ticket: fullTicket, Interval: goldenInterval, DeadAfter: goldenDeadAfter, Term: 1,
			Backups: []netip.AddrPort{backup6, backup6, backup6, backup6, backup6, backup6, backup6, backup6}},
	}
	f.Fuzz(func(t *testing.T, b []byte, factor uint8) {
		var (
			d    Decoder
			e    Encoder
			req  Request
			resp Response
		)
		err := d.DecodeRequest(b, &req)
		if err != nil && !isWireError(err) {
			t.Fatalf("unexpected error %v", err)
		}
		if err == nil && req.NumUnknown != 0 || errors.Is(err, ErrUnknownAttribute) && req.NumUnknown == 0 {
			t.Fatalf("%d unknown attributes with error %v", req.NumUnknown, err)
		}
		if errors.Is(err, ErrUnknownAttribute) {
			checkAnswer(t, &d, &req, len(b), int(factor%5), func(limit int) ([]byte, error) {
				return e.AppendUnknownAttributes(nil, &req, limit)
			})
			return
		}
		if err != nil {
			return
		}
		if req.Size != len(b) || len(req.Service) > MaxServiceLen || len(req.Ticket) > MaxTicketLen {
			t.Fatalf("decoded %+v from %d bytes", req, len(b))
		}
		limit := Limit(&req, int(factor%5))
		check := func(kind string, out []byte, err error) {
			t.Helper()
			if errors.Is(err, ErrTooLarge) {
				if len(out) != 0 {
					t.Fatalf("%s: ErrTooLarge with %d bytes", kind, len(out))
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", kind, err)
			}
			if len(out) > limit {
				t.Fatalf("%s: %d bytes to a %d-byte request, limit %d", kind, len(out), len(b), limit)
			}
			if err := d.DecodeResponse(out, &resp); err != nil {
				t.Fatalf("%s: answer does not decode: %v", kind, err)
			}
			if resp.TxID != req.TxID || resp.Method != req.Method {
				t.Fatalf("%s: answer is for another transaction", kind)
			}
		}
		for i := range answers {
			out, err := e.AppendRedirect(nil, &req, &answers[i], limit)
			check("redirect", out, err)
		}
		for _, a := range []KeepaliveAnswer{{Mapped: client4}, {Mapped: client6, Drain: true}} {
			out, err := e.AppendKeepaliveAnswer(nil, &req, &a, limit)
			check("keepalive answer", out, err)
		}
		out, err := e.AppendErrorAnswer(nil, &req, stun.CodeUnauthorized, limit)
		check("error answer", out, err)
		out, err = e.AppendOverload(nil, &req, goldenRetryAfter, limit)
		check("overload answer", out, err)
	})
}

// checkAnswer checks the answer encode writes to the decoded request req of
// n bytes, within the limit for stock factor factor: the size rule, and
// that it decodes as an answer to req.
func checkAnswer(t *testing.T, d *Decoder, req *Request, n, factor int, encode func(limit int) ([]byte, error)) {
	t.Helper()
	limit := Limit(req, factor)
	out, err := encode(limit)
	switch {
	case errors.Is(err, ErrTooLarge):
		if len(out) != 0 {
			t.Fatalf("ErrTooLarge with %d bytes", len(out))
		}
		return
	case err != nil:
		t.Fatal(err)
	case len(out) > limit:
		t.Fatalf("%d bytes to a %d-byte request, limit %d", len(out), n, limit)
	}
	var resp Response
	if err := d.DecodeResponse(out, &resp); err != nil || resp.TxID != req.TxID || resp.Code != stun.CodeUnknownAttribute {
		t.Fatalf("answer decodes as code %d, %v", resp.Code, err)
	}
}

func FuzzDecodeResponse(f *testing.F) {
	for _, s := range seedMessages(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var (
			d Decoder
			r Response
		)
		if err := d.DecodeResponse(b, &r); err != nil {
			if !isWireError(err) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if r.Size != len(b) || len(r.Ticket) > MaxTicketLen || len(r.Domain) > MaxDomainLen || r.NumBackups < 0 || r.NumBackups > MaxBackups {
			t.Fatalf("decoded %+v from %d bytes", r, len(b))
		}
	})
}

// fuzzAddr makes an address from fuzzer bytes: IPv6 from 16 or more bytes,
// IPv4 from 4 to 15, the zero address from fewer.
func fuzzAddr(b []byte, port uint16) netip.AddrPort {
	switch {
	case len(b) >= 16:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[:16])), port)
	case len(b) >= 4:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[:4])), port)
	}
	return netip.AddrPortFrom(netip.Addr{}, port)
}

func FuzzTicket(f *testing.F) {
	f.Add(goldenTicket(), goldenKey, goldenSession[:], client4.Addr().AsSlice(), client4.Port(),
		server4.Addr().AsSlice(), server4.Port(), goldenExpiry, goldenExpiry-1)
	f.Add([]byte{1, 2, 3}, []byte("k"), []byte("12345678"), client6.Addr().AsSlice(), uint16(0),
		server6.Addr().AsSlice(), uint16(1), uint32(0), uint32(1))
	f.Add(make([]byte, TicketLen), []byte{}, []byte{}, []byte{}, uint16(0), []byte{}, uint16(0), uint32(0), uint32(0))
	f.Fuzz(func(t *testing.T, garbage, key, sess, ca []byte, cport uint16, sa []byte, sport uint16, expiry, now uint32) {
		var s SessionID
		copy(s[:], sess)
		client, server := fuzzAddr(ca, cport), fuzzAddr(sa, sport)
		tr := NewTicketer(key)

		// Garbage verifies only if it is exactly the ticket this key
		// would mint for it.
		switch err := tr.Verify(garbage, s, client, server, now); {
		case err == nil:
			if len(garbage) != TicketLen {
				t.Fatalf("a %d-byte ticket verified", len(garbage))
			}
			exp := uint32(garbage[1])<<24 | uint32(garbage[2])<<16 | uint32(garbage[3])<<8 | uint32(garbage[4])
			if !bytes.Equal(garbage, tr.Append(nil, s, client, server, exp)) || now > exp {
				t.Fatalf("forged ticket %x verified", garbage)
			}
		case errors.Is(err, ErrTicketInvalid), errors.Is(err, ErrTicketExpired):
		default:
			t.Fatalf("unexpected error %v", err)
		}

		tk := tr.Append(nil, s, client, server, expiry)
		want := error(nil)
		if now > expiry {
			want = ErrTicketExpired
		}
		if err := tr.Verify(tk, s, client, server, now); !errors.Is(err, want) {
			t.Fatalf("minted ticket: %v, want %v", err, want)
		}
		s2 := s
		s2[0] ^= 1
		otherKey := append([]byte{}, key...)
		if len(otherKey) == 0 {
			otherKey = []byte{1}
		} else {
			otherKey[0] ^= 1
		}
		for name, err := range map[string]error{
			"session":     tr.Verify(tk, s2, client, server, now),
			"client port": tr.Verify(tk, s, netip.AddrPortFrom(client.Addr(), cport+1), server, now),
			"server port": tr.Verify(tk, s, client, netip.AddrPortFrom(server.Addr(), sport+1), now),
			"server":      tr.Verify(tk, s, client, fuzzAddr([]byte{192, 0, 2, 99}, sport), now),
			"key":         NewTicketer(otherKey).Verify(tk, s, client, server, now),
		} {
			if name == "server" && server.Addr().Unmap() == netip.AddrFrom4([4]byte{192, 0, 2, 99}) {
				continue
			}
			if !errors.Is(err, ErrTicketInvalid) {
				t.Fatalf("ticket verified with another %s: %v", name, err)
			}
		}
	})
}
