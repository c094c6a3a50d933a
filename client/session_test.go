package client

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"github.com/usherlb/usher/wire"
)

func TestDialAssignsAndKeepsAlive(t *testing.T) {
	srv := newServer(t)
	backup := netip.MustParseAddrPort("127.0.0.1:9")
	bal := newFake(t, redirectTo(wire.Redirect{
		Server: srv.addr, Ticket: []byte("ticket-1"), Term: 3,
		Interval: 20 * time.Millisecond, DeadAfter: 400 * time.Millisecond,
		Backups: []netip.AddrPort{backup},
	}))
	opts := testOptions()
	opts.LocalAddr = netip.AddrPort{} // the default, dual-stack socket
	s := dial(t, bal, opts)

	ev, before := waitEvent(t, s, Assigned)
	if ev.Server != srv.addr || ev.Term != 3 || len(before) != 0 {
		t.Fatalf("got %v after %v, want assigned %v term 3 first", ev, before, srv.addr)
	}
	if s.Server() != srv.addr || s.Term() != 3 {
		t.Fatalf("Server, Term = %v, %d", s.Server(), s.Term())
	}
	if iv, dead := s.Timers(); iv != 20*time.Millisecond || dead != 400*time.Millisecond {
		t.Fatalf("Timers = %v, %v, want the answer's USHER-TIMERS", iv, dead)
	}
	eventually(t, "three keepalives and a mapped address", func() bool {
		return len(srv.requests()) >= 3 && s.Mapped().IsValid()
	})
	if got, want := s.Mapped().Port(), s.LocalAddr().Port(); got != want {
		t.Errorf("Mapped port %d, want the socket's %d", got, want)
	}
	for i, r := range srv.requests() {
		if !r.HasSession || r.Session != s.ID() || r.Ticket != "ticket-1" {
			t.Errorf("keepalive %d: session %x (has %v) ticket %q, want %x and the ticket", i, r.Session, r.HasSession, r.Ticket, s.ID())
		}
	}
	for i, r := range bal.requests() {
		if !r.HasSession || r.Session != s.ID() {
			t.Errorf("probe %d: session %x, want %x", i, r.Session, s.ID())
		}
	}
	st := s.Stats()
	if st.ProbesSent != 1 || st.KeepalivesSent < 3 || st.KeepalivesAnswered == 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestRequestsArePadded(t *testing.T) {
	srv := newServer(t)
	bal := newFake(t, redirectTo(wire.Redirect{Server: srv.addr, Ticket: []byte("t")}))
	s := dial(t, bal, testOptions())
	eventually(t, "a keepalive", func() bool { return len(srv.requests()) > 0 })

	tests := []struct {
		name string
		reqs []seenReq
		min  int
	}{
		{"probe", bal.requests(), wire.ProbeSize},
		{"keepalive", srv.requests(), wire.KeepaliveSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range tt.reqs {
				if r.Size < tt.min {
					t.Errorf("%s of %d bytes, want at least %d", tt.name, r.Size, tt.min)
				}
			}
		})
	}
	_ = s
}

func TestProbeRetransmission(t *testing.T) {
	srv := newServer(t)
	bal := newFake(t, func(n int, req *wire.Request, _ netip.AddrPort) []byte {
		if n <= 2 {
			return nil // lose the first two
		}
		return redirect(req, &wire.Redirect{Server: srv.addr})
	})
	s := dial(t, bal, testOptions())
	if s.Server() != srv.addr {
		t.Fatalf("Server = %v, want %v", s.Server(), srv.addr)
	}
	probes := bal.requests()
	if len(probes) != 3 {
		t.Fatalf("balancer saw %d probes, want 3", len(probes))
	}
	for i, p := range probes {
		if p.TxID != probes[0].TxID {
			t.Errorf("probe %d has transaction %x, want the first's %x", i, p.TxID, probes[0].TxID)
		}
	}
	if st := s.Stats(); st.ProbesSent != 3 || st.ProbeRounds != 1 {
		t.Errorf("ProbesSent %d ProbeRounds %d, want 3 and 1", st.ProbesSent, st.ProbeRounds)
	}
}

func TestAnswerFromAnotherSource(t *testing.T) {
	srv := newServer(t)
	// The balancer never answers itself: the assigned server does.
	bal := newFake(t, func(_ int, req *wire.Request, from netip.AddrPort) []byte {
		srv.conn.WriteToUDPAddrPort(redirect(req, &wire.Redirect{Server: srv.addr}), from)
		return nil
	})
	s := dial(t, bal, testOptions())
	if s.Server() != srv.addr {
		t.Fatalf("Server = %v, want %v", s.Server(), srv.addr)
	}
}

