package demo

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemo runs the whole demo, five agent processes of a freshly built
// usher binary and 30 clients, with short acts, and checks that it ends with a
// summary that reports no disturbed session.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five agent processes; skipped with -short")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not in PATH: cannot build the usher binary for the agents")
	}
	bin := filepath.Join(t.TempDir(), "usher")
	build := exec.Command(gobin, "build", "-o", bin, "github.com/usherlb/usher/cmd/usher")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	defer func(fixed bool) { fixedPorts = fixed }(fixedPorts)
	fixedPorts = false // leave the well-known ports to a real farm

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	var stdout, stderr strings.Builder
	err = Run(ctx, Options{
		Clients:   30,
		Phase:     3 * time.Second,
		Keepalive: 500 * time.Millisecond,
		DeadAfter: 1500 * time.Millisecond,
		VIP:       "127.0.0.100:3478",
		Bin:       bin,
		Verbose:   true,
	}, &stdout, &stderr)
	t.Logf("demo ran for %v", time.Since(start).Round(time.Millisecond))
	out := stdout.String()
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	wants := []*regexp.Regexp{
		regexp.MustCompile(`(?m)^summary$`),
		regexp.MustCompile(`clients\s+30 dialed in .* \(0 failed\)`),
		regexp.MustCompile(`leader failover\s+n\d killed; n\d answers at the VIP \S+ later`),
		regexp.MustCompile(`reassignment\s+n\d \(leader\): `),
		regexp.MustCompile(`disturbed sessions\s+0 on servers that stayed up`),
		regexp.MustCompile(`load\s+max \d+, mean 10\.0 on 3 live servers`),
	}
	for _, re := range wants {
		if !re.MatchString(out) {
			t.Errorf("output does not match %q:\n%s", re, out)
		}
	}
	if n := strings.Count(out, "SIGKILL"); n != 2 {
		t.Errorf("%d kills reported, want 2:\n%s", n, out)
	}
}
