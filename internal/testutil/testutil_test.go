package testutil

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a testing.TB that notes a Fatalf instead of stopping.
type recorder struct {
	testing.TB
	failed atomic.Bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Fatalf(string, ...any) { r.failed.Store(true) }
func (r *recorder) Fatal(...any)          { r.failed.Store(true) }

func TestEventually(t *testing.T) {
	tests := []struct {
		name     string
		trueFrom int // the call from which cond holds; 0 for never
		wantFail bool
	}{
		{"at once", 1, false},
		{"after a few polls", 4, false},
		{"never", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{TB: t}
			calls := 0
			Eventually(r, 100*time.Millisecond, "cond", func() bool {
				calls++
				return tt.trueFrom > 0 && calls >= tt.trueFrom
			})
			if r.failed.Load() != tt.wantFail {
				t.Errorf("failed %v after %d calls, want %v", r.failed.Load(), calls, tt.wantFail)
			}
			if !tt.wantFail && calls != tt.trueFrom {
				t.Errorf("cond called %d times, want %d", calls, tt.trueFrom)
			}
		})
	}
}

func TestFreeUDPPort(t *testing.T) {
	p := FreeUDPPort(t)
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(p)})
	if err != nil {
		t.Fatalf("bind the free port %d: %v", p, err)
	}
	c.Close()
}
