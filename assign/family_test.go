package assign

import (
	"errors"
	"net/netip"
	"testing"
)

// TestFamilyOf checks the family of each kind of address.
func TestFamilyOf(t *testing.T) {
	tests := []struct {
		addr string
		want Family
	}{
		{"198.18.0.1", IPv4},
		{"::ffff:198.18.0.1", IPv4},
		{"2001:db8::1", IPv6},
		{"::1", IPv6},
		{"", AnyFamily},
	}
	for _, tt := range tests {
		var a netip.Addr
		if tt.addr != "" {
			a = netip.MustParseAddr(tt.addr)
		}
		if got := FamilyOf(a); got != tt.want {
			t.Errorf("FamilyOf(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

// TestPickForFamily checks, under every policy, over a farm of both
// families (the IPv6 nodes idle, so every load-based policy would love
// them), that PickFor chooses and names as backups only servers of the
// client's family, that AnyFamily considers all of them, and that a
// family no eligible server has yields ErrNoServer.
func TestPickForFamily(t *testing.T) {
	for _, p := range allPolicies {
		t.Run(p.String(), func(t *testing.T) {
			c := newFakeClock()
			nodes := equalNodes(c, 6, 1000)
			for i := range nodes {
				nodes[i].Sessions = 500
				if i%2 == 1 {
					nodes[i].Addr = netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}), 3479)
					nodes[i].Sessions = 0
				}
			}
			a := newTestAssigner(Config{Policy: p}, c, 1, nodes)
			seen := map[Family]int{}
			for i := range 60 {
				fam := Family(i % 3) // AnyFamily, IPv4, IPv6 in turn
				nd, bk, err := a.PickFor(fam, sid(uint64(i)), netip.AddrPort{}, nil, 4, BookSession)
				if err != nil {
					t.Fatalf("%v: %v", fam, err)
				}
				if fam != AnyFamily && FamilyOf(nd.Addr.Addr()) != fam {
					t.Fatalf("%v client given %v", fam, nd.Addr)
				}
				seen[FamilyOf(nd.Addr.Addr())]++
				for _, b := range bk {
					if fam != AnyFamily && FamilyOf(b.Addr()) != fam {
						t.Fatalf("%v client given backup %v", fam, b)
					}
				}
				if want := map[Family]int{AnyFamily: 4, IPv4: 2, IPv6: 2}[fam]; len(bk) != want {
					t.Fatalf("%v client given %d backups %v, want %d", fam, len(bk), bk, want)
				}
			}
			if seen[IPv4] == 0 || seen[IPv6] == 0 {
				t.Errorf("picks by family %v: one family never chosen", seen)
			}
			dst := make([]netip.AddrPort, 0, 4)
			i := uint64(0)
			if got := testing.AllocsPerRun(200, func() {
				i++
				_, dst, _ = a.PickFor(IPv6, sid(i), netip.AddrPort{}, dst[:0], 2, BookSession)
			}); got != 0 {
				t.Errorf("PickFor in a view of both families: %v allocations per run", got)
			}
			only4 := newTestAssigner(Config{Policy: p}, c, 1, equalNodes(c, 3, 1000))
			if _, _, err := only4.PickFor(IPv6, sid(1), netip.AddrPort{}, nil, 2, BookSession); !errors.Is(err, ErrNoServer) {
				t.Errorf("IPv6 client of an IPv4 farm: %v, want ErrNoServer", err)
			}
			if nd, bk, err := only4.PickFor(IPv4, sid(1), netip.AddrPort{}, nil, 2, BookSession); err != nil || len(bk) != 2 || FamilyOf(nd.Addr.Addr()) != IPv4 {
				t.Errorf("IPv4 client of an IPv4 farm: %v, %v backups, %v", nd.Addr, bk, err)
			}
			if _, _, err := only4.PickFor(Family(7), sid(1), netip.AddrPort{}, nil, 2, BookSession); !errors.Is(err, ErrNoServer) {
				t.Errorf("a client of no known family: %v, want ErrNoServer", err)
			}
		})
	}
}

// TestPickForDualStack checks a farm where some nodes have an address of
// each family (Addr6): an IPv6 client may be sent to them, at their IPv6
// address, backups included, and never to an IPv4-only node; an IPv4
// client may be sent to any of them, at its IPv4 address; a client that
// reported a dual-stack node lost by its IPv6 address is not sent back.
func TestPickForDualStack(t *testing.T) {
	v6 := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}), 3478)
	}
	for _, p := range allPolicies {
		t.Run(p.String(), func(t *testing.T) {
			c := newFakeClock()
			nodes := equalNodes(c, 6, 1000)
			for i := range nodes {
				if i%2 == 1 {
					nodes[i].Addr6 = v6(i) // dual stack
				}
			}
			a := newTestAssigner(Config{Policy: p}, c, 1, nodes)
			byAddr := map[netip.AddrPort]Node{}
			for _, n := range nodes {
				byAddr[n.Addr], byAddr[n.Addr6] = n, n
			}
			for i := range 60 {
				nd, bk, err := a.PickFor(IPv6, sid(uint64(i)), netip.AddrPort{}, nil, 4, BookSession)
				if err != nil {
					t.Fatal(err)
				}
				if got := nd.AddrFor(IPv6); got != nd.Addr6 || !got.IsValid() {
					t.Fatalf("IPv6 client picked %s, AddrFor = %v", nd.ID, got)
				}
				if len(bk) != 2 {
					t.Fatalf("IPv6 client given backups %v, want the 2 other dual-stack nodes", bk)
				}
				for _, b := range bk {
					if FamilyOf(b.Addr()) != IPv6 || byAddr[b].Addr6 != b {
						t.Fatalf("IPv6 client given backup %v", b)
					}
				}
				nd, bk, err = a.PickFor(IPv4, sid(uint64(i)), netip.AddrPort{}, nil, 5, BookSession)
				if err != nil || FamilyOf(nd.AddrFor(IPv4).Addr()) != IPv4 || len(bk) != 5 {
					t.Fatalf("IPv4 client: %v %v %v", nd.AddrFor(IPv4), bk, err)
				}
				for _, b := range bk {
					if FamilyOf(b.Addr()) != IPv4 {
						t.Fatalf("IPv4 client given backup %v", b)
					}
				}
			}
			for i := range 20 {
				nd, _, err := a.PickFor(IPv6, sid(uint64(i)), v6(1), nil, 0, BookSession)
				if err != nil || nd.ID == nodes[1].ID {
					t.Fatalf("IPv6 client that lost %v sent to %s (%v)", v6(1), nd.ID, err)
				}
			}
		})
	}
}

// TestAddrFor checks which address a node gives each family.
func TestAddrFor(t *testing.T) {
	v4 := netip.MustParseAddrPort("198.18.0.1:3478")
	v6 := netip.MustParseAddrPort("[2001:db8::1]:3478")
	tests := []struct {
		addr, addr6 netip.AddrPort
		fam         Family
		want        netip.AddrPort
	}{
		{v4, netip.AddrPort{}, IPv4, v4},
		{v4, netip.AddrPort{}, IPv6, netip.AddrPort{}},
		{v4, netip.AddrPort{}, AnyFamily, v4},
		{v4, v6, IPv6, v6},
		{v4, v6, IPv4, v4},
		{v6, netip.AddrPort{}, IPv6, v6},
		{v6, netip.AddrPort{}, IPv4, netip.AddrPort{}},
	}
	for _, tt := range tests {
		n := Node{Addr: tt.addr, Addr6: tt.addr6}
		if got := n.AddrFor(tt.fam); got != tt.want {
			t.Errorf("Node{%v, %v}.AddrFor(%v) = %v, want %v", tt.addr, tt.addr6, tt.fam, got, tt.want)
		}
	}
}
