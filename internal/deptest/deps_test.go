package deptest

import (
	"os/exec"
	"slices"
	"testing"
)

// rules are the repository's dependency rules (issue 13): the product
// binary carries no tool, and the pure packages stay pure. Only the
// binary speaks to systemd (issue 16): the agent's library does not.
var rules = []Rule{
	{Pkg: Module + "/cmd/usher", Bad: []string{"gonum.org", Module + "/cmd/usher-bench"}},
	{Pkg: Module + "/wire", Only: []string{}},
	{Pkg: Module + "/assign", Only: []string{}},
	{Pkg: Module + "/client", Only: []string{Module + "/wire"}},
	{Pkg: Module + "/internal/srclimit", Only: []string{}},
	{Pkg: Module + "/node", Bad: []string{"github.com/coreos/go-systemd/v22"}},
}

// TestDeps fails if a package links what its rule forbids.
func TestDeps(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not in PATH")
	}
	for _, r := range rules {
		t.Run(r.Pkg[len(Module)+1:], func(t *testing.T) {
			deps, err := Deps(r.Pkg)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(deps, r.Pkg) {
				t.Fatalf("go list -deps %s does not list the package itself: %v", r.Pkg, deps)
			}
			for _, v := range r.Violations(deps) {
				t.Errorf("%s links %s", r.Pkg, v)
			}
		})
	}
}

// TestViolations checks the rules against made-up dependency lists, among
// them the cases no real import can produce (a main package is not
// importable, so cmd/usher cannot link cmd/usher-bench today; the rule
// stands for a library the harness might grow).
func TestViolations(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
		deps []string
		want int
	}{
		{"clean agent", rules[0], []string{Module + "/cmd/usher", Module + "/node", "fmt"}, 0},
		{"gonum", rules[0], []string{Module + "/cmd/usher", "gonum.org/v1/plot/vg"}, 1},
		{"a library of the bench", rules[0], []string{Module + "/cmd/usher-bench/report"}, 1},
		{"a name that only starts alike", rules[0], []string{"gonum.orgx/y", Module + "/cmd/usher-benchmark"}, 0},
		{"pure wire", rules[1], []string{Module + "/wire", "github.com/dchest/siphash", "net/netip"}, 0},
		{"wire importing ours", rules[1], []string{Module + "/wire", Module + "/assign"}, 1},
		{"client on wire", rules[3], []string{Module + "/client", Module + "/wire"}, 0},
		{"node on systemd", rules[4], []string{Module + "/node", "github.com/coreos/go-systemd/v22/daemon"}, 1},
		{"client on node", rules[3], []string{Module + "/client", Module + "/wire", Module + "/node", Module + "/cluster"}, 2},
	}
	for _, tt := range tests {
		if got := tt.rule.Violations(tt.deps); len(got) != tt.want {
			t.Errorf("%s: %d violations %v, want %d", tt.name, len(got), got, tt.want)
		}
	}
}
