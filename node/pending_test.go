package node

import (
	"testing"
	"time"

	"github.com/usherlb/usher/assign"
)

// TestPendingTTL checks the arithmetic of a pending entry's life: a round
// trip (250 ms), a keepalive interval with 20% jitter, and a report's way
// to the leader (viewInterval 250 ms + publish interval + viewGap 20 ms).
func TestPendingTTL(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name               string
		keepalive, publish time.Duration
		want               time.Duration
	}{
		{"defaults", time.Second, 250 * ms, 1970 * ms},
		{"zero means the defaults", 0, 0, 1970 * ms},
		{"fast keepalives", 200 * ms, 250 * ms, 1010 * ms},
		{"slow keepalives", 20 * time.Second, 250 * ms, 24770 * ms},
		{"slow reports", time.Second, time.Second, 2720 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pendingTTL(tt.keepalive, tt.publish); got != tt.want {
				t.Errorf("pendingTTL(%v, %v) = %v, want %v", tt.keepalive, tt.publish, got, tt.want)
			}
		})
	}
	// The assign package's default stands for the agent's default timers:
	// it must cover them.
	if got := pendingTTL(0, 0); got > assign.DefaultPendingTTL {
		t.Errorf("pendingTTL of the default timers %v is longer than assign.DefaultPendingTTL %v", got, assign.DefaultPendingTTL)
	}
}
