package wire

import (
	"net/netip"
	"testing"

	"github.com/pion/stun/v3"
)

// probePath is the probe responder's decide-and-encode path without the
// policy: decode the probe, mint a ticket for the chosen server and encode
// the redirect, every buffer owned and reused.
type probePath struct {
	d      Decoder
	e      Encoder
	tr     *Ticketer
	req    Request
	r      Redirect
	ticket [MaxTicketLen]byte
	out    [1500]byte
	probe  []byte
}

func newProbePath(t testing.TB) *probePath {
	p := &probePath{tr: NewTicketer(goldenKey)}
	var err error
	p.probe, err = p.e.AppendProbe(nil, &Probe{TxID: goldenTx, Session: goldenSession, Service: "voice",
		LostServer: lost4, PadTo: ProbeSize})
	if err != nil {
		t.Fatal(err)
	}
	p.r = Redirect{Server: server6, Interval: goldenInterval, DeadAfter: goldenDeadAfter, Term: goldenTerm,
		Backups: []netip.AddrPort{backup6, backup4a, backup4b}}
	return p
}

func (p *probePath) run() ([]byte, error) {
	if err := p.d.DecodeRequest(p.probe, &p.req); err != nil {
		return nil, err
	}
	p.r.Ticket = p.tr.Append(p.ticket[:0], p.req.Session, client4, p.r.Server, goldenExpiry)
	return p.e.AppendRedirect(p.out[:0], &p.req, &p.r, Limit(&p.req, 3))
}

// keepalivePath is the session endpoint's path: decode a keepalive, check
// its ticket, encode the answer.
type keepalivePath struct {
	d   Decoder
	e   Encoder
	tr  *Ticketer
	req Request
	out [1500]byte
	msg []byte
}

func newKeepalivePath(t testing.TB) *keepalivePath {
	k := &keepalivePath{tr: NewTicketer(goldenKey)}
	var err error
	k.msg, err = k.e.AppendKeepalive(nil, &Keepalive{TxID: goldenTx, Session: goldenSession,
		Ticket: goldenTicket(), PadTo: KeepaliveSize})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (k *keepalivePath) run() ([]byte, error) {
	if err := k.d.DecodeRequest(k.msg, &k.req); err != nil {
		return nil, err
	}
	if err := k.tr.Verify(k.req.Ticket, k.req.Session, client4, server4, goldenExpiry); err != nil {
		return k.e.AppendErrorAnswer(k.out[:0], &k.req, stun.CodeUnauthorized, Limit(&k.req, 1))
	}
	a := KeepaliveAnswer{Mapped: client4, Drain: true}
	return k.e.AppendKeepaliveAnswer(k.out[:0], &k.req, &a, Limit(&k.req, 1))
}

// TestProbePathAllocs fails when the hot paths start allocating.
func TestProbePathAllocs(t *testing.T) {
	p := newProbePath(t)
	if b, err := p.run(); err != nil || len(b) == 0 {
		t.Fatalf("probe path: %v", err)
	}
	if n := testing.AllocsPerRun(200, func() { _, _ = p.run() }); n != 0 {
		t.Errorf("probe path: %v allocations per run, want 0", n)
	}
	k := newKeepalivePath(t)
	if b, err := k.run(); err != nil || len(b) == 0 {
		t.Fatalf("keepalive path: %v", err)
	}
	if n := testing.AllocsPerRun(200, func() { _, _ = k.run() }); n != 0 {
		t.Errorf("keepalive path: %v allocations per run, want 0", n)
	}
}

func BenchmarkDecodeRequest(b *testing.B) {
	p := newProbePath(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(p.probe)))
	for b.Loop() {
		if err := p.d.DecodeRequest(p.probe, &p.req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendRedirect encodes the probe path's redirect (IPv6 server,
// ticket, timers, term, three backups, fingerprint) by hand (direct) and
// with pion/stun as the encoder did before (reference).
func BenchmarkAppendRedirect(b *testing.B) {
	p := newProbePath(b)
	if err := p.d.DecodeRequest(p.probe, &p.req); err != nil {
		b.Fatal(err)
	}
	p.r.Ticket = goldenTicket()
	var ref refEncoder
	for _, bm := range []struct {
		name   string
		encode func() ([]byte, error)
	}{
		{"reference", func() ([]byte, error) { return ref.refAppendRedirect(p.out[:0], &p.req, &p.r, ProbeSize) }},
		{"direct", func() ([]byte, error) { return p.e.AppendRedirect(p.out[:0], &p.req, &p.r, ProbeSize) }},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bm.encode(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendKeepaliveAnswer encodes the keepalive path's answer (IPv4
// XOR-MAPPED-ADDRESS, USHER-DRAIN, fingerprint) by hand (direct) and with
// pion/stun (reference).
func BenchmarkAppendKeepaliveAnswer(b *testing.B) {
	k := newKeepalivePath(b)
	if err := k.d.DecodeRequest(k.msg, &k.req); err != nil {
		b.Fatal(err)
	}
	a := KeepaliveAnswer{Mapped: client4, Drain: true}
	limit := Limit(&k.req, 1)
	var ref refEncoder
	for _, bm := range []struct {
		name   string
		encode func() ([]byte, error)
	}{
		{"reference", func() ([]byte, error) { return ref.refAppendKeepaliveAnswer(k.out[:0], &k.req, &a, limit) }},
		{"direct", func() ([]byte, error) { return k.e.AppendKeepaliveAnswer(k.out[:0], &k.req, &a, limit) }},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bm.encode(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkProbePath(b *testing.B) {
	p := newProbePath(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.run(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKeepalivePath(b *testing.B) {
	k := newKeepalivePath(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.run(); err != nil {
			b.Fatal(err)
		}
	}
}
