package node

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/internal/srclimit"
	"github.com/usherlb/usher/wire"
)

// capEndpoint is an endpoint that requires tickets and counts at most max
// sessions, perSource from one source.
func capEndpoint(clk *fakeClock, max, perSource int) *Endpoint {
	return newEndpoint(EndpointConfig{
		Addr:                 server1,
		SessionTTL:           3 * time.Second,
		RequireTicket:        true,
		TicketKey:            testKey,
		StockAmplification:   3,
		MaxSessions:          max,
		MaxSessionsPerSource: perSource,
		Now:                  clk.Now,
	})
}

// ticketed returns a keepalive of session i from client with a valid ticket.
func ticketed(t *testing.T, clk *fakeClock, i uint64, client netip.AddrPort) []byte {
	t.Helper()
	var s wire.SessionID
	binary.BigEndian.PutUint64(s[:], i)
	tk := wire.NewTicketer(testKey).Append(nil, s, client, server1, uint32(clk.Now().Add(time.Hour).Unix()))
	return keepalive(t, s, tk, wire.KeepaliveSize)
}

// send answers pkt from from and returns the answer's code (0: success).
func send(t *testing.T, e *Endpoint, pkt []byte, from netip.AddrPort) stun.ErrorCode {
	t.Helper()
	out, why := e.answer(nil, pkt, from)
	if why != dropNone {
		t.Fatalf("dropped: %v", why)
	}
	if r := decode(t, out); !r.Success {
		return r.Code
	}
	return 0
}

// TestEndpointTicketlessFlood floods a ticket-requiring endpoint with
// ticketless keepalives of fresh sessions from many sources: every one is
// refused with a 401 and none is counted, while a ticketed session keeps
// its answers.
func TestEndpointTicketlessFlood(t *testing.T) {
	clk := newFakeClock()
	e := capEndpoint(clk, 100, 10)
	legit := ticketed(t, clk, 1<<40, clientA)
	if code := send(t, e, legit, clientA); code != 0 {
		t.Fatalf("legit session refused: %d", code)
	}
	for i := range 5000 {
		var s wire.SessionID
		binary.BigEndian.PutUint64(s[:], uint64(i))
		from := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 40000)
		if code := send(t, e, keepalive(t, s, nil, wire.KeepaliveSize), from); code != stun.CodeUnauthorized {
			t.Fatalf("ticketless keepalive %d: code %d, want 401", i, code)
		}
	}
	if n, acc := e.Load(); n != 1 || acc != 1 {
		t.Errorf("load after the flood = %d sessions, %d accepted; want 1, 1", n, acc)
	}
	if st := e.Stats(); st.Refused != 5000 {
		t.Errorf("refused = %d, want 5000", st.Refused)
	}
	if code := send(t, e, legit, clientA); code != 0 {
		t.Errorf("legit session refused after the flood: %d", code)
	}
}

// TestEndpointRefusalLimit floods an endpoint whose error answers are
// bounded with ticketless keepalives from many sources: a second's worth
// of 401s goes out, the rest are dropped as refusal_limit, the budget
// comes back with time, and a ticketed session, new or known, is answered
// all along.
func TestEndpointRefusalLimit(t *testing.T) {
	const rate = 100
	clk := newFakeClock()
	e := capEndpoint(clk, 1000, 10)
	e.refuses = srclimit.NewBucket(rate, rate)
	forged := func(i int) ([]byte, netip.AddrPort) {
		var s wire.SessionID
		binary.BigEndian.PutUint64(s[:], uint64(i))
		from := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 40000)
		return keepalive(t, s, nil, wire.KeepaliveSize), from
	}
	flood := func() (refused, dropped int) {
		for i := range 1000 {
			pkt, from := forged(i)
			switch out, why := e.answer(nil, pkt, from); why {
			case dropNone:
				if r := decode(t, out); r.Code != stun.CodeUnauthorized {
					t.Fatalf("forged keepalive %d: code %d, want 401", i, r.Code)
				}
				refused++
			case dropRefusalLimit:
				dropped++
			default:
				t.Fatalf("forged keepalive %d dropped as %v", i, why)
			}
		}
		return refused, dropped
	}
	legit := ticketed(t, clk, 1<<40, clientA)
	if code := send(t, e, legit, clientA); code != 0 {
		t.Fatalf("legit session refused: %d", code)
	}
	if refused, dropped := flood(); refused != rate || dropped != 1000-rate {
		t.Errorf("first flood: %d refused, %d dropped; want %d, %d", refused, dropped, rate, 1000-rate)
	}
	if code := send(t, e, legit, clientA); code != 0 {
		t.Errorf("known session refused during the flood: %d", code)
	}
	if code := send(t, e, ticketed(t, clk, 1<<41, clientB), clientB); code != 0 {
		t.Errorf("new ticketed session refused during the flood: %d", code)
	}
	clk.Advance(500 * time.Millisecond)
	if refused, _ := flood(); refused != rate/2 {
		t.Errorf("half a second later: %d refused, want %d", refused, rate/2)
	}
	if st := e.Stats(); st.Refused != rate+rate/2 {
		t.Errorf("%d refusals counted, want %d", st.Refused, rate+rate/2)
	}
}

