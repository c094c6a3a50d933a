package wire

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// The hand-written answer encoders must produce exactly the bytes and errors
// of the pion/stun reference in reference_test.go, for every input. The table
// test walks the cases the size rule distinguishes; the fuzz test walks the
// rest.

// mapped4 is server4 as an IPv4-mapped IPv6 address, which goes on the wire
// as IPv4.
var mapped4 = netip.AddrPortFrom(netip.AddrFrom16(server4.Addr().As16()), 3480)

// answerInput is one input for all three answer encoders.
type answerInput struct {
	req   Request
	r     Redirect
	ka    KeepaliveAnswer
	code  stun.ErrorCode
	limit int
	// dst is how the caller's buffer looks: 0 nil, 1 a prefix with room,
	// 2 a prefix with no spare capacity, 3 a prefix with too little.
	dst int
}

// String describes the input for failure messages.
func (in *answerInput) String() string {
	return fmt.Sprintf("request{method %v tx %x session %v fingerprint %v} "+
		"redirect{server %v ticket %d bytes term %d timers %v/%v backups %v} "+
		"keepalive{mapped %v drain %v} code %d limit %d dst kind %d",
		in.req.Method, in.req.TxID, in.req.HasSession, in.req.Fingerprint,
		in.r.Server, len(in.r.Ticket), in.r.Term, in.r.Interval, in.r.DeadAfter, in.r.Backups,
		in.ka.Mapped, in.ka.Drain, in.code, in.limit, in.dst%4)
}

// makeDst returns the caller's buffer for kind, with garbage in its spare
// capacity so that padding left unwritten shows.
func makeDst(kind int) []byte {
	prefix := []byte("prefix")
	switch kind % 4 {
	case 1:
		b := make([]byte, len(prefix), 1600)
		full := b[:cap(b)]
		for i := range full {
			full[i] = 0xa5
		}
		copy(b, prefix)
		return b
	case 2:
		return append([]byte(nil), prefix...)[:len(prefix):len(prefix)]
	case 3:
		b := make([]byte, len(prefix), len(prefix)+12)
		copy(b, prefix)
		return b
	}
	return nil
}

// checkAnswers encodes in with the hand-written encoders and the references
// and fails unless they agree.
func checkAnswers(t *testing.T, in *answerInput) {
	t.Helper()
	var (
		e   Encoder
		ref refEncoder
	)
	check := func(what string, enc func(dst []byte) ([]byte, error), refEnc func(dst []byte) ([]byte, error)) {
		t.Helper()
		dst, refDst := makeDst(in.dst), makeDst(in.dst)
		got, err := enc(dst)
		want, wantErr := refEnc(refDst)
		switch {
		case wantErr == nil && err != nil, wantErr != nil && err == nil,
			errors.Is(wantErr, ErrTooLarge) != errors.Is(err, ErrTooLarge),
			errors.Is(wantErr, ErrNoServer) != errors.Is(err, ErrNoServer),
			wantErr != nil && !errors.Is(wantErr, ErrTooLarge) && !errors.Is(wantErr, ErrNoServer) &&
				!errors.Is(err, errErrorCode):
			t.Fatalf("%s: error %v, reference %v (%s)", what, err, wantErr, in)
		}
		if err != nil {
			if len(got) != len(dst) || cap(got) != cap(dst) || (cap(dst) > 0 && &got[:1][0] != &dst[:1][0]) {
				t.Fatalf("%s: failed with %v but did not return dst unchanged", what, err)
			}
			return
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: %s\ngot\n%swant\n%s", what, in, dump(got), dump(want))
		}
		if cap(dst)-len(dst) >= len(got)-len(dst) && &got[:1][0] != &dst[:1][0] {
			t.Fatalf("%s: moved although dst had room", what)
		}
		checkPion(t, what, got[len(dst):], in.req.Fingerprint, in.limit)
	}
	check("redirect", func(dst []byte) ([]byte, error) {
		return e.AppendRedirect(dst, &in.req, &in.r, in.limit)
	}, func(dst []byte) ([]byte, error) {
		return ref.refAppendRedirect(dst, &in.req, &in.r, in.limit)
	})
	check("keepalive answer", func(dst []byte) ([]byte, error) {
		return e.AppendKeepaliveAnswer(dst, &in.req, &in.ka, in.limit)
	}, func(dst []byte) ([]byte, error) {
		return ref.refAppendKeepaliveAnswer(dst, &in.req, &in.ka, in.limit)
	})
	check("error answer", func(dst []byte) ([]byte, error) {
		return e.AppendErrorAnswer(dst, &in.req, in.code, in.limit)
	}, func(dst []byte) ([]byte, error) {
		return ref.refAppendErrorAnswer(dst, &in.req, in.code, in.limit)
	})
}

