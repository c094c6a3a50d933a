package client

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"github.com/usherlb/usher/wire"
)

func TestProberAnswers(t *testing.T) {
	server := netip.MustParseAddrPort("127.0.0.1:3479")
	backups := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.2:3479"), netip.MustParseAddrPort("127.0.0.3:3479")}
	tests := []struct {
		name    string
		h       handler
		wantErr error
		probes  int // transmissions the balancer sees
	}{
		{"redirect", redirectTo(wire.Redirect{Server: server, Term: 7, Backups: backups}), nil, 1},
		{"retransmitted until answered", func(n int, req *wire.Request, _ netip.AddrPort) []byte {
			if n <= 2 {
				return nil
			}
			return redirect(req, &wire.Redirect{Server: server, Term: 7, Backups: backups})
		}, nil, 3},
		{"silent", func(int, *wire.Request, netip.AddrPort) []byte { return nil }, ErrNoAnswer, 3},
		{"error answer", func(_ int, req *wire.Request, _ netip.AddrPort) []byte {
			return errorAnswer(req, stun.CodeServerError)
		}, ErrRefused, 1},
		{"success answer", func(_ int, req *wire.Request, from netip.AddrPort) []byte {
			return keepaliveAnswer(req, from, false)
		}, ErrRefused, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bal := newFake(t, tt.h)
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			a, err := Probe(ctx, bal.addr, testOptions())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Probe: %v, want %v", err, tt.wantErr)
			}
			reqs := bal.requests()
			if len(reqs) != tt.probes {
				t.Fatalf("balancer saw %d probes, want %d", len(reqs), tt.probes)
			}
			for i, r := range reqs {
				if r.TxID != reqs[0].TxID || r.Size < wire.ProbeSize || !r.HasSession {
					t.Errorf("probe %d: tx %x (first %x), %d bytes, session %v: want one padded transaction with a session",
						i, r.TxID, reqs[0].TxID, r.Size, r.HasSession)
				}
			}
			if tt.wantErr != nil {
				return
			}
			if a.Server != server || a.Term != 7 || !slices.Equal(a.Backups, backups) || a.From != bal.addr || a.Transmissions != tt.probes {
				t.Errorf("answer %+v, want server %v term 7 backups %v from %v after %d transmissions",
					a, server, backups, bal.addr, tt.probes)
			}
			if a.RTT <= 0 || a.RTT > waitFor {
				t.Errorf("RTT %v", a.RTT)
			}
		})
	}
}

func TestProberIgnoresStaleAndForeignAnswers(t *testing.T) {
	srv := newServer(t)
	var first wire.Request
	bal := newFake(t, func(n int, req *wire.Request, from netip.AddrPort) []byte {
		if n == 1 {
			first = *req // lost: the first probe goes unanswered
			return nil
		}
		// The late answer to the first probe, garbage, then the answer,
		// from the assigned server rather than the balancer.
		srv.conn.WriteToUDPAddrPort(redirect(&first, &wire.Redirect{Server: netip.MustParseAddrPort("127.0.0.9:9")}), from)
		srv.conn.WriteToUDPAddrPort([]byte("not stun"), from)
		srv.conn.WriteToUDPAddrPort(redirect(req, &wire.Redirect{Server: srv.addr}), from)
		return nil
	})
	opts := testOptions()
	opts.Retries = 1
	p, err := NewProber(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := p.Probe(ctx, bal.addr); !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("first probe: %v, want %v", err, ErrNoAnswer)
	}
	a, err := p.Probe(ctx, bal.addr)
	if err != nil {
		t.Fatalf("second probe: %v", err)
	}
	if a.Server != srv.addr || a.From != srv.addr {
		t.Errorf("answer %+v, want server and source %v", a, srv.addr)
	}
	reqs := bal.requests()
	if len(reqs) != 2 || reqs[0].Session != reqs[1].Session || reqs[0].TxID == reqs[1].TxID {
		t.Errorf("probes of one Prober %+v: want two, one session, fresh transactions", reqs)
	}
}

func TestProberEnds(t *testing.T) {
	silent := func(int, *wire.Request, netip.AddrPort) []byte { return nil }
	slow := testOptions()
	slow.RTO, slow.Retries = time.Minute, 1
	tests := []struct {
		name    string
		stop    func(p *Prober, cancel context.CancelFunc)
		wantErr error
	}{
		{"closed", func(p *Prober, _ context.CancelFunc) { p.Close() }, ErrClosed},
		{"canceled", func(_ *Prober, cancel context.CancelFunc) { cancel() }, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bal := newFake(t, silent)
			p, err := NewProber(slow)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				// Stop once the probe is out (or after waitFor, so
				// that a lost probe cannot hang the test).
				for end := time.Now().Add(waitFor); len(bal.requests()) == 0 && time.Now().Before(end); {
					time.Sleep(time.Millisecond)
				}
				tt.stop(p, cancel)
			}()
			start := time.Now()
			_, err = p.Probe(ctx, bal.addr)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Probe: %v, want %v", err, tt.wantErr)
			}
			if d := time.Since(start); d > waitFor {
				t.Errorf("Probe ended after %v", d)
			}
		})
	}
}

func TestProberRejectsBadInput(t *testing.T) {
	if _, err := NewProber(Options{Service: string(make([]byte, wire.MaxServiceLen+1))}); err == nil {
		t.Error("NewProber accepted a service name that is too long")
	}
	if _, err := Probe(context.Background(), netip.AddrPort{}, testOptions()); err == nil {
		t.Error("Probe accepted an invalid balancer address")
	}
}
