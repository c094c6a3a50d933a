package node

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// testVerifier is a verifier whose checks are counted, answered by alive,
// and whose clock stands still unless the test moves it.
type testVerifier struct {
	*verifier
	clk    *fakeClock
	checks atomic.Int64
	mu     sync.Mutex
	alive  map[netip.AddrPort]bool
}

func newTestVerifier(t *testing.T, members ...netip.AddrPort) *testVerifier {
	tv := &testVerifier{clk: newFakeClock(), alive: map[netip.AddrPort]bool{}}
	v := newVerifier(50*time.Millisecond, time.Hour, func() {}, hclog.NewNullLogger())
	v.now = tv.clk.Now
	v.probe = func(s netip.AddrPort) bool {
		tv.checks.Add(1)
		tv.mu.Lock()
		defer tv.mu.Unlock()
		return tv.alive[s]
	}
	tv.verifier = v.start()
	t.Cleanup(v.close)
	tv.setMembers(addrSet(members...))
	return tv
}

func addrSet(as ...netip.AddrPort) map[netip.AddrPort]struct{} {
	m := map[netip.AddrPort]struct{}{}
	for _, a := range as {
		m[a] = struct{}{}
	}
	return m
}

// member returns the session address of member i.
func member(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}), 3479)
}

// TestVerifierIgnoresNonMembers names 1,000 addresses that are no member's
// (other hosts, and other ports of a member's host): none is checked or
// excluded, each is counted.
func TestVerifierIgnoresNonMembers(t *testing.T) {
	v := newTestVerifier(t, member(1), member(2))
	for i := range 1000 {
		v.report(netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), uint16(i)))
		v.report(netip.AddrPortFrom(member(1).Addr(), uint16(10000+i)))
	}
	time.Sleep(100 * time.Millisecond)
	if n := v.checks.Load(); n != 0 {
		t.Errorf("%d checks of non-members, want 0", n)
	}
	if n := v.nonMember.Load(); n != 2000 {
		t.Errorf("non-member reports counted %d, want 2000", n)
	}
	if n := len(*v.excluded.Load()); n != 0 {
		t.Errorf("excluded %d addresses", n)
	}
	if a := testing.AllocsPerRun(100, func() { v.report(member(9)) }); a != 0 {
		t.Errorf("report allocates %v times", a)
	}
}

// TestVerifierRateLimited names live members at a high rate: the checks
// stay within the token bucket's burst while the clock stands still, and
// within its rate once it moves.
func TestVerifierRateLimited(t *testing.T) {
	v := newTestVerifier(t, member(1), member(2), member(3))
	for s := range 3 {
		v.alive[member(s+1)] = true
	}
	flood := func() {
		for i := range 3000 {
			v.report(member(i%3 + 1))
			if i%50 == 0 {
				time.Sleep(time.Millisecond) // let the loop drain the queue
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	flood()
	if n := v.checks.Load(); n > verifyBurst || n == 0 {
		t.Errorf("%d checks from 3,000 reports at one instant, want 1 to %d", n, verifyBurst)
	}
	v.clk.Advance(2 * time.Second)
	flood()
	if n, most := v.checks.Load(), int64(verifyBurst+2*verifyRate); n > most {
		t.Errorf("%d checks after 2 s, want at most %d", n, most)
	}
	if v.limited.Load() == 0 {
		t.Error("no report was counted as rate-limited")
	}
	if n := len(*v.excluded.Load()); n != 0 {
		t.Errorf("live members excluded: %d", n)
	}
}

// TestVerifierExcludedBounded names silent members and non-members: only
// members are excluded, and a member that leaves leaves the excluded set.
func TestVerifierExcludedBounded(t *testing.T) {
	members := []netip.AddrPort{member(1), member(2), member(3)}
	v := newTestVerifier(t, members...)
	for i := range 200 {
		v.report(members[i%3])
		v.report(netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, 0, byte(i)}), 3479))
		if n := len(*v.excluded.Load()); n > len(members) {
			t.Fatalf("excluded %d addresses, more than the %d members", n, len(members))
		}
	}
	waitFor(t, func() bool { return len(*v.excluded.Load()) == 3 })
	v.setMembers(addrSet(member(2)))
	waitFor(t, func() bool { return len(*v.excluded.Load()) == 1 })
	if !v.isExcluded(member(2)) || v.isExcluded(member(1)) {
		t.Errorf("excluded after members left: %v", *v.excluded.Load())
	}
}