// checkPion decodes the answer b with pion/stun and checks its fingerprint,
// present exactly when asked for and there was room, and its size.
func checkPion(t *testing.T, what string, b []byte, fingerprint bool, limit int) {
	t.Helper()
	if len(b) > limit {
		t.Fatalf("%s: %d bytes, limit %d", what, len(b), limit)
	}
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := m.Decode(); err != nil {
		t.Fatalf("%s: pion/stun cannot decode %x: %v", what, b, err)
	}
	if m.Contains(stun.AttrFingerprint) {
		if !fingerprint {
			t.Fatalf("%s: fingerprint the request did not have", what)
		}
		if err := stun.Fingerprint.Check(m); err != nil {
			t.Fatalf("%s: fingerprint: %v", what, err)
		}
	} else if fingerprint && len(b)+sizeFingerprint <= limit {
		t.Fatalf("%s: no fingerprint although it fits", what)
	}
	var d Decoder
	var resp Response
	if err := d.DecodeResponse(b, &resp); err != nil {
		t.Fatalf("%s: own decoder: %v", what, err)
	}
}

func TestAnswersMatchReference(t *testing.T) {
	tickets := map[string][]byte{"none": nil, "1": {0xee}, "golden": goldenTicket(),
		"63": bytes.Repeat([]byte{1}, 63), "max": bytes.Repeat([]byte{2}, MaxTicketLen),
		"too long": bytes.Repeat([]byte{3}, MaxTicketLen+1), "70": bytes.Repeat([]byte{4}, 70)}
	backups := []netip.AddrPort{backup6, backup4a, mapped4, backup4b, backup6}
	redirects := []struct {
		name string
		r    Redirect
	}{
		{"minimal ipv4", Redirect{Server: server4}},
		{"minimal ipv6", Redirect{Server: server6}},
		{"minimal mapped", Redirect{Server: mapped4}},
		{"no server", Redirect{Ticket: tickets["golden"], Term: 1}},
		{"term only", Redirect{Server: server4, Term: 1}},
		{"max term", Redirect{Server: server6, Term: math.MaxUint64}},
		{"interval only", Redirect{Server: server4, Interval: time.Second}},
		{"dead-after only", Redirect{Server: server4, DeadAfter: time.Second}},
		{"timers saturate", Redirect{Server: server4, Interval: -time.Second, DeadAfter: math.MaxInt64}},
		{"sub-millisecond timers", Redirect{Server: server4, Interval: time.Microsecond, DeadAfter: 1}},
		{"golden ipv4", *goldenRedirect4()},
		{"golden ipv6", *goldenRedirect6()},
		{"invalid backup", Redirect{Server: server4, Term: 3, Backups: []netip.AddrPort{{}, backup4a}}},
	}
	for name, tk := range tickets {
		redirects = append(redirects, struct {
			name string
			r    Redirect
		}{"ticket " + name, Redirect{Server: server6, Ticket: tk, Term: 9, Interval: time.Second}})
	}
	for n := 0; n <= len(backups); n++ {
		redirects = append(redirects, struct {
			name string
			r    Redirect
		}{fmt.Sprintf("%d backups", n), Redirect{Server: server4, Ticket: tickets["golden"], Term: 2,
			Interval: goldenInterval, DeadAfter: goldenDeadAfter, Backups: backups[:n]}})
	}
	more := append(append([]netip.AddrPort(nil), backups...), backups...)
	redirects = append(redirects, struct {
		name string
		r    Redirect
	}{"past MaxBackups", Redirect{Server: server6, Backups: more}})

	requests := []struct {
		name string
		req  Request
	}{
		{"stock", Request{TxID: goldenTx, Method: stun.MethodBinding}},
		{"stock fingerprint", Request{TxID: goldenTx, Method: stun.MethodBinding, Fingerprint: true}},
		{"allocate", Request{TxID: goldenTx, Method: stun.MethodAllocate, Fingerprint: true}},
		{"usher", Request{TxID: goldenTx, Method: stun.MethodBinding, HasSession: true}},
		{"usher fingerprint", Request{TxID: [12]byte{0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0xfe},
			Method: stun.MethodBinding, HasSession: true, Fingerprint: true}},
	}
	keepalives := []KeepaliveAnswer{{Mapped: client4}, {Mapped: client6, Drain: true}, {Mapped: mapped4, Drain: true},
		{Drain: true}}
	codes := []stun.ErrorCode{stun.CodeUnauthorized, stun.CodeTryAlternate, stun.CodeStaleNonce, 0, 99, 699,
		25599, 25600, -1, -100}

	for _, rq := range requests {
		for i, rd := range redirects {
			t.Run(rq.name+"/"+rd.name, func(t *testing.T) {
				for limit := 0; limit <= 300; limit++ {
					in := answerInput{req: rq.req, r: rd.r, ka: keepalives[(i+limit)%len(keepalives)],
						code: codes[(i+limit)%len(codes)], limit: limit, dst: i + limit}
					checkAnswers(t, &in)
				}
				in := answerInput{req: rq.req, r: rd.r, limit: 1 << 20}
				checkAnswers(t, &in)
			})
		}
	}
}