func TestFailoverNamesLostServer(t *testing.T) {
	a, b := newServer(t), newServer(t)
	bal := newFake(t, func(_ int, req *wire.Request, _ netip.AddrPort) []byte {
		if req.LostServer.IsValid() {
			return redirect(req, &wire.Redirect{Server: b.addr})
		}
		return redirect(req, &wire.Redirect{Server: a.addr})
	})
	s := dial(t, bal, testOptions())
	waitEvent(t, s, Assigned)
	a.silent.Store(true)

	lost, _ := waitEvent(t, s, Lost)
	if lost.Server != a.addr || lost.Err != nil {
		t.Fatalf("lost event %v, want %v without error", lost, a.addr)
	}
	re, between := waitEvent(t, s, Reassigned)
	if re.Server != b.addr || len(between) != 0 {
		t.Fatalf("got %v after %v, want reassigned to %v", re, kinds(between), b.addr)
	}
	if s.Server() != b.addr {
		t.Fatalf("Server = %v, want %v", s.Server(), b.addr)
	}
	reprobes := 0
	for _, r := range bal.requests() {
		if r.LostServer == a.addr && r.Session == s.ID() {
			reprobes++
		}
	}
	if reprobes == 0 {
		t.Fatalf("no re-probe named the lost server %v with the same session", a.addr)
	}
	eventually(t, "keepalives to the new server", func() bool { return len(b.requests()) > 0 })
	st := s.Stats()
	if st.Lost != 1 || st.Reassignments != 1 || st.MaxKeepaliveGap == 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestOlderTermIgnored(t *testing.T) {
	a, stale, fresh := newServer(t), newServer(t), newServer(t)
	reprobes := 0
	bal := newFake(t, func(_ int, req *wire.Request, _ netip.AddrPort) []byte {
		if !req.LostServer.IsValid() {
			return redirect(req, &wire.Redirect{Server: a.addr, Term: 5})
		}
		if reprobes++; reprobes == 1 {
			// A deposed leader's answer: older term.
			return redirect(req, &wire.Redirect{Server: stale.addr, Term: 4})
		}
		return redirect(req, &wire.Redirect{Server: fresh.addr, Term: 6})
	})
	s := dial(t, bal, testOptions())
	waitEvent(t, s, Assigned)
	a.silent.Store(true)

	re, before := waitEvent(t, s, Reassigned)
	if re.Server != fresh.addr || re.Term != 6 {
		t.Fatalf("reassigned %v after %v, want %v at term 6", re, kinds(before), fresh.addr)
	}
	if s.Term() != 6 {
		t.Errorf("Term = %d, want 6", s.Term())
	}
	if n := s.Stats().StaleAnswers; n == 0 {
		t.Error("StaleAnswers = 0, want the term-4 answer counted")
	}
	if n := len(stale.requests()); n != 0 {
		t.Errorf("the stale answer's server got %d keepalives", n)
	}
}

func TestLoopGuard(t *testing.T) {
	a, b := newServer(t), newServer(t)
	// The balancer insists on a, and names b as a backup.
	bal := newFake(t, redirectTo(wire.Redirect{Server: a.addr, Backups: []netip.AddrPort{b.addr}}))
	s := dial(t, bal, testOptions())
	waitEvent(t, s, Assigned)
	a.silent.Store(true)
	waitEvent(t, s, Lost)
	keepalivesToA := len(a.requests())

	g, _ := waitEvent(t, s, Guarded)
	if g.Server != a.addr {
		t.Fatalf("guarded %v, want %v", g.Server, a.addr)
	}
	ev, before := waitEvent(t, s, BackupUsed)
	if ev.Server != b.addr || slices.Contains(kinds(before), Reassigned) {
		t.Fatalf("got %v after %v, want a move to %v and no reassignment", ev, kinds(before), b.addr)
	}
	if s.Server() != b.addr {
		t.Fatalf("Server = %v, want %v", s.Server(), b.addr)
	}
	if n := len(a.requests()); n != keepalivesToA {
		t.Errorf("%d keepalives went to the lost server after it was lost", n-keepalivesToA)
	}
	if s.Stats().Guarded == 0 {
		t.Error("Guarded = 0")
	}
}

func TestLoopGuardAcceptsOnlyServer(t *testing.T) {
	a := newServer(t)
	bal := newFake(t, redirectTo(wire.Redirect{Server: a.addr}))
	s := dial(t, bal, testOptions())
	waitEvent(t, s, Assigned)
	a.silent.Store(true)
	waitEvent(t, s, Lost)
	a.silent.Store(false)

	re, before := waitEvent(t, s, Reassigned)
	if re.Server != a.addr || slices.Contains(kinds(before), Guarded) {
		t.Fatalf("got %v after %v, want reassigned to the only server %v", re, kinds(before), a.addr)
	}
}

func TestDrainMoves(t *testing.T) {
	a, b := newServer(t), newServer(t)
	a.setHandler(func(n int, req *wire.Request, from netip.AddrPort) []byte {
		return keepaliveAnswer(req, from, n >= 2) // drain from the second keepalive on
	})
	var first txID
	bal := newFake(t, func(n int, req *wire.Request, _ netip.AddrPort) []byte {
		if n == 1 {
			first = req.TxID
		}
		if req.TxID == first {
			return redirect(req, &wire.Redirect{Server: a.addr})
		}
		return redirect(req, &wire.Redirect{Server: b.addr})
	})
	s := dial(t, bal, testOptions())
	waitEvent(t, s, Assigned)

	d, _ := waitEvent(t, s, Draining)
	if d.Server != a.addr {
		t.Fatalf("draining %v, want %v", d.Server, a.addr)
	}
	re, before := waitEvent(t, s, Reassigned)
	if re.Server != b.addr || slices.Contains(kinds(before), Lost) {
		t.Fatalf("got %v after %v, want reassigned to %v without a loss", re, kinds(before), b.addr)
	}
	for _, r := range bal.requests() {
		if r.LostServer.IsValid() {
			t.Errorf("a drain re-probe named %v as lost", r.LostServer)
		}
	}
}

func TestDrainStaysWhenAlone(t *testing.T) {
	a := newFake(t, func(_ int, req *wire.Request, from netip.AddrPort) []byte {
		return keepaliveAnswer(req, from, true)
	})
	bal := newFake(t, redirectTo(wire.Redirect{Server: a.addr}))
	s := dial(t, bal, testOptions())
	waitEvent(t, s, Draining)
	eventually(t, "a re-probe after the drain", func() bool { return len(bal.requests()) >= 2 })
	n := len(a.requests())
	eventually(t, "keepalives to continue", func() bool { return len(a.requests()) > n+3 })
	if s.Server() != a.addr {
		t.Fatalf("Server = %v, want to stay on %v", s.Server(), a.addr)
	}
	st := s.Stats()
	if st.Reassignments != 0 || st.Lost != 0 || st.Drains != 1 {
		t.Errorf("stats %+v, want one drain and no move", st)
	}
}

func TestBackupWhenBalancerSilent(t *testing.T) {
	a, b := newServer(t), newServer(t)
	refuser := newFake(t, func(_ int, req *wire.Request, _ netip.AddrPort) []byte {
		return errorAnswer(req, stun.CodeUnauthorized)
	})
	bal := newFake(t, redirectTo(wire.Redirect{
		Server: a.addr, Ticket: []byte("tk"), Backups: []netip.AddrPort{a.addr, refuser.addr, b.addr},
	}))
	s := dial(t, bal, testOptions())
	waitEvent(t, s, Assigned)
	bal.silent.Store(true)
	a.silent.Store(true)

	ev, before := waitEvent(t, s, BackupUsed)
	if ev.Server != b.addr {
		t.Fatalf("backup used %v, want %v", ev.Server, b.addr)
	}
	if want := []EventKind{Lost, Failed}; !slices.Equal(kinds(before), want) {
		t.Fatalf("events before %v, want %v", kinds(before), want)
	}
	if s.Server() != b.addr {
		t.Fatalf("Server = %v, want %v", s.Server(), b.addr)
	}
	eventually(t, "keepalives to the backup", func() bool { return len(b.requests()) >= 2 })
	for _, r := range b.requests() {
		if r.Session != s.ID() || r.Ticket != "tk" {
			t.Errorf("backup keepalive with session %x ticket %q", r.Session, r.Ticket)
		}
	}
	if len(refuser.requests()) == 0 {
		t.Error("the refusing backup was never tried")
	}
	if st := s.Stats(); st.BackupsUsed != 1 || st.BackupKeepalivesSent < 2 {
		t.Errorf("stats %+v", st)
	}
}

// A second outage while the balancer stays silent: the session moved from
// a to its backup b, a came back, and b dies. a is on the loop guard's
// list, but it is the only backup left, so the session tries it.
func TestBackupAfterSecondOutage(t *testing.T) {
	a, b := newServer(t), newServer(t)
	bal := newFake(t, redirectTo(wire.Redirect{Server: a.addr, Backups: []netip.AddrPort{a.addr, b.addr}}))
	s := dial(t, bal, testOptions())
	waitEvent(t, s, Assigned)
	bal.silent.Store(true)
	a.silent.Store(true)
	if ev, _ := waitEvent(t, s, BackupUsed); ev.Server != b.addr {
		t.Fatalf("first backup used %v, want %v", ev.Server, b.addr)
	}
	a.silent.Store(false)
	b.silent.Store(true)
	if ev, _ := waitEvent(t, s, BackupUsed); ev.Server != a.addr {
		t.Fatalf("second backup used %v, want %v (the only live one)", ev.Server, a.addr)
	}
}

func TestReprobeUntilBalancerReturns(t *testing.T) {
	a, b := newServer(t), newServer(t)
	bal := newFake(t, redirectTo(wire.Redirect{Server: a.addr}))
	s := dial(t, bal, testOptions())
	waitEvent(t, s, Assigned)
	bal.silent.Store(true)
	a.silent.Store(true)

	waitEvent(t, s, Lost)
	waitEvent(t, s, Failed)
	waitEvent(t, s, Failed)
	rounds := s.Stats().ProbeRounds
	bal.setHandler(redirectTo(wire.Redirect{Server: b.addr}))
	bal.silent.Store(false)

	re, _ := waitEvent(t, s, Reassigned)
	if re.Server != b.addr {
		t.Fatalf("reassigned %v, want %v", re.Server, b.addr)
	}
	if rounds < 3 {
		t.Errorf("%d probe rounds before the balancer returned, want at least 3", rounds)
	}
}

// TestKeepaliveRefused has the server refuse the session after two
// keepalives, for a ticket (401), its source's quota (486) or its capacity
// (508): the client re-probes without naming the server lost.
func TestKeepaliveRefused(t *testing.T) {
	for _, code := range []stun.ErrorCode{stun.CodeUnauthorized, stun.CodeAllocQuotaReached, stun.CodeInsufficientCapacity} {
		t.Run(strconv.Itoa(int(code)), func(t *testing.T) { testKeepaliveRefused(t, code) })
	}
}

func testKeepaliveRefused(t *testing.T, code stun.ErrorCode) {
	a, b := newServer(t), newServer(t)
	a.setHandler(func(n int, req *wire.Request, from netip.AddrPort) []byte {
		if n >= 2 {
			return errorAnswer(req, code)
		}
		return keepaliveAnswer(req, from, false)
	})
	var first txID
	bal := newFake(t, func(n int, req *wire.Request, _ netip.AddrPort) []byte {
		if n == 1 {
			first = req.TxID
		}
		if req.TxID == first {
			return redirect(req, &wire.Redirect{Server: a.addr})
		}
		return redirect(req, &wire.Redirect{Server: b.addr})
	})
	s := dial(t, bal, testOptions())
	lost, _ := waitEvent(t, s, Lost)
	if lost.Server != a.addr || !errors.Is(lost.Err, ErrRefused) {
		t.Fatalf("lost %v, want %v refused", lost, a.addr)
	}
	re, _ := waitEvent(t, s, Reassigned)
	if re.Server != b.addr {
		t.Fatalf("reassigned %v, want %v", re.Server, b.addr)
	}
	for _, r := range bal.requests() {
		if r.LostServer.IsValid() {
			t.Errorf("re-probe after a refusal named %v as lost", r.LostServer)
		}
	}
}

func TestDialFails(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		answer  handler
		ctx     func() (context.Context, context.CancelFunc)
		rto     time.Duration
		wantErr error
	}{
		{
			name:    "silent balancer",
			rto:     5 * time.Millisecond,
			wantErr: ErrNoAnswer,
		},
		{
			name: "error answer",
			answer: func(_ int, req *wire.Request, _ netip.AddrPort) []byte {
				return errorAnswer(req, stun.CodeServerError)
			},
			wantErr: ErrRefused,
		},
		{
			name: "deadline",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 50*time.Millisecond)
			},
			rto:     time.Second,
			wantErr: context.DeadlineExceeded,
		},
		{
			name:    "canceled",
			ctx:     func() (context.Context, context.CancelFunc) { return canceled, func() {} },
			rto:     time.Second,
			wantErr: context.Canceled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bal := newFake(t, tt.answer)
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			opts := testOptions()
			if tt.rto > 0 {
				opts.RTO = tt.rto
			}
			s, err := Dial(ctx, bal.addr, opts)
			if !errors.Is(err, tt.wantErr) || s != nil {
				t.Fatalf("Dial = %v, %v; want error %v", s, err, tt.wantErr)
			}
		})
	}
}

