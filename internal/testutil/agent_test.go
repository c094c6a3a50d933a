package testutil

import (
	"context"
	"errors"
	"testing"
)

// fakeAgent is an Agent that serves or not as the test says.
type fakeAgent struct {
	serving bool
	closed  int
}

func (f *fakeAgent) WaitServing(context.Context) error {
	if !f.serving {
		return errors.New("not serving")
	}
	return nil
}

func (f *fakeAgent) Close() error { f.closed++; return nil }

func TestAwaitServing(t *testing.T) {
	for _, tt := range []struct {
		name     string
		serving  bool
		wantFail bool
	}{
		{"serves", true, false},
		{"never serves", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := &fakeAgent{serving: tt.serving}
			t.Run("await", func(t *testing.T) {
				r := &recorder{TB: t}
				AwaitServing(r, a)
				if r.failed.Load() != tt.wantFail {
					t.Errorf("failed %v, want %v", r.failed.Load(), tt.wantFail)
				}
				if a.closed != 0 {
					t.Errorf("closed %d times before the test ended", a.closed)
				}
			})
			if a.closed != 1 {
				t.Errorf("closed %d times when the test ended, want 1", a.closed)
			}
		})
	}
}
