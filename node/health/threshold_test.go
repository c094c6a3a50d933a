package health

import (
	"errors"
	"strings"
	"testing"
)

// TestThreshold feeds result sequences to the state machine and checks the
// state, the flips and the reason after each.
func TestThreshold(t *testing.T) {
	tests := []struct {
		name                string
		failures, successes int
		results             string // + success, - failure
		passing             string // state after each result: P or C
		flips               string // F where a result flipped the state
		reason              string // substring of the final reason
	}{
		{"first success passes", 2, 1, "+", "P", "F", ""},
		{"starts critical, failures keep it", 2, 1, "--", "CC", "..", "2 failures in a row: boom"},
		{"one failure is tolerated", 2, 1, "+-+", "PPP", "F..", ""},
		{"two failures in a row go critical", 2, 1, "+--", "PPC", "F.F", "2 failures in a row"},
		{"failures must be consecutive", 2, 1, "+-+-+-", "PPPPPP", "F.....", ""},
		{"three needed", 3, 1, "+---", "PPPC", "F..F", "3 failures in a row"},
		{"one failure with threshold one", 1, 1, "+-", "PC", "FF", "1 failure: boom"},
		{"recovery needs successes in a row", 1, 3, "+++-++-+++", "CCPCCCCCCP", "..FF.....F", ""},
		{"start needs all successes", 2, 3, "++", "CC", "..", "2 of 3 successes needed, no failure yet"},
		{"partial recovery names the error", 1, 2, "-+", "CC", "..", "1 of 2 successes needed since: boom"},
		{"count keeps growing", 2, 1, "+----", "PPCCC", "F.F..", "4 failures in a row"},
	}
	boom := errors.New("boom")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := newThreshold(tt.failures, tt.successes)
			if th.passing || th.reason() != "no result yet" {
				t.Fatalf("fresh threshold: passing %v reason %q, want critical, no result yet", th.passing, th.reason())
			}
			for i, r := range tt.results {
				var err error
				if r == '-' {
					err = boom
				}
				flipped := th.observe(err)
				wantPassing := tt.passing[i] == 'P'
				if th.passing != wantPassing {
					t.Fatalf("after result %d (%q): passing %v, want %v", i, tt.results[:i+1], th.passing, wantPassing)
				}
				if want := tt.flips[i] == 'F'; flipped != want {
					t.Fatalf("after result %d (%q): flipped %v, want %v", i, tt.results[:i+1], flipped, want)
				}
			}
			got := th.reason()
			if tt.reason == "" && got != "" || !strings.Contains(got, tt.reason) {
				t.Fatalf("reason %q, want %q", got, tt.reason)
			}
		})
	}
}
