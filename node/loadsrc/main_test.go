package loadsrc

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// checkPoll polls p once and fails t unless it read want or, with wantErr
// set, failed with an error containing wantErr.
func checkPoll(t *testing.T, p Poller, want int, wantErr string) {
	t.Helper()
	r, err := p.Poll(context.Background())
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("Poll() = %+v, %v; want an error containing %q", r, err, wantErr)
		}
		return
	}
	if err != nil || r.Load != want {
		t.Fatalf("Poll() = %+v, %v; want load %d", r, err, want)
	}
}
