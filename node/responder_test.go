package node

import (
	"encoding/binary"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/assign"
	"github.com/usherlb/usher/wire"
)

// testResponder returns a responder over a view of the given servers.
func testResponder(clk *fakeClock, serving ServingFunc, servers ...netip.AddrPort) *Responder {
	view := new(atomic.Pointer[assign.View])
	var nodes []assign.Node
	for i, s := range servers {
		nodes = append(nodes, assign.Node{ID: string(rune('a' + i)), Addr: s, Capacity: 1 << 30, ReportedAt: clk.Now()})
	}
	view.Store(assign.NewView(nodes))
	return NewResponder(ResponderConfig{
		Serving:            serving,
		View:               view,
		TicketKey:          testKey,
		TicketTTL:          time.Hour,
		KeepaliveInterval:  time.Second,
		DeadAfter:          3 * time.Second,
		StockAmplification: 3,
		Backups:            2,
		Now:                clk.Now,
		Rand:               rand.New(rand.NewPCG(1, 1)),
	})
}

func TestResponderUsherProbe(t *testing.T) {
	clk := newFakeClock()
	r := testResponder(clk, Solo, server1)
	s := wire.SessionID{1, 1, 2, 3, 5, 8, 13, 21}
	out, why := r.answer(nil, probe(t, wire.Probe{Session: s, PadTo: wire.ProbeSize}), clientA)
	if why != dropNone {
		t.Fatalf("dropped: %v", why)
	}
	a := decode(t, out)
	if a.Success || a.Code != stun.CodeTryAlternate || a.Server != server1 || a.Term != 1 ||
		a.Interval != time.Second || a.DeadAfter != 3*time.Second || len(a.Ticket) != wire.TicketLen {
		t.Errorf("answer = %+v", a)
	}
	// The ticket is the one the endpoint at server1 accepts from clientA.
	if err := wire.NewTicketer(testKey).Verify(a.Ticket, s, clientA, server1, uint32(clk.Now().Unix())); err != nil {
		t.Errorf("ticket: %v", err)
	}
	if len(out) > wire.ProbeSize {
		t.Errorf("answer %d bytes > probe", len(out))
	}
}

func TestResponderBackupsAndLostServer(t *testing.T) {
	clk := newFakeClock()
	r := testResponder(clk, Solo, server1, server2, server3)
	for range 20 {
		out, why := r.answer(nil, probe(t, wire.Probe{Session: wire.SessionID{4}, LostServer: server2, PadTo: wire.ProbeSize}), clientA)
		if why != dropNone {
			t.Fatalf("dropped: %v", why)
		}
		a := decode(t, out)
		if a.Server == server2 {
			t.Fatalf("assigned the lost server")
		}
		// Of three servers one is assigned and one reported lost: the
		// third is the only backup (the lost one is no backup either).
		if a.NumBackups != 1 {
			t.Fatalf("backups = %d, want 1", a.NumBackups)
		}
		for _, b := range a.Backups[:a.NumBackups] {
			if b == a.Server || b == server2 {
				t.Errorf("backup %v is the assigned or the lost server", b)
			}
		}
	}
	// A client is never sent back to the server it reported lost, even when
	// that is the only one: it gets an overload answer and tries again
	// after the retry-after (or tries its backups) while the leader checks
	// the server. Other clients still get it.
	solo := testResponder(clk, Solo, server1)
	out, why := solo.answer(nil, probe(t, wire.Probe{Session: wire.SessionID{5}, LostServer: server1, PadTo: wire.ProbeSize}), clientA)
	if a := decode(t, out); why != dropNone || a.Code != stun.CodeInsufficientCapacity || a.RetryAfter == 0 {
		t.Errorf("the only server, reported lost: %v, %+v; want 508 with a retry-after", why, a)
	}
	out, why = solo.answer(nil, probe(t, wire.Probe{Session: wire.SessionID{6}, PadTo: wire.ProbeSize}), clientB)
	if why != dropNone || decode(t, out).Server != server1 {
		t.Errorf("another client: %v", why)
	}
}

