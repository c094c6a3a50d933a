package node

import (
	"testing"
)

// TestSessionLimitsConfig checks the session endpoint's defaults: tickets
// required, max_sessions twice capacity, max_sessions_per_source a tenth of
// it (at least 1); explicit values win; require_ticket can be turned off
// from the file and by flag.
func TestSessionLimitsConfig(t *testing.T) {
	tests := []struct {
		name          string
		src           string
		args          []string
		ticket        bool
		total, source int
	}{
		{"defaults", "", nil, true, 2000, 100},
		{"small capacity", "capacity = 5\n", nil, true, 10, 1},
		{"explicit", "max_sessions = 70\nmax_sessions_per_source = 3\n", nil, true, 70, 3},
		{"file turns tickets off", "require_ticket = false\n", nil, false, 2000, 100},
		{"flag turns tickets off", "", []string{"-require-ticket=false", "-max-sessions-per-source", "9"}, false, 2000, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := fileAndFlags(t, tt.src, tt.args)
			rt, err := c.Build()
			if err != nil {
				t.Fatal(err)
			}
			if rt.RequireTicket != tt.ticket || rt.sessionCap() != tt.total || rt.sourceCap() != tt.source {
				t.Errorf("require_ticket %v, caps %d, %d; want %v, %d, %d",
					rt.RequireTicket, rt.sessionCap(), rt.sourceCap(), tt.ticket, tt.total, tt.source)
			}
		})
	}
}
