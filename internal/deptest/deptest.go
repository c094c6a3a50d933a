// Package deptest checks what a package links, after tailscale's
// tstest/deptest: it asks `go list -deps` for every package a package
// depends on and holds the list against rules. deps_test.go states the
// repository's rules (the agent binary links no plotting library and no
// tool, wire and assign import nothing of this module, client only wire).
package deptest

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
)

// Module is this repository's module path.
const Module = "github.com/usherlb/usher"

// Rule says what one package may depend on. A dependency breaks the rule
// if it starts with one of Bad, or if Only is set, lies in the module
// without being the package itself, one of its subpackages or one of
// Only.
type Rule struct {
	Pkg  string   // the package, as an import path
	Bad  []string // import path prefixes it must not link
	Only []string // if not nil: the only packages of the module it may import
}

// Deps returns every package pkg depends on, itself included, as `go list
// -deps` lists them for the host's GOOS and GOARCH.
func Deps(pkg string) ([]string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps %s: %w: %s", pkg, err, stderr.String())
	}
	return strings.Fields(string(out)), nil
}

// Violations returns the dependencies in deps that break r, each with the
// reason.
func (r Rule) Violations(deps []string) []string {
	var bad []string
	for _, d := range deps {
		if why := r.check(d); why != "" {
			bad = append(bad, d+": "+why)
		}
	}
	return bad
}

// check returns why dependency d breaks r, or "".
func (r Rule) check(d string) string {
	for _, p := range r.Bad {
		if d == p || strings.HasPrefix(d, strings.TrimSuffix(p, "/")+"/") {
			return "matches forbidden " + p
		}
	}
	if r.Only == nil || !within(d, Module) || within(d, r.Pkg) {
		return ""
	}
	for _, ok := range r.Only {
		if d == ok {
			return ""
		}
	}
	return fmt.Sprintf("a package of this module, and %s may import only %v of it", r.Pkg, r.Only)
}

// within reports whether path is pkg or below it.
func within(path, pkg string) bool {
	return path == pkg || strings.HasPrefix(path, pkg+"/")
}
