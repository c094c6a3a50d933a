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
				nd, bk, err := a.PickFor(fam, sid(uint64(i)), netip.AddrPort{}, nil, 4)
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
				_, dst, _ = a.PickFor(IPv6, sid(i), netip.AddrPort{}, dst[:0], 2)
			}); got != 0 {
				t.Errorf("PickFor in a view of both families: %v allocations per run", got)
			}
			only4 := newTestAssigner(Config{Policy: p}, c, 1, equalNodes(c, 3, 1000))
			if _, _, err := only4.PickFor(IPv6, sid(1), netip.AddrPort{}, nil, 2); !errors.Is(err, ErrNoServer) {
				t.Errorf("IPv6 client of an IPv4 farm: %v, want ErrNoServer", err)
			}
			if nd, bk, err := only4.PickFor(IPv4, sid(1), netip.AddrPort{}, nil, 2); err != nil || len(bk) != 2 || FamilyOf(nd.Addr.Addr()) != IPv4 {
				t.Errorf("IPv4 client of an IPv4 farm: %v, %v backups, %v", nd.Addr, bk, err)
			}
			if _, _, err := only4.PickFor(Family(7), sid(1), netip.AddrPort{}, nil, 2); !errors.Is(err, ErrNoServer) {
				t.Errorf("a client of no known family: %v, want ErrNoServer", err)
			}
		})
	}
}