func TestDialRejectsBadOptions(t *testing.T) {
	opts := testOptions()
	opts.Service = string(make([]byte, wire.MaxServiceLen+1))
	if _, err := Dial(context.Background(), netip.MustParseAddrPort("127.0.0.1:1"), opts); err == nil {
		t.Error("Dial accepted an over-long service name")
	}
	if _, err := Dial(context.Background(), netip.AddrPort{}, testOptions()); err == nil {
		t.Error("Dial accepted an invalid balancer address")
	}
}

func TestMalformedDatagramsIgnored(t *testing.T) {
	srv := newServer(t)
	bal := newFake(t, redirectTo(wire.Redirect{Server: srv.addr}))
	s := dial(t, bal, testOptions())
	waitEvent(t, s, Assigned)

	junk, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer junk.Close()
	valid := keepaliveAnswer(&wire.Request{Method: stun.MethodBinding, Size: 64}, s.LocalAddr(), false)
	datagrams := [][]byte{
		nil,
		{0x00},
		[]byte("definitely not stun"),
		valid[:len(valid)-3], // truncated
		append(append([]byte(nil), valid...), 0, 0, 0, 0), // trailing bytes
	}
	for _, d := range datagrams {
		if _, err := junk.WriteToUDPAddrPort(d, s.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	// A well-formed answer to no transaction of ours.
	junk.WriteToUDPAddrPort(valid, s.LocalAddr())

	eventually(t, "the datagrams to be counted", func() bool {
		st := s.Stats()
		return st.Malformed >= uint64(len(datagrams)-1) && st.Unmatched >= 1
	})
	answered := s.Stats().KeepalivesAnswered
	eventually(t, "keepalives to go on", func() bool { return s.Stats().KeepalivesAnswered > answered+2 })
}

func TestEventsDroppedNotBlocking(t *testing.T) {
	a, b := newServer(t), newServer(t)
	bal := newFake(t, func(_ int, req *wire.Request, _ netip.AddrPort) []byte {
		if req.LostServer.IsValid() {
			return redirect(req, &wire.Redirect{Server: b.addr})
		}
		return redirect(req, &wire.Redirect{Server: a.addr})
	})
	opts := testOptions()
	opts.Events = 1
	s := dial(t, bal, opts)
	a.silent.Store(true)
	// Nobody reads the events: Lost and Reassigned are dropped, and the
	// session still moves.
	eventually(t, "the move to the other server", func() bool { return s.Server() == b.addr })
	// The session switches servers before it emits Reassigned, so the
	// second drop may trail the move a little.
	eventually(t, "two dropped events", func() bool { return s.Stats().EventsDropped >= 2 })
	if ev := <-s.Events(); ev.Kind != Assigned {
		t.Errorf("buffered event %v, want the assignment", ev)
	}
}

func TestCloseIdempotent(t *testing.T) {
	srv := newServer(t)
	bal := newFake(t, redirectTo(wire.Redirect{Server: srv.addr}))
	s := dial(t, bal, testOptions())
	if err := s.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for range s.Events() {
		// Drain whatever was buffered; the loop ends because Close
		// closed the channel.
	}
	time.Sleep(20 * time.Millisecond) // let a datagram in flight land
	n := len(srv.requests())
	time.Sleep(100 * time.Millisecond)
	if m := len(srv.requests()); m != n {
		t.Errorf("%d keepalives sent after Close", m-n)
	}
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestLoopGuardWindowExpires(t *testing.T) {
	a, b := newServer(t), newServer(t)
	b.silent.Store(true) // the backup is dead too
	bal := newFake(t, redirectTo(wire.Redirect{Server: a.addr, Backups: []netip.AddrPort{b.addr}}))
	clock := &fakeClock{}
	clock.advance(time.Hour)
	opts := testOptions()
	opts.Now = clock.now
	opts.LoopGuard = time.Minute
	s := dial(t, bal, opts)
	waitEvent(t, s, Assigned)
	a.silent.Store(true)
	waitEvent(t, s, Lost)
	waitEvent(t, s, Guarded)
	a.silent.Store(false)
	if s.Server() != a.addr {
		t.Fatalf("Server = %v", s.Server())
	}
	// Once the window has passed, a is no longer refused.
	clock.advance(2 * time.Minute)
	re, _ := waitEvent(t, s, Reassigned)
	if re.Server != a.addr {
		t.Fatalf("reassigned %v, want %v", re.Server, a.addr)
	}
}
