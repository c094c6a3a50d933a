//go:build linux

package e2e

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Probe timeouts: a reachable host answers within milliseconds (the first
// probe may wait for ARP), so the positive timeout is generous and only
// matters on failure; the negative one is what each "unreachable" check
// costs.
const (
	reachTimeout   = 2 * time.Second
	unreachTimeout = 300 * time.Millisecond
)

// wantReach checks reachability from src to dst.
func wantReach(t *testing.T, src, dst *Host, want bool) {
	t.Helper()
	timeout := reachTimeout
	if !want {
		timeout = unreachTimeout
	}
	got, err := Reachable(src, dst, timeout)
	if err != nil {
		t.Fatalf("Reachable(%v, %v): %v", src, dst, err)
	}
	if got != want {
		t.Errorf("Reachable(%v, %v) = %v, want %v", src, dst, got, want)
	}
}

// delivered reports whether datagrams sent from src arrive at dst, with no
// answer needed.
func delivered(t *testing.T, src, dst *Host) bool {
	t.Helper()
	var rx, tx *net.UDPConn
	if err := dst.Do(func() (err error) {
		rx, err = net.ListenUDP("udp4", &net.UDPAddr{IP: dst.Addr.AsSlice()})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	if err := src.Do(func() (err error) {
		tx, err = net.ListenUDP("udp4", &net.UDPAddr{IP: src.Addr.AsSlice()})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	buf := make([]byte, 16)
	for range 3 {
		_, _ = tx.WriteToUDP([]byte("one-way"), rx.LocalAddr().(*net.UDPAddr))
		_ = rx.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, _, err := rx.ReadFromUDP(buf); err == nil {
			return true
		}
	}
	return false
}

// rootLinks returns the interface names of the root namespace.
func rootLinks(t *testing.T) []string {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range ifs {
		names = append(names, i.Name)
	}
	return names
}

func TestFarmLayout(t *testing.T) {
	f := NewFarm(t, 3)
	servers := f.Servers()
	if len(servers) != 3 {
		t.Fatalf("got %d servers, want 3", len(servers))
	}
	base := f.Subnet()
	if !netip.MustParsePrefix("198.18.0.0/15").Contains(base.Addr()) || base.Bits() != 24 {
		t.Errorf("farm prefix %v not a /24 of 198.18.0.0/15", base)
	}
	want := map[string]byte{"h1": 11, "h2": 12, "h3": 13, "client": 200}
	seen := map[string]bool{}
	for _, h := range append(servers, f.Client()) {
		if a := h.Addr.As4(); !base.Contains(h.Addr) || a[3] != want[h.Name] {
			t.Errorf("%s has address %v, want .%d of %v", h.Name, h.Addr, want[h.Name], base)
		}
		if !strings.HasPrefix(h.NS, Prefix) || seen[h.NS] {
			t.Errorf("%s: namespace %q lacks prefix %q or is not unique", h.Name, h.NS, Prefix)
		}
		seen[h.NS] = true
		if pid, ok := ownerPID(h.NS); !ok || !pidAlive(pid) {
			t.Errorf("%s: namespace %q does not encode a live PID", h.Name, h.NS)
		}
	}
	if v := f.VIP().As4(); v[3] != 100 || !base.Contains(f.VIP()) {
		t.Errorf("VIP %v, want .100 of %v", f.VIP(), base)
	}
	// The harness never assigns the VIP, and the host sees only its own
	// address on its interface.
	h1 := servers[0]
	if err := h1.Do(func() error {
		ifi, err := net.InterfaceByName(h1.Iface)
		if err != nil {
			return err
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return err
		}
		var v4 []string
		for _, a := range addrs {
			if p := netip.MustParsePrefix(a.String()); p.Addr().Is4() {
				v4 = append(v4, p.String())
			}
		}
		if want := []string{netip.PrefixFrom(h1.Addr, 24).String()}; !slices.Equal(v4, want) {
			t.Errorf("%s addresses %v, want %v", h1.Iface, v4, want)
		}
		lo, err := net.InterfaceByName("lo")
		if err != nil {
			return err
		}
		if lo.Flags&net.FlagUp == 0 {
			t.Errorf("lo is down in %s", h1.NS)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Nothing of the farm lives in the root namespace.
	for _, n := range rootLinks(t) {
		if strings.HasPrefix(n, portPrefix) {
			t.Errorf("farm interface %q found in the root namespace", n)
		}
	}
}

func TestFarmConnectivity(t *testing.T) {
	f := NewFarm(t, 3)
	s := f.Servers()
	h1, h2, h3, cl := s[0], s[1], s[2], f.Client()

	t.Run("all pairs", func(t *testing.T) {
		hosts := append(f.Servers(), cl)
		for _, a := range hosts {
			for _, b := range hosts {
				if a != b {
					wantReach(t, a, b, true)
				}
			}
		}
	})

	t.Run("link down and up", func(t *testing.T) {
		if err := h2.LinkDown(); err != nil {
			t.Fatal(err)
		}
		wantReach(t, h1, h2, false)
		wantReach(t, cl, h2, false)
		wantReach(t, h2, h3, false)
		wantReach(t, h1, h3, true)
		if err := h2.LinkUp(); err != nil {
			t.Fatal(err)
		}
		wantReach(t, h1, h2, true)
		wantReach(t, cl, h2, true)
	})

	t.Run("isolate and heal", func(t *testing.T) {
		if err := h1.Isolate(h2); err != nil {
			t.Fatal(err)
		}
		wantReach(t, h1, h2, false)
		wantReach(t, h2, h1, false)
		// One way: h2's datagrams must not even arrive at h1 (strict
		// reverse-path filtering), not merely go unanswered.
		if delivered(t, h2, h1) {
			t.Error("isolated host still receives datagrams from its peer")
		}
		if !delivered(t, cl, h1) {
			t.Error("isolated host no longer receives datagrams from the client")
		}
		wantReach(t, h1, h3, true)
		wantReach(t, cl, h1, true)
		if err := h1.Isolate(); err != nil { // all other servers
			t.Fatal(err)
		}
		wantReach(t, h3, h1, false)
		wantReach(t, h1, h3, false)
		wantReach(t, h2, h3, true)
		wantReach(t, cl, h1, true)
		wantReach(t, h1, cl, true)
		if err := h1.Heal(); err != nil {
			t.Fatal(err)
		}
		wantReach(t, h1, h2, true)
		wantReach(t, h3, h1, true)
		if err := h1.Heal(); err != nil {
			t.Errorf("second Heal: %v", err)
		}
	})
}

func TestDoCreatesSocketsInNamespace(t *testing.T) {
	f := NewFarm(t, 1)
	h1, cl := f.Servers()[0], f.Client()

	// The host's address exists only in its namespace: binding to it from
	// the root namespace fails.
	if c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: h1.Addr.AsSlice()}); err == nil {
		c.Close()
		t.Fatalf("bound %v in the root namespace; the farm leaks addresses", h1.Addr)
	}

	var srv *net.UDPConn
	if err := h1.Do(func() (err error) {
		srv, err = net.ListenUDP("udp4", &net.UDPAddr{Port: 0}) // wildcard
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	// Dial from the client namespace, then use the socket from here: it
	// stays in the client's namespace.
	var c *net.UDPConn
	dst := &net.UDPAddr{IP: h1.Addr.AsSlice(), Port: srv.LocalAddr().(*net.UDPAddr).Port}
	if err := cl.Do(func() (err error) {
		c, err = net.DialUDP("udp4", nil, dst)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(); got != cl.Addr {
		t.Errorf("socket dialled in %s has local address %v, want %v", cl.Name, got, cl.Addr)
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	_ = srv.SetReadDeadline(time.Now().Add(reachTimeout))
	buf := make([]byte, 16)
	n, from, err := srv.ReadFromUDP(buf)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:n]) != "hello" || from.AddrPort().Addr().Unmap() != cl.Addr {
		t.Errorf("got %q from %v, want \"hello\" from %v", buf[:n], from, cl.Addr)
	}

	// The calling goroutine is back in the root namespace.
	if c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: cl.Addr.AsSlice()}); err == nil {
		c.Close()
		t.Error("after Do, the root namespace can bind the client's address")
	}
}

func TestDoPropagatesErrorsAndPanics(t *testing.T) {
	f := NewFarm(t, 1)
	h := f.Servers()[0]
	sentinel := net.ErrClosed
	if err := h.Do(func() error { return sentinel }); err != sentinel {
		t.Errorf("Do returned %v, want %v", err, sentinel)
	}
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want boom", r)
			}
		}()
		_ = h.Do(func() error { panic("boom") })
		t.Error("Do did not re-panic")
	}()
	var after bool
	t.Run("skip inside Do", func(t *testing.T) {
		_ = h.Do(func() error { t.Skip("skipped from inside Do"); return nil })
		after = true
	})
	if after {
		t.Error("Do returned after t.Skip inside fn")
	}
}

func TestFarmCloseRemovesEverything(t *testing.T) {
	f := NewFarm(t, 2)
	names := f.Namespaces()
	if len(names) != 4 {
		t.Fatalf("farm has namespaces %v, want bridge + 2 servers + client", names)
	}
	p := f.Servers()[0].Start(t, "sleep", "30")
	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if done, _ := p.Exited(); !done {
		t.Error("Close left a process running")
	}
	left, err := listNamespaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range left {
		if slices.Contains(names, n) {
			t.Errorf("namespace %s survived Close", n)
		}
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if got := f.Namespaces(); len(got) != 0 {
		t.Errorf("Namespaces after Close = %v", got)
	}
}

func TestSweepStale(t *testing.T) {
	f := NewFarm(t, 1) // skips when namespaces are not possible
	dead := 0
	for pid := 99999; pid > 1; pid-- {
		if !pidAlive(pid) {
			dead = pid
			break
		}
	}
	if dead == 0 {
		t.Skip("no dead PID below 100000")
	}
	stale := Prefix + strconv.Itoa(dead) + "-0-h1"
	if _, err := ip("netns", "add", stale); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = ip("netns", "del", stale) })

	removed, err := SweepStale()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(removed, stale) {
		t.Errorf("SweepStale removed %v, want %s among them", removed, stale)
	}
	left, err := listNamespaces()
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(left, stale) {
		t.Errorf("stale namespace %s still listed", stale)
	}
	for _, n := range f.Namespaces() {
		if !slices.Contains(left, n) {
			t.Errorf("SweepStale removed live namespace %s", n)
		}
	}
}

func TestOwnerPID(t *testing.T) {
	tests := []struct {
		name string
		pid  int
		ok   bool
	}{
		{"ushe2e-1234-0-h1", 1234, true},
		{"ushe2e-7-12-cl", 7, true},
		{"ushe2e-x-0-h1", 0, false},
		{"ushe2e-0-0-h1", 0, false},
		{"ushe2e-1234", 0, false},
		{"usher-t-vip-29829", 0, false},
		{"other-1234-0-h1", 0, false},
	}
	for _, tt := range tests {
		pid, ok := ownerPID(tt.name)
		if pid != tt.pid || ok != tt.ok {
			t.Errorf("ownerPID(%q) = %d, %v; want %d, %v", tt.name, pid, ok, tt.pid, tt.ok)
		}
	}
}

func TestFarmsAreSeparate(t *testing.T) {
	if reason := farmUnsupported(); reason != "" {
		t.Skip(reason)
	}
	// Two parallel subtests build a farm each at the same time, swap them,
	// and check neither can reach into the other. Each waits for the other
	// to finish checking before it returns (and closes its farm).
	var (
		farm    = [2]chan *Farm{make(chan *Farm, 1), make(chan *Farm, 1)}
		checked = [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	)
	for i := range 2 {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			mine := NewFarm(t, 1)
			farm[i] <- mine
			var other *Farm
			select {
			case other = <-farm[1-i]:
			case <-time.After(10 * time.Second):
				t.Fatal("the other farm never appeared")
			}
			if mine.Subnet() == other.Subnet() {
				t.Errorf("concurrent farms share subnet %v", mine.Subnet())
			}
			wantReach(t, mine.Client(), mine.Servers()[0], true)
			wantReach(t, mine.Client(), other.Servers()[0], false)
			close(checked[i])
			select {
			case <-checked[1-i]:
			case <-time.After(10 * time.Second):
				t.Fatal("the other farm never finished checking")
			}
		})
	}
}