// TestResponderStock checks the redirects stock clients get: a Binding
// request with stock_binding = "redirect", and a TURN Allocate always (the
// default answer to a Binding is TestResponderStockBinding's).
func TestResponderStock(t *testing.T) {
	clk := newFakeClock()
	r := testResponder(clk, Solo, server1)
	r.cfg.RedirectStockBinding = true

	bind := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	out, why := r.answer(nil, bind.Raw, clientA)
	if why != dropNone {
		t.Fatalf("binding dropped: %v", why)
	}
	a := decode(t, out)
	if a.Method != stun.MethodBinding || a.Code != stun.CodeTryAlternate || a.Server != server1 || a.Ticket != nil || a.Term != 0 || len(out) > 3*len(bind.Raw) {
		t.Errorf("binding answer = %+v (%d bytes)", a, len(out))
	}
	// pion can read it too.
	m := &stun.Message{Raw: out}
	if err := m.Decode(); err != nil {
		t.Fatal(err)
	}
	var alt stun.AlternateServer
	if err := alt.GetFrom(m); err != nil || !alt.IP.Equal(net.IP(server1.Addr().AsSlice())) || alt.Port != int(server1.Port()) {
		t.Errorf("ALTERNATE-SERVER = %v, %v", alt, err)
	}

	allocate := stockAllocate()
	for _, redirect := range []bool{true, false} {
		r.cfg.RedirectStockBinding = redirect
		out, why = r.answer(nil, allocate, clientA)
		if why != dropNone {
			t.Fatalf("allocate dropped: %v", why)
		}
		if a := decode(t, out); a.Method != stun.MethodAllocate || a.Code != stun.CodeTryAlternate || a.Server != server1 || len(out) > 3*len(allocate) {
			t.Errorf("allocate answer (stock_binding redirect %t) = %+v", redirect, a)
		}
	}
}

func TestResponderDrops(t *testing.T) {
	clk := newFakeClock()
	bare := stun.MustBuild(stun.TransactionID, stun.BindingRequest) // 20 bytes
	v6 := netip.MustParseAddrPort("[2001:db8::1]:1")
	clientV6 := netip.MustParseAddrPort("[2001:db8::7]:40000")
	tests := []struct {
		name    string
		amp     int
		serving ServingFunc
		servers []netip.AddrPort
		pkt     []byte
		want    dropReason
		from    netip.AddrPort // the zero value means clientA
	}{
		{"amplification 1", 1, Solo, []netip.AddrPort{server1}, bare.Raw, dropTooLarge, netip.AddrPort{}},
		{"not serving", 3, func() (uint64, bool) { return 0, false }, []netip.AddrPort{server1}, probe(t, wire.Probe{PadTo: 256}), dropNotLeader, netip.AddrPort{}},
		{"unknown service", 3, Solo, []netip.AddrPort{server1}, probe(t, wire.Probe{Service: "video", PadTo: 256}), dropUnknownService, netip.AddrPort{}},
		{"garbage", 3, Solo, []netip.AddrPort{server1}, []byte{0xde, 0xad}, dropNotSTUN, netip.AddrPort{}},
		{"response", 3, Solo, []netip.AddrPort{server1}, stun.MustBuild(stun.TransactionID, stun.BindingSuccess).Raw, dropNotRequest, netip.AddrPort{}},
		{"unpadded to IPv6", 3, Solo, []netip.AddrPort{v6}, probe(t, wire.Probe{}), dropTooLarge, clientV6},
		{"unpadded to IPv4", 3, Solo, []netip.AddrPort{server1}, probe(t, wire.Probe{}), dropNone, netip.AddrPort{}},
		{"no servers and no room to say so", 1, Solo, nil, bareAllocate(), dropNoServer, netip.AddrPort{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testResponder(clk, tt.serving, tt.servers...)
			r.cfg.StockAmplification = tt.amp
			from := tt.from
			if !from.IsValid() {
				from = clientA
			}
			out, why := r.answer(nil, tt.pkt, from)
			if why != tt.want {
				t.Fatalf("got %v, want %v", why, tt.want)
			}
			if why == dropNone && len(out) > len(tt.pkt) {
				t.Errorf("answer %d bytes > request %d", len(out), len(tt.pkt))
			}
		})
	}
	// The default service is served.
	r := testResponder(clk, Solo, server1)
	if _, why := r.answer(nil, probe(t, wire.Probe{Service: "default", PadTo: 256}), clientA); why != dropNone {
		t.Errorf("default service: %v", why)
	}
}

