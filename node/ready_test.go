package node

import (
	"testing"
	"time"

	"github.com/usherlb/usher/internal/testutil"
)

// TestAgentReady starts agents that can and cannot join a working farm:
// Ready closes for the first only, and only once it knows a leader.
func TestAgentReady(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, c *Config)
		ready bool
	}{
		{"a farm of one", func(*testing.T, *Config) {}, true},
		// A member outside Raft learns the leader from its state messages.
		{"a non-voter joining a farm", func(t *testing.T, c *Config) {
			c.Join = []string{startAgent(t, testConfig()).cl.Load().GossipAddr().String()}
			c.NodeName = "joiner"
			c.Voter = false
		}, true},
		// It leads itself, but no seed ever answers its join.
		{"seed unreachable", func(t *testing.T, c *Config) { c.Join = []string{testutil.ClosedTCPAddr(t)} }, false},
		// It waits for two more voters: no leader is ever elected.
		{"a voter alone of three", func(t *testing.T, c *Config) {
			c.BootstrapExpect = 3
			c.Insecure = true
			c.DataDir = t.TempDir()
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			tt.setup(t, &c)
			a, err := New(c, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { a.Close() })
			wait := 10 * time.Second
			if !tt.ready {
				// A farm of one is ready in well under a second here.
				wait = 1500 * time.Millisecond
			}
			select {
			case <-a.Ready():
				if !tt.ready {
					leader, _ := a.cl.Load().Leader()
					t.Fatalf("ready with leader %q and joined %v", leader, a.cl.Load().Stats().Joined)
				}
			case <-time.After(wait):
				if tt.ready {
					t.Fatalf("not ready after %v: %+v", wait, a.Status())
				}
			}
		})
	}
}