// TestAnswersDoNotAllocate checks every answer encoder, not only the ones
// the probe and keepalive paths use, is free when dst has room.
func TestAnswersDoNotAllocate(t *testing.T) {
	var e Encoder
	req := goldenProbeReq
	dst := make([]byte, 0, 1500)
	for _, r := range []*Redirect{goldenRedirect4(), goldenRedirect6()} {
		if n := testing.AllocsPerRun(100, func() { _, _ = e.AppendRedirect(dst, &req, r, ProbeSize) }); n != 0 {
			t.Errorf("redirect: %v allocations", n)
		}
	}
	for _, a := range []KeepaliveAnswer{{Mapped: client4}, {Mapped: client6, Drain: true}} {
		if n := testing.AllocsPerRun(100, func() { _, _ = e.AppendKeepaliveAnswer(dst, &req, &a, KeepaliveSize) }); n != 0 {
			t.Errorf("keepalive answer: %v allocations", n)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = e.AppendErrorAnswer(dst, &req, stun.CodeUnauthorized, 64) }); n != 0 {
		t.Errorf("error answer: %v allocations", n)
	}
}

// fuzzAnswerAddr makes an address from fuzzer bytes: the first byte picks
// IPv4, IPv6, IPv4-mapped IPv6 or the zero address, the rest fill it.
func fuzzAnswerAddr(b []byte) (netip.AddrPort, []byte) {
	if len(b) == 0 {
		return netip.AddrPort{}, b
	}
	kind, b := b[0]%4, b[1:]
	var raw [18]byte
	b = b[copy(raw[:], b):]
	port := uint16(raw[16])<<8 | uint16(raw[17])
	switch kind {
	case 0:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(raw[:4])), port), b
	case 1:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(raw[:16])), port), b
	case 2:
		return netip.AddrPortFrom(netip.AddrFrom16(netip.AddrFrom4([4]byte(raw[:4])).As16()), port), b
	}
	return netip.AddrPort{}, b
}