// TestResponderSizeRule checks answers against random request sizes, for
// Usher probes and stock requests, IPv4 and IPv6 servers.
func TestResponderSizeRule(t *testing.T) {
	clk := newFakeClock()
	v6 := netip.MustParseAddrPort("[2001:db8::1]:3479")
	r := testResponder(clk, Solo, server1, v6, server2)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 1000 {
		var pkt []byte
		amp := 1
		if i%3 == 0 {
			m := stun.MustBuild(stun.TransactionID, stun.BindingRequest,
				stun.RawAttribute{Type: stun.AttrSoftware, Value: make([]byte, rng.IntN(40))})
			pkt, amp = m.Raw, 3
		} else {
			pkt = probe(t, wire.Probe{Session: wire.SessionID{byte(i)}, PadTo: rng.IntN(300)})
		}
		// Clients of both families, so that redirects to both are sized.
		from := clientA
		if i%2 == 1 {
			from = netip.MustParseAddrPort("[2001:db8::7]:40000")
		}
		out, why := r.answer(nil, pkt, from)
		if why == dropNone && len(out) > amp*len(pkt) {
			t.Fatalf("request %d bytes, answer %d", len(pkt), len(out))
		}
	}
}

// TestResponderMalformedNeverCrashes checks design invariant 6 on the
// probe responder: datagrams of every malformed kind are dropped for the
// right reason, and over a socket, in every single-socket serving mode,
// each is counted as a drop, none is answered, and valid probes sent
// between them are still answered. Random bytes over a valid header never
// crash it either.
func TestResponderMalformedNeverCrashes(t *testing.T) {
	clk := newFakeClock()
	good := probe(t, wire.Probe{Session: wire.SessionID{1}, PadTo: 128})
	t.Run("decide", func(t *testing.T) {
		r := testResponder(clk, Solo, server1)
		rng := rand.New(rand.NewPCG(9, 10))
		seen := map[dropReason]int{}
		for i := range 10000 {
			pkt, want := malformed(rng, good)
			out, why := r.answer(nil, pkt, clientA)
			if why != want {
				t.Fatalf("datagram %d (%d bytes, % x): %v (%d-byte answer), want %v", i, len(pkt), pkt[:min(len(pkt), 24)], why, len(out), want)
			}
			seen[want]++
		}
		for _, why := range []dropReason{dropNotSTUN, dropNotRequest, dropMethod, dropAttribute, dropFingerprint} {
			if seen[why] == 0 {
				t.Errorf("no datagram dropped as %v: %v", why, seen)
			}
		}
	})
	t.Run("random", func(t *testing.T) {
		r := testResponder(clk, Solo, server1)
		rng := rand.New(rand.NewPCG(7, 8))
		buf := make([]byte, 300)
		for range 10000 {
			n := rng.IntN(len(buf))
			for i := range n {
				buf[i] = byte(rng.Uint32())
			}
			if n > 20 && rng.IntN(2) == 0 {
				copy(buf, good[:20])
				buf[2], buf[3] = byte((n-20)>>8), byte(n-20)
			}
			// Should the bytes make a valid request, its answer keeps to
			// the size rule.
			if out, why := r.answer(nil, buf[:n], clientA); why == dropNone && len(out) > 3*n {
				t.Fatalf("%d-byte datagram, %d-byte answer", n, len(out))
			}
		}
	})
	for _, m := range serveModes {
		if m.sockets != 1 {
			continue
		}
		t.Run(m.name, func(t *testing.T) { testMalformedServed(t, m, good) })
	}
}

// testMalformedServed sends rounds of malformed datagrams, each round
// followed by a valid probe, to a responder serving in mode m: the probe's
// answer must be the first datagram back, and by then (the serving loop
// takes datagrams in order, and counts a drop before it sends the next
// answer) every datagram before it must be counted as dropped, by reason.
func testMalformedServed(t *testing.T, m serveMode, good []byte) {
	r := listenMode(t, m, newFakeClock(), Solo, server1)
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(r.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A probe longer than the read buffer arrives truncated.
	oversized := stun.MustBuild(stun.TransactionID, stun.BindingRequest,
		stun.RawAttribute{Type: wire.AttrSession, Value: make([]byte, wire.SessionLen)},
		stun.RawAttribute{Type: stun.AttrPadding, Value: make([]byte, 2*maxDatagram)}, stun.Fingerprint).Raw
	rng := rand.New(rand.NewPCG(11, 12))
	want := map[string]uint64{}
	buf := make([]byte, 2*maxDatagram)
	const rounds, perRound = 8, 16 // a round fits a default receive buffer many times over
	for round := range rounds {
		for i := range perRound {
			pkt, why := malformed(rng, good)
			if i == 0 {
				pkt, why = oversized, dropNotSTUN
			}
			if _, err := c.Write(pkt); err != nil {
				t.Fatal(err)
			}
			want[why.String()]++
		}
		p := probe(t, wire.Probe{Session: wire.SessionID{2, byte(round)}, PadTo: wire.ProbeSize})
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("round %d: the valid probe got no answer: %v", round, err)
		}
		var d wire.Decoder
		var a wire.Response
		if err := d.DecodeResponse(buf[:n], &a); err != nil || a.TxID != [12]byte(p[8:20]) || a.Server != server1 {
			t.Fatalf("round %d: the first datagram back (%d bytes) is not the probe's answer: %+v, %v", round, n, a, err)
		}
		if got := r.Stats().Drops; !maps.Equal(got, want) {
			t.Fatalf("round %d: drops counted %v, want %v", round, got, want)
		}
	}
	// The count of answers follows the sends, so it may trail them.
	waitFor(t, func() bool { return r.Stats().Answered == rounds })
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := c.Read(buf); err == nil {
		t.Errorf("an extra %d-byte datagram came back", n)
	}
}

