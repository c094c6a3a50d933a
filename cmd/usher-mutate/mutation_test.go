package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseMutation(t *testing.T) {
	good := "# drops the check\nfile: a/b.go\ntest: ./a ^TestX$\nenv: K=V\ntimeout: 2m\n--- from\n\tif x {\n\t\treturn\n\t}\n--- to\n--- end\n"
	m, err := parseMutation("drop", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	want := Mutation{Name: "drop", What: "drops the check", File: "a/b.go", Pkg: "./a", Run: "^TestX$",
		Env: []string{"K=V"}, Timeout: 2 * time.Minute, From: "\tif x {\n\t\treturn\n\t}", To: ""}
	if m.Name != want.Name || m.What != want.What || m.File != want.File || m.Pkg != want.Pkg || m.Run != want.Run ||
		strings.Join(m.Env, ",") != "K=V" || m.Timeout != want.Timeout || m.From != want.From || m.To != want.To {
		t.Errorf("parse:\n got  %+v\n want %+v", m, want)
	}

	for _, tt := range []struct{ name, text, err string }{
		{"no end", "file: a.go\ntest: ./a X\n--- from\nx\n--- to\ny\n", "no --- end"},
		{"to first", "file: a.go\ntest: ./a X\n--- to\n", "--- to before --- from"},
		{"end first", "file: a.go\ntest: ./a X\n--- from\nx\n--- end\n", "--- end before --- to"},
		{"no file", "test: ./a X\n--- from\nx\n--- to\n--- end\n", "no file"},
		{"no test", "file: a.go\n--- from\nx\n--- to\n--- end\n", "no test"},
		{"empty from", "file: a.go\ntest: ./a X\n--- from\n--- to\ny\n--- end\n", "empty"},
		{"same", "file: a.go\ntest: ./a X\n--- from\nx\n--- to\nx\n--- end\n", "equals"},
		{"unknown key", "fil: a.go\n", "unknown key"},
		{"not key value", "just words\n", "not key: value"},
		{"test without run", "test: ./a\n", "want a package and a -run pattern"},
		{"bad env", "env: =x\n", "not KEY=VALUE"},
		{"bad timeout", "timeout: soon\n", "not a positive duration"},
		{"outside", "file: ../x.go\n", "inside the repository"},
		{"trailing", "file: a.go\ntest: ./a X\n--- from\nx\n--- to\n--- end\nmore\n", "after --- end"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseMutation("m", []byte(tt.text))
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("err = %v, want one containing %q", err, tt.err)
			}
		})
	}
}

func TestApply(t *testing.T) {
	m := Mutation{Name: "m", File: "f.go", From: "a < b", To: "a <= b"}
	for _, tt := range []struct{ name, src, want, err string }{
		{"once", "if a < b {", "if a <= b {", ""},
		{"missing", "if a > b {", "", "stale mutation"},
		{"twice", "a < b; a < b", "", "occurs 2 times"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.apply([]byte(tt.src))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Errorf("apply = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestListApplies checks that every mutation of the repository's list
// still applies to today's code: its from text occurs exactly once in its
// file. A refactoring that moves the guarded code makes a mutation stale,
// which only a full (and slow) mutate run would otherwise tell.
func TestListApplies(t *testing.T) {
	root := filepath.Join("..", "..")
	ms, err := loadMutations(filepath.Join(root, "scripts", "mutations"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		src, err := os.ReadFile(filepath.Join(root, m.File))
		if err == nil {
			_, err = m.apply(src)
		}
		if err != nil {
			t.Errorf("%s: %v", m.Name, err)
		}
	}
}
