package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCompletion runs the bash completion script in bash: it completes
// command names, a command's flags (read from its own -h) and subcommands.
func TestCompletion(t *testing.T) {
	code, script, errOut := runArgs(context.Background(), "completion", "bash")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, c := range commands {
		if !strings.Contains(script, "    "+c.name+") words=") {
			t.Errorf("the script has no case for %s", c.name)
		}
	}
	if _, zsh, _ := runArgs(context.Background(), "completion", "zsh"); !strings.HasPrefix(zsh, "#compdef usher\n") || !strings.HasSuffix(zsh, script) {
		t.Errorf("the zsh script is not the bash one under bashcompinit:\n%s", zsh)
	}
	if code, _, _ := runArgs(context.Background(), "completion", "fish"); code != 2 {
		t.Errorf("completion fish: exit %d, want 2", code)
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash to run the script in")
	}
	path := filepath.Join(t.TempDir(), "usher.bash")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		words string
		want  string
	}{
		{"usher dr", "drain"},
		{"usher agent -bootstrap-e", "-bootstrap-expect"},
		{"usher raft l", "list-peers"},
		{"usher drain -ht", "-http"},
		{"usher completion z", "zsh"},
	}
	for _, tt := range tests {
		words := strings.Fields(tt.words)
		cmd := exec.Command(bash, "-c", `source "$1"; COMP_WORDS=(`+tt.words+`); COMP_CWORD=`+strconv.Itoa(len(words)-1)+`; _usher; echo "${COMPREPLY[*]}"`, "bash", path)
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != tt.want {
			t.Errorf("%q completes to %q (%v), want %q", tt.words, out, err, tt.want)
		}
	}
}