// malformed returns a datagram that the balancer must drop, of a kind rng
// picks, mostly derived from good (a valid probe with FINGERPRINT), and the
// reason it must be dropped for. Every kind is malformed by construction:
// no outcome of rng makes it a valid request.
func malformed(rng *rand.Rand, good []byte) ([]byte, dropReason) {
	pkt := append([]byte(nil), good...)
	randomize := func(b []byte) {
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
	}
	switch rng.IntN(10) {
	case 0: // the first two bits of a STUN message are zero
		pkt = make([]byte, 1+rng.IntN(300))
		randomize(pkt)
		pkt[0] |= 0x40 << rng.IntN(2)
	case 1: // shorter than a header
		pkt = make([]byte, rng.IntN(wire.HeaderSize))
		randomize(pkt)
	case 2: // a wrong magic cookie
		pkt[4+rng.IntN(4)] ^= byte(1 + rng.IntN(255))
	case 3: // truncated: the length field claims more
		pkt = pkt[:rng.IntN(len(pkt))]
	case 4: // bytes after the message
		extra := make([]byte, 1+rng.IntN(64))
		randomize(extra)
		pkt = append(pkt, extra...)
	case 5: // a header whose length field does not match a random body
		body := make([]byte, rng.IntN(280))
		randomize(body)
		pkt = append(pkt[:wire.HeaderSize], body...)
		l := len(body) + 4*(1+rng.IntN(100))
		pkt[2], pkt[3] = byte(l>>8), byte(l)
	case 6: // not a request
		class := []stun.MessageClass{stun.ClassIndication, stun.ClassSuccessResponse, stun.ClassErrorResponse}[rng.IntN(3)]
		binary.BigEndian.PutUint16(pkt, stun.NewType(stun.MethodBinding, class).Value())
		return pkt, dropNotRequest
	case 7: // a method other than Binding and Allocate
		method := stun.Method(rng.IntN(0x1000))
		if method == stun.MethodBinding || method == stun.MethodAllocate {
			method = stun.MethodRefresh
		}
		binary.BigEndian.PutUint16(pkt, stun.NewType(method, stun.ClassRequest).Value())
		return pkt, dropMethod
	case 8: // a byte changed in the transaction ID or the CRC itself
		i := 8 + rng.IntN(12)
		if rng.IntN(2) == 0 {
			i = len(pkt) - 1 - rng.IntN(4)
		}
		pkt[i] ^= byte(1 + rng.IntN(255))
		return pkt, dropFingerprint
	default: // an Usher attribute of a size it cannot have
		bad := []stun.RawAttribute{
			{Type: wire.AttrSession, Value: make([]byte, []int{0, 4, 7, 9, 16}[rng.IntN(5)])},
			{Type: wire.AttrTicket, Value: make([]byte, wire.MaxTicketLen+1+rng.IntN(64))},
			{Type: wire.AttrService, Value: make([]byte, wire.MaxServiceLen+1+rng.IntN(64))},
			{Type: wire.AttrLostServer, Value: make([]byte, rng.IntN(8))},
		}[rng.IntN(4)]
		return stun.MustBuild(stun.TransactionID, stun.BindingRequest, bad, stun.Fingerprint).Raw, dropAttribute
	}
	return pkt, dropNotSTUN
}

// askOnce sends one probe to addr and returns the answer's server.
func askOnce(t *testing.T, addr netip.AddrPort, s wire.SessionID) netip.AddrPort {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("junk"))
	c.Write(probe(t, wire.Probe{Session: s, PadTo: 256}))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, buf[:n]).Server
}

