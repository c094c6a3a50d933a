package wire

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// The size-rule property tests draw random requests and answers from a
// seeded generator, so a failure reproduces; the seed is in the failure
// message.

const sizeRuleRounds = 3000

// randRequest encodes and decodes a random request: Binding or Allocate,
// with or without USHER-SESSION, PADDING of random length and FINGERPRINT.
func randRequest(t *testing.T, rng *rand.Rand, d *Decoder, r *Request) []byte {
	t.Helper()
	method := stun.MethodBinding
	if rng.IntN(4) == 0 {
		method = stun.MethodAllocate
	}
	var attrs []rawAttr
	var tx [stun.TransactionIDSize]byte
	for i := range tx {
		tx[i] = byte(rng.Uint32())
	}
	if rng.IntN(3) > 0 {
		var s SessionID
		for i := range s {
			s[i] = byte(rng.Uint32())
		}
		attrs = append(attrs, rawAttr{AttrSession, s[:]})
	}
	if rng.IntN(3) > 0 {
		attrs = append(attrs, rawAttr{stun.AttrPadding, make([]byte, rng.IntN(400))})
	}
	m := &stun.Message{Type: stun.NewType(method, stun.ClassRequest), TransactionID: tx}
	m.WriteHeader()
	for _, a := range attrs {
		m.Add(a.t, a.v)
	}
	if rng.IntN(2) == 0 {
		if err := stun.Fingerprint.AddTo(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.DecodeRequest(m.Raw, r); err != nil {
		t.Fatalf("decoding a generated request: %v", err)
	}
	return m.Raw
}

func randAddr(rng *rand.Rand) netip.AddrPort {
	port := uint16(rng.Uint32())
	if rng.IntN(2) == 0 {
		var a [4]byte
		for i := range a {
			a[i] = byte(rng.Uint32())
		}
		return netip.AddrPortFrom(netip.AddrFrom4(a), port)
	}
	var a [16]byte
	for i := range a {
		a[i] = byte(rng.Uint32())
	}
	a[0] = 0x20 // not IPv4-mapped
	return netip.AddrPortFrom(netip.AddrFrom16(a), port)
}

func randRedirect(rng *rand.Rand) *Redirect {
	r := &Redirect{Server: randAddr(rng)}
	if n := rng.IntN(MaxTicketLen + 2); n > 0 {
		r.Ticket = make([]byte, n-1)
		for i := range r.Ticket {
			r.Ticket[i] = byte(rng.Uint32())
		}
	}
	if rng.IntN(3) > 0 {
		r.Interval = time.Duration(rng.IntN(5000)) * time.Millisecond
		r.DeadAfter = time.Duration(rng.IntN(20000)) * time.Millisecond
	}
	if rng.IntN(3) > 0 {
		r.Term = rng.Uint64()
	}
	for range rng.IntN(9) {
		r.Backups = append(r.Backups, randAddr(rng))
	}
	return r
}

// randPrefix is what the caller had in dst already.
func randPrefix(rng *rand.Rand) []byte {
	p := make([]byte, rng.IntN(8), 1600)
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	return p
}

// redirectModel says which optional attributes AppendRedirect includes
// under limit, following its documented priority order.
type redirectModel struct {
	term, ticket, timers, fingerprint bool
	backups                           int
}

func modelRedirect(req *Request, r *Redirect, limit int) (redirectModel, bool) {
	var m redirectModel
	size := HeaderSize + 8 + addrSize(r.Server)
	if size > limit {
		return m, false
	}
	fits := func(n int) bool {
		if size+n > limit {
			return false
		}
		size += n
		return true
	}
	if !req.HasSession {
		m.fingerprint = req.Fingerprint && fits(8)
		return m, true
	}
	m.term = r.Term != 0 && fits(12)
	m.ticket = len(r.Ticket) > 0 && fits(4+(len(r.Ticket)+3)/4*4)
	m.timers = (r.Interval != 0 || r.DeadAfter != 0) && fits(12)
	m.fingerprint = req.Fingerprint && fits(8)
	for _, b := range r.Backups {
		if m.backups == MaxBackups || !fits(addrSize(b)) {
			break
		}
		m.backups++
	}
	return m, true
}

// checkTooLarge asserts the contract of a refused answer.
func checkTooLarge(t *testing.T, seed uint64, out, dst []byte, err error) {
	t.Helper()
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("seed %d: err = %v, want ErrTooLarge", seed, err)
	}
	if len(out) != len(dst) || !bytes.Equal(out, dst) || (len(dst) > 0 && &out[0] != &dst[0]) {
		t.Fatalf("seed %d: dst changed on ErrTooLarge", seed)
	}
}

func TestLimit(t *testing.T) {
	usher := &Request{HasSession: true, Size: 100}
	stock := &Request{Size: 100}
	for _, tt := range []struct {
		req    *Request
		factor int
		want   int
	}{
		{usher, 3, 100}, {usher, 1, 100}, {usher, 0, 100},
		{stock, 3, 300}, {stock, 2, 200}, {stock, 1, 100}, {stock, 0, 100}, {stock, -5, 100},
	} {
		if got := Limit(tt.req, tt.factor); got != tt.want {
			t.Errorf("Limit(session %v, %d) = %d, want %d", tt.req.HasSession, tt.factor, got, tt.want)
		}
	}
}

func TestRedirectSizeRule(t *testing.T) {
	var (
		e    Encoder
		d    Decoder
		req  Request
		resp Response
	)
	for seed := range uint64(sizeRuleRounds) {
		rng := rand.New(rand.NewPCG(seed, 0x5ee))
		randRequest(t, rng, &d, &req)
		r := randRedirect(rng)
		for factor := 1; factor <= 3; factor++ {
			limit := Limit(&req, factor)
			if req.HasSession && limit != req.Size || !req.HasSession && limit != factor*req.Size {
				t.Fatalf("seed %d: Limit = %d for a %d-byte request", seed, limit, req.Size)
			}
			dst := randPrefix(rng)
			out, err := e.AppendRedirect(dst, &req, r, limit)
			want, ok := modelRedirect(&req, r, limit)
			if !ok {
				checkTooLarge(t, seed, out, dst, err)
				continue
			}
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			if !bytes.Equal(out[:len(dst)], dst) {
				t.Fatalf("seed %d: prefix changed", seed)
			}
			ans := out[len(dst):]
			if len(ans) > limit {
				t.Fatalf("seed %d factor %d: %d-byte answer to a %d-byte request, limit %d",
					seed, factor, len(ans), req.Size, limit)
			}
			if err := d.DecodeResponse(ans, &resp); err != nil {
				t.Fatalf("seed %d: answer does not decode: %v", seed, err)
			}
			m := decodeStun(t, ans)
			got := redirectModel{
				term:        m.Contains(AttrTerm),
				ticket:      m.Contains(AttrTicket),
				timers:      m.Contains(AttrTimers),
				fingerprint: m.Contains(stun.AttrFingerprint),
			}
			for _, a := range m.Attributes {
				if a.Type == AttrBackup {
					got.backups++
				}
			}
			if got != want {
				t.Fatalf("seed %d factor %d limit %d: included %+v, documented order says %+v\n%s",
					seed, factor, limit, got, want, dump(ans))
			}
			if resp.Server != r.Server || resp.Code != stun.CodeTryAlternate || resp.TxID != req.TxID {
				t.Fatalf("seed %d: decoded %+v", seed, resp)
			}
			if got.ticket && !bytes.Equal(resp.Ticket, r.Ticket) || got.term && resp.Term != r.Term {
				t.Fatalf("seed %d: ticket or term changed", seed)
			}
			if !req.HasSession && len(m.Attributes) != 2+boolInt(got.fingerprint) {
				t.Fatalf("seed %d: stock answer is not minimal:\n%s", seed, dump(ans))
			}
		}
	}
}

func TestKeepaliveAnswerSizeRule(t *testing.T) {
	var (
		e    Encoder
		d    Decoder
		req  Request
		resp Response
	)
	for seed := range uint64(sizeRuleRounds) {
		rng := rand.New(rand.NewPCG(seed, 0xa11e))
		randRequest(t, rng, &d, &req)
		a := KeepaliveAnswer{Mapped: randAddr(rng), Drain: rng.IntN(2) == 0}
		for factor := 1; factor <= 3; factor++ {
			limit := Limit(&req, factor)
			dst := randPrefix(rng)
			out, err := e.AppendKeepaliveAnswer(dst, &req, &a, limit)
			size := HeaderSize + addrSize(a.Mapped)
			if size > limit {
				checkTooLarge(t, seed, out, dst, err)
				continue
			}
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			ans := out[len(dst):]
			if len(ans) > limit {
				t.Fatalf("seed %d: %d-byte answer, limit %d", seed, len(ans), limit)
			}
			// Drop order: FINGERPRINT goes first, then USHER-DRAIN.
			wantDrain := a.Drain && size+4 <= limit
			if wantDrain {
				size += 4
			}
			wantFP := req.Fingerprint && size+8 <= limit
			if err := d.DecodeResponse(ans, &resp); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			m := decodeStun(t, ans)
			if resp.Drain != wantDrain || m.Contains(stun.AttrFingerprint) != wantFP || resp.Mapped != a.Mapped {
				t.Fatalf("seed %d limit %d: drain %v fingerprint %v, want %v %v\n%s",
					seed, limit, resp.Drain, m.Contains(stun.AttrFingerprint), wantDrain, wantFP, dump(ans))
			}
		}
	}
}

func TestErrorAnswerSizeRule(t *testing.T) {
	var (
		e    Encoder
		d    Decoder
		req  Request
		resp Response
	)
	for seed := range uint64(sizeRuleRounds) {
		rng := rand.New(rand.NewPCG(seed, 0xe401))
		randRequest(t, rng, &d, &req)
		for factor := 1; factor <= 3; factor++ {
			// Exercise limits below the request's too: a caller may
			// tighten them.
			limit := Limit(&req, factor) - rng.IntN(16)
			dst := randPrefix(rng)
			out, err := e.AppendErrorAnswer(dst, &req, stun.CodeUnauthorized, limit)
			if HeaderSize+8 > limit {
				checkTooLarge(t, seed, out, dst, err)
				continue
			}
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			ans := out[len(dst):]
			if len(ans) > limit {
				t.Fatalf("seed %d: %d-byte answer, limit %d", seed, len(ans), limit)
			}
			if err := d.DecodeResponse(ans, &resp); err != nil || resp.Code != stun.CodeUnauthorized {
				t.Fatalf("seed %d: %v %+v", seed, err, resp)
			}
			wantFP := req.Fingerprint && HeaderSize+16 <= limit
			if decodeStun(t, ans).Contains(stun.AttrFingerprint) != wantFP {
				t.Fatalf("seed %d: fingerprint presence wrong\n%s", seed, dump(ans))
			}
		}
	}
}

// TestRecommendedSizes checks the worst cases the padded sizes are chosen
// for, as docs/protocol.md states them.
func TestRecommendedSizes(t *testing.T) {
	var e Encoder
	full := bytes.Repeat([]byte{0xaa}, MaxTicketLen)
	backups := []netip.AddrPort{backup6, backup6, backup6, backup6, backup6}
	req := Request{Method: stun.MethodBinding, HasSession: true, Fingerprint: true, Size: ProbeSize}
	b, err := e.AppendRedirect(nil, &req, &Redirect{Server: server6, Ticket: full, Interval: time.Second,
		DeadAfter: 3 * time.Second, Term: 1, Backups: backups}, ProbeSize)
	if err != nil {
		t.Fatal(err)
	}
	// 20 header + 8 ERROR-CODE + 24 ALTERNATE-SERVER + 12 TERM + 68 TICKET
	// + 12 TIMERS + 8 FINGERPRINT = 152, leaving 104: four IPv6 backups.
	m := decodeStun(t, b)
	n := 0
	for _, a := range m.Attributes {
		if a.Type == AttrBackup {
			n++
		}
	}
	if len(b) != 152+4*24 || n != 4 || !m.Contains(AttrTicket) || !m.Contains(stun.AttrFingerprint) {
		t.Errorf("worst-case redirect: %d bytes, %d backups\n%s", len(b), n, dump(b))
	}

	probe, err := e.AppendProbe(nil, &Probe{Session: goldenSession, Service: "voice", LostServer: server6, PadTo: ProbeSize})
	if err != nil || len(probe) != ProbeSize {
		t.Errorf("padded probe: %d bytes, %v", len(probe), err)
	}

	keep, err := e.AppendKeepalive(nil, &Keepalive{Session: goldenSession, PadTo: KeepaliveSize})
	if err != nil || len(keep) != KeepaliveSize {
		t.Errorf("padded keepalive: %d bytes, %v", len(keep), err)
	}
	kreq := Request{Method: stun.MethodBinding, HasSession: true, Fingerprint: true, Size: KeepaliveSize}
	ans, err := e.AppendKeepaliveAnswer(nil, &kreq, &KeepaliveAnswer{Mapped: client6, Drain: true}, KeepaliveSize)
	// 20 + 24 XOR-MAPPED-ADDRESS + 4 DRAIN + 8 FINGERPRINT = 56.
	if err != nil || len(ans) != 56 {
		t.Errorf("worst-case keepalive answer: %d bytes, %v", len(ans), err)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
