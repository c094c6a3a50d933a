package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// writeFiles writes name → content under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMutateToyRepo runs the whole command on a small repository with one
// guarded check, one unguarded one and one stale mutation.
func TestMutateToyRepo(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"go.mod": "module toy\n\ngo 1.26\n",
		"toy/toy.go": "package toy\n\n// Max returns the larger.\nfunc Max(a, b int) int {\n\tif a > b {\n\t\treturn a\n\t}\n\treturn b\n}\n\n" +
			"// Unchecked is tested by nothing.\nfunc Unchecked(a int) int {\n\treturn a + 1\n}\n",
		"toy/toy_test.go":   "package toy\n\nimport \"testing\"\n\nfunc TestMax(t *testing.T) {\n\tif Max(2, 1) != 2 {\n\t\tt.Fatal(\"max\")\n\t}\n}\n",
		"muts/caught.mut":   "# Max returns the smaller\nfile: toy/toy.go\ntest: ./toy ^TestMax$\n--- from\n\tif a > b {\n--- to\n\tif a < b {\n--- end\n",
		"muts/survives.mut": "# Unchecked off by one\nfile: toy/toy.go\ntest: ./toy ^TestMax$\n--- from\n\treturn a + 1\n--- to\n\treturn a + 2\n--- end\n",
	})
	git := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	t.Chdir(dir)

	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"-dir", "muts", "-run", "caught"}, &out, &errOut); code != 0 {
		t.Fatalf("caught only: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "1 caught, 0 survived") {
		t.Errorf("caught only: output\n%s", out.String())
	}

	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"-dir", "muts"}, &out, &errOut); code != 1 {
		t.Fatalf("all: exit %d, want 1\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "SURVIVED") || !strings.Contains(out.String(), "1 caught, 1 survived") {
		t.Errorf("all: output\n%s", out.String())
	}
	if src, _ := os.ReadFile(filepath.Join(dir, "toy/toy.go")); !strings.Contains(string(src), "if a > b") {
		t.Error("the repository itself was changed")
	}

	writeFiles(t, dir, map[string]string{"muts/stale.mut": "# gone\nfile: toy/toy.go\ntest: ./toy ^TestMax$\n--- from\n\treturn 42\n--- to\n\treturn 43\n--- end\n"})
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"-dir", "muts", "-run", "stale"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "stale mutation") {
		t.Errorf("stale: exit %d\n%s%s", code, out.String(), errOut.String())
	}

	// A test that fails without any mutation proves nothing: the baseline
	// says so.
	writeFiles(t, dir, map[string]string{"toy/toy_test.go": "package toy\n\nimport \"testing\"\n\nfunc TestMax(t *testing.T) { t.Fatal(\"always\") }\n"})
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"-dir", "muts", "-run", "caught"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "fails without any mutation") {
		t.Errorf("baseline: exit %d\n%s%s", code, out.String(), errOut.String())
	}
}