// TestResponderServeStop serves and stops, on its own socket and on one the
// caller keeps, which survives Stop and can be served again.
func TestResponderServeStop(t *testing.T) {
	clk := newFakeClock()
	r := testResponder(clk, Solo, server1)
	defer r.Close()

	if err := r.Listen(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	if got := askOnce(t, r.Addr(), wire.SessionID{1}); got != server1 {
		t.Errorf("listen: got %v", got)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if r.Serving() || r.Addr().IsValid() {
		t.Error("still serving after Close")
	}
	r.Close() // idempotent

	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	addr := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	for round := range 3 {
		r.Serve(conn)
		r.Serve(conn) // serving again replaces, without leaking
		if got := askOnce(t, addr, wire.SessionID{byte(round)}); got != server1 {
			t.Errorf("round %d: got %v", round, got)
		}
		r.Stop()
		if r.Serving() {
			t.Error("still serving after Stop")
		}
	}
	// The caller's socket is still open after Stop.
	if _, err := conn.WriteToUDPAddrPort([]byte("x"), addr); err != nil {
		t.Errorf("socket closed by Stop: %v", err)
	}
	if st := r.Stats(); st.Answered != 4 || st.Drops["not_stun"] != 4 {
		t.Errorf("stats = %+v", st)
	}
	// A socket closed under the responder ends its goroutine; Stop reaps it.
	r.Serve(conn)
	conn.Close()
	r.Stop()
}

func TestAnswerAllocs(t *testing.T) {
	clk := newFakeClock()
	r := testResponder(clk, Solo, server1, server2, server3)
	pkts := [][]byte{
		probe(t, wire.Probe{Session: wire.SessionID{1}, PadTo: wire.ProbeSize}),
		stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw,
		[]byte("garbage"),
	}
	dst := make([]byte, 0, maxDatagram)
	for _, pkt := range pkts {
		r.answer(dst, pkt, clientA) // warm up
		if n := testing.AllocsPerRun(200, func() {
			clk.Advance(100 * time.Millisecond)
			r.answer(dst[:0], pkt, clientA)
		}); n != 0 {
			t.Errorf("%d allocs per answer to a %d-byte request", int(n), len(pkt))
		}
	}
	// A new view installed between probes does not allocate either once
	// the Assigner has seen one as large.
	nodes := r.cfg.View.Load().Nodes()
	views := []*assign.View{assign.NewView(nodes), assign.NewView(nodes)}
	i := 0
	if n := testing.AllocsPerRun(200, func() {
		i++
		r.cfg.View.Store(views[i%2])
		r.answer(dst[:0], pkts[0], clientA)
	}); n != 0 {
		t.Errorf("%v allocs per answer with a view change", n)
	}
}

func BenchmarkResponderAnswer(b *testing.B) {
	clk := newFakeClock()
	r := testResponder(clk, Solo, server1, server2, server3)
	benchLoop(b, clk, r, probe(b, wire.Probe{Session: wire.SessionID{1}, PadTo: wire.ProbeSize}))
}

// benchLoop times r's answer to pkt from clientA.
func benchLoop(b *testing.B, clk *fakeClock, r *Responder, pkt []byte) {
	dst := make([]byte, 0, maxDatagram)
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		// Time moves as it does in service, so pending ledger entries
		// expire and the ledger stays the same size.
		clk.Advance(time.Millisecond)
		if _, why := r.answer(dst[:0], pkt, clientA); why != dropNone {
			b.Fatal(why)
		}
	}
}

// A new term starts a new ledger: the pending assignments of the last term,
// which this node may not have made, are not carried over.
func TestResponderNewTermStartsColdLedger(t *testing.T) {
	clk := newFakeClock()
	var term atomic.Uint64
	term.Store(5)
	r := testResponder(clk, func() (uint64, bool) { return term.Load(), true }, server1)
	for i := range 3 {
		if _, why := r.answer(nil, probe(t, wire.Probe{Session: wire.SessionID{byte(i)}, PadTo: wire.ProbeSize}), clientA); why != dropNone {
			t.Fatal(why)
		}
	}
	if n := r.asg.Pending("a"); n != 3 {
		t.Fatalf("pending %d after three assignments, want 3", n)
	}
	term.Store(6)
	out, why := r.answer(nil, probe(t, wire.Probe{Session: wire.SessionID{9}, PadTo: wire.ProbeSize}), clientA)
	if why != dropNone {
		t.Fatal(why)
	}
	if got := decode(t, out).Term; got != 6 {
		t.Errorf("answer in term %d, want 6", got)
	}
	if n := r.asg.Pending("a"); n != 1 {
		t.Errorf("pending %d after the new term's first assignment, want 1", n)
	}
}
