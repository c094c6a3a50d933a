package farm

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestCredentialArgs checks that a local farm's CA and gossip key are made
// once, and each node's certificate once and then reused.
func TestCredentialArgs(t *testing.T) {
	dir := t.TempDir()
	a1, err := CredentialArgs(dir, "n1")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(filepath.Join(dir, "usher-"+Label+"-ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := CredentialArgs(dir, "n1")
	if err != nil {
		t.Fatalf("a restarted agent's credentials: %v", err)
	}
	if !slices.Equal(a1, again) {
		t.Errorf("credentials changed on a restart:\n%v\n%v", a1, again)
	}
	a2, err := CredentialArgs(dir, "n/2")
	if err != nil {
		t.Fatal(err)
	}
	if ca2, _ := os.ReadFile(filepath.Join(dir, "usher-"+Label+"-ca.pem")); string(ca2) != string(ca) {
		t.Error("a second node made a new CA")
	}
	if !slices.Contains(a2, filepath.Join(dir, "usher-"+Label+"-n_2.pem")) {
		t.Errorf("node n/2's certificate is not at a file-safe path: %v", a2)
	}
	for _, f := range []string{"usher-" + Label + "-n1.pem", "usher-" + Label + "-n1-key.pem", "gossip.key"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

// TestStop checks that Stop ends every process it started, by SIGTERM
// within the grace or SIGKILL after it, removes the scratch directory, and
// reports no error for an agent that had ended on its own.
func TestStop(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1)")
	}
	tests := []struct {
		name  string
		grace time.Duration
	}{{"kill at once", 0}, {"term first", 5 * time.Second}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := New("usher-farm-test-", Loopback(1), []Addrs{{Name: "a"}, {Name: "b"}, {Name: "gone"}}, 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range f.Agents {
				secs := "60"
				if a.Name == "gone" {
					secs = "0"
				}
				if err := f.Start(sleep, a, []string{secs}, nil); err != nil {
					t.Fatal(err)
				}
			}
			<-f.Agents[2].Exited()
			begun := time.Now()
			if err := f.Stop(tt.grace); err != nil {
				t.Errorf("Stop: %v", err)
			}
			if d := time.Since(begun); d > 4*time.Second {
				t.Errorf("Stop took %v: sleep ends on SIGTERM", d)
			}
			if n := f.ExitedCount(); n != 3 {
				t.Errorf("%d of 3 processes ended", n)
			}
			if _, err := os.Stat(f.Dir); !os.IsNotExist(err) {
				t.Errorf("scratch directory %s left: %v", f.Dir, err)
			}
			if err := f.Stop(tt.grace); err != nil { // idempotent
				t.Errorf("second Stop: %v", err)
			}
		})
	}
}
