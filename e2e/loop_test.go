//go:build linux

package e2e

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestLoopFarm(t *testing.T) {
	a, b := NewLoopFarm(t, 2), NewLoopFarm(t, 2)
	if a.VIP() == b.VIP() {
		t.Errorf("two loop farms share VIP %v", a.VIP())
	}
	lo := netip.MustParsePrefix("127.0.0.0/8")
	for _, h := range append(a.Servers(), a.Client()) {
		if !lo.Contains(h.Addr) || h.NS != "" {
			t.Errorf("%v: address outside loopback or has a namespace %q", h, h.NS)
		}
	}
	h1, h2 := a.Servers()[0], a.Servers()[1]
	if ok, err := Reachable(h1, h2, reachTimeout); err != nil || !ok {
		t.Errorf("Reachable(%v, %v) = %v, %v", h1, h2, ok, err)
	}
	for name, fn := range map[string]func() error{
		"LinkDown": h1.LinkDown, "LinkUp": h1.LinkUp, "Heal": h1.Heal,
		"Isolate": func() error { return h1.Isolate(h2) },
	} {
		if err := fn(); !errors.Is(err, ErrNoNamespace) {
			t.Errorf("%s on a loop host: %v, want ErrNoNamespace", name, err)
		}
	}
	testProcLifecycle(t, h2)
	p := h1.Start(t, "sleep", "30")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("LoopFarm.Close left a process running")
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestMonotonic(t *testing.T) {
	a := Monotonic()
	time.Sleep(time.Millisecond)
	if b := Monotonic(); b <= a || a <= 0 {
		t.Errorf("Monotonic went %v then %v", a, b)
	}
}
