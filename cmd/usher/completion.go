package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// The completion command reads the other commands' flags from the command
// list, so it joins the list at init rather than in its literal (which
// would make the list refer to itself).
func init() {
	commands = append(commands, command{"completion", "print the bash or zsh completion script", runCompletion})
}

// runCompletion implements `usher completion`.
func runCompletion(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("completion", "bash | zsh",
		`Print the shell completion script for bash or zsh: commands, their
subcommands and flags. Load it for this shell with
  source <(usher completion bash)
or install it (the package does) as
  /usr/share/bash-completion/completions/usher  (bash)
  /usr/share/zsh/vendor-completions/_usher      (zsh)`, stderr)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() != 1 || (fs.Arg(0) != "bash" && fs.Arg(0) != "zsh") {
		fs.Usage()
		return 2
	}
	script := bashCompletion(ctx)
	if fs.Arg(0) == "zsh" {
		// zsh runs bash completion functions through bashcompinit.
		script = "#compdef usher\nautoload -U +X bashcompinit && bashcompinit\n" + script
	}
	fmt.Fprint(stdout, script)
	return 0
}

// subcommands are the words that may follow a command before its flags.
var subcommands = map[string][]string{
	"raft": {"list-peers", "remove-peer"},
	"tls":  {"ca", "cert"},
}

// flagLine matches a flag in a command's -h output.
var flagLine = regexp.MustCompile(`(?m)^  (-[a-z0-9-]+)`)

// commandFlags returns the flags of command name, read from its -h output
// so that the completion never drifts from the flags themselves.
func commandFlags(ctx context.Context, name string) []string {
	for _, c := range commands {
		if c.name != name || c.name == "completion" {
			continue
		}
		var help bytes.Buffer
		c.run(ctx, []string{"-h"}, io.Discard, &help)
		var flags []string
		for _, m := range flagLine.FindAllStringSubmatch(help.String(), -1) {
			flags = append(flags, m[1])
		}
		return flags
	}
	return nil
}

// bashCompletion returns the bash completion script.
func bashCompletion(ctx context.Context) string {
	var b strings.Builder
	names := make([]string, 0, len(commands))
	for _, c := range commands {
		names = append(names, c.name)
	}
	fmt.Fprintf(&b, `# bash completion for usher (usher completion bash)
_usher() {
  local cur=${COMP_WORDS[COMP_CWORD]} words=""
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W %q -- "$cur"))
    return
  fi
  case "${COMP_WORDS[1]}" in
`, strings.Join(names, " "))
	for _, name := range names {
		words := commandFlags(ctx, name)
		if sub, ok := subcommands[name]; ok {
			words = append(slices.Clone(sub), words...)
		}
		if name == "completion" {
			words = []string{"bash", "zsh"}
		}
		fmt.Fprintf(&b, "    %s) words=%q ;;\n", name, strings.Join(words, " "))
	}
	b.WriteString(`  esac
  if [[ "$cur" == -* || "$COMP_CWORD" -eq 2 && -n "$words" && "$words" != -* ]]; then
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -F _usher usher
`)
	return b.String()
}