// TestEndpointSourceCap gives one source valid tickets for many sessions:
// only perSource are counted, the rest get 486; sessions of other sources,
// and the counted ones, keep being answered; the source's sessions free
// their places when they expire; an IPv6 /56 is one source.
func TestEndpointSourceCap(t *testing.T) {
	tests := []struct {
		name  string
		attk  func(i int) netip.AddrPort // the attacker's address for session i
		other netip.AddrPort
	}{
		{"one IPv4 address, many ports", func(i int) netip.AddrPort {
			return netip.AddrPortFrom(netip.MustParseAddr("198.18.5.5"), uint16(1000+i))
		}, netip.MustParseAddrPort("198.18.5.6:1000")},
		{"one IPv6 /56", func(i int) netip.AddrPort {
			a := netip.MustParseAddr("2001:db8:0:ab00::").As16()
			a[7], a[15] = byte(i), byte(i>>8)
			return netip.AddrPortFrom(netip.AddrFrom16(a), 4000)
		}, netip.MustParseAddrPort("[2001:db8:0:ac00::1]:4000")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			e := capEndpoint(clk, 1000, 8)
			for i := range 200 {
				want := stun.ErrorCode(0)
				if i >= 8 {
					want = stun.CodeAllocQuotaReached
				}
				if code := send(t, e, ticketed(t, clk, uint64(i), tt.attk(i)), tt.attk(i)); code != want {
					t.Fatalf("session %d: code %d, want %d", i, code, want)
				}
			}
			if n, _ := e.Load(); n != 8 {
				t.Errorf("sessions = %d, want 8", n)
			}
			if st := e.Stats(); st.SourceCapped != 192 {
				t.Errorf("source_cap refusals = %d, want 192", st.SourceCapped)
			}
			if code := send(t, e, ticketed(t, clk, 1<<40, tt.other), tt.other); code != 0 {
				t.Errorf("another source refused: %d", code)
			}
			if code := send(t, e, ticketed(t, clk, 3, tt.attk(3)), tt.attk(3)); code != 0 {
				t.Errorf("a counted session refused: %d", code)
			}
			clk.Advance(4 * time.Second)
			e.table.expire(clk.Now())
			if code := send(t, e, ticketed(t, clk, 500, tt.attk(500)), tt.attk(500)); code != 0 {
				t.Errorf("source refused after its sessions expired: %d", code)
			}
		})
	}
}

// TestEndpointSessionCap fills the endpoint from many sources: sessions
// beyond max_sessions get 508 and are not counted; counted ones continue.
func TestEndpointSessionCap(t *testing.T) {
	clk := newFakeClock()
	e := capEndpoint(clk, 50, 8)
	for i := range 300 {
		from := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 7, byte(i)}), uint16(2000+i))
		want := stun.ErrorCode(0)
		if i >= 50 {
			want = stun.CodeInsufficientCapacity
		}
		if code := send(t, e, ticketed(t, clk, uint64(i), from), from); code != want {
			t.Fatalf("session %d: code %d, want %d", i, code, want)
		}
	}
	if n, _ := e.Load(); n != 50 {
		t.Errorf("sessions = %d, want 50", n)
	}
	if st := e.Stats(); st.Full != 250 {
		t.Errorf("max_sessions refusals = %d, want 250", st.Full)
	}
	first := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 7, 0}), 2000)
	if code := send(t, e, ticketed(t, clk, 0, first), first); code != 0 {
		t.Errorf("a counted session refused: %d", code)
	}
}

// TestEndpointSourceCapMove moves a session to a source that is full: it is
// refused and stays counted where it was; moved to a free source, the old
// source's place is freed.
func TestEndpointSourceCapMove(t *testing.T) {
	clk := newFakeClock()
	e := capEndpoint(clk, 100, 1)
	a := netip.MustParseAddrPort("198.18.9.1:1000")
	b := netip.MustParseAddrPort("198.18.9.2:1000")
	c := netip.MustParseAddrPort("198.18.9.3:1000")
	for i, from := range []netip.AddrPort{a, b} {
		if code := send(t, e, ticketed(t, clk, uint64(i), from), from); code != 0 {
			t.Fatalf("session %d refused: %d", i, code)
		}
	}
	if code := send(t, e, ticketed(t, clk, 0, b), b); code != stun.CodeAllocQuotaReached {
		t.Errorf("move to a full source: code %d, want 486", code)
	}
	if code := send(t, e, ticketed(t, clk, 0, c), c); code != 0 {
		t.Errorf("move to a free source: code %d", code)
	}
	if code := send(t, e, ticketed(t, clk, 7, a), a); code != 0 {
		t.Errorf("the source left behind is still full: code %d", code)
	}
}

// TestAgentSessionCaps checks that the agent gives its session endpoint
// the caps its configuration derives.
func TestAgentSessionCaps(t *testing.T) {
	c := testConfig()
	c.Capacity = 40
	c.MaxSessionsPerSource = 3
	a := startAgent(t, c)
	if got := a.ep.cfg; got.MaxSessions != 80 || got.MaxSessionsPerSource != 3 || !got.RequireTicket {
		t.Errorf("endpoint caps %d, %d, require_ticket %v; want 80, 3, true", got.MaxSessions, got.MaxSessionsPerSource, got.RequireTicket)
	}
}