func FuzzAnswersMatchReference(f *testing.F) {
	addr := func(ap netip.AddrPort) []byte {
		kind := byte(3)
		var raw []byte
		switch a := ap.Addr(); {
		case a.Is4():
			kind, raw = 0, a.AsSlice()
		case a.Is4In6():
			kind, raw = 2, a.Unmap().AsSlice()
		case a.Is6():
			kind, raw = 1, a.AsSlice()
		}
		raw = append(raw, make([]byte, 16-len(raw))...)
		return append(append([]byte{kind}, raw...), byte(ap.Port()>>8), byte(ap.Port()))
	}
	cat := func(aps ...netip.AddrPort) []byte {
		var b []byte
		for _, ap := range aps {
			b = append(b, addr(ap)...)
		}
		return b
	}
	// flags: 1 HasSession, 2 Fingerprint, 4 Drain, 8 Allocate; 48 picks
	// dst; 64 sets a Domain.
	f.Add(addr(server4), goldenTicket(), uint64(7), int64(time.Second), int64(3*time.Second),
		cat(backup4a, backup4b), addr(client4), uint8(3), uint16(ProbeSize), int32(401), goldenTx[:])
	f.Add(addr(server6), goldenTicket(), uint64(7), int64(time.Second), int64(3*time.Second),
		cat(backup6, backup4a, backup4b), addr(client6), uint8(7|16), uint16(128), int32(300), goldenTx[:])
	f.Add(addr(mapped4), bytes.Repeat([]byte{9}, 70), uint64(0), int64(0), int64(-1),
		cat(mapped4, netip.AddrPort{}, backup6, backup6, backup6), addr(mapped4), uint8(2|32), uint16(72),
		int32(-1), []byte{})
	f.Add(addr(server4), []byte{}, uint64(1), int64(1), int64(math.MaxInt64), []byte{}, addr(netip.AddrPort{}),
		uint8(8|48), uint16(28), int32(25600), bytes.Repeat([]byte{0xff}, 12))
	f.Add(addr(server4), []byte("turn1.example.com"), uint64(0), int64(0), int64(0), []byte{}, addr(client4),
		uint8(8|64), uint16(36), int32(300), goldenTx[:])
	f.Add(addr(server6), bytes.Repeat([]byte{'a'}, 100), uint64(2), int64(0), int64(0), cat(backup6), addr(client6),
		uint8(1|2|64), uint16(ProbeSize), int32(300), goldenTx[:])
	f.Fuzz(func(t *testing.T, server, ticket []byte, term uint64, interval, deadAfter int64, backups, mapped []byte,
		flags uint8, limit uint16, code int32, tx []byte) {
		in := answerInput{limit: int(limit), code: stun.ErrorCode(code), dst: int(flags>>4) % 4}
		in.req.Method = stun.MethodBinding
		if flags&8 != 0 {
			in.req.Method = stun.MethodAllocate
		}
		in.req.HasSession, in.req.Fingerprint = flags&1 != 0, flags&2 != 0
		copy(in.req.TxID[:], tx)
		in.r.Server, _ = fuzzAnswerAddr(server)
		if len(ticket) > 0 {
			in.r.Ticket = ticket[:min(len(ticket), 80)]
		}
		if flags&64 != 0 {
			// The ticket's bytes as the domain too: some fit, some not.
			in.r.Domain = strings.Repeat(string(ticket), 1+int(term%4))
		}
		in.r.Term = term
		in.r.Interval, in.r.DeadAfter = time.Duration(interval), time.Duration(deadAfter)
		for len(backups) > 0 && len(in.r.Backups) < 8 {
			var ap netip.AddrPort
			ap, backups = fuzzAnswerAddr(backups)
			in.r.Backups = append(in.r.Backups, ap)
		}
		in.ka.Mapped, _ = fuzzAnswerAddr(mapped)
		in.ka.Drain = flags&4 != 0
		checkAnswers(t, &in)
	})
}
