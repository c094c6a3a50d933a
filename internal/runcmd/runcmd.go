// Package runcmd runs the operator's own commands for the agent: a
// service's command health check and its command load source. It runs the
// argv it is given (a shell only if the caller builds one), keeps each
// output stream to a bound so a chatty command cannot grow the agent, and,
// where processes have groups, kills the command's whole group when the
// context ends, so a shell's children die with it.
package runcmd

import (
	"bytes"
	"context"
	"os/exec"
	"time"
)

// Output is what a command wrote, each stream cut at the bound.
type Output struct {
	Stdout, Stderr string
}

// Run runs argv until it exits or ctx ends, keeping at most limit bytes of
// each stream. Once the command is killed, Run waits at most wait for its
// output pipes (a descendant that left the group may hold them open). The
// error is exec's: an *exec.ExitError for a non-zero exit.
func Run(ctx context.Context, argv []string, limit int, wait time.Duration) (Output, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...) //nolint:gosec // G204: the operator's own command, from the configuration
	stdout, stderr := &bounded{limit: limit}, &bounded{limit: limit}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = wait
	ownGroup(cmd)
	err := cmd.Run()
	return Output{Stdout: stdout.buf.String(), Stderr: stderr.buf.String()}, err
}

// bounded keeps the first limit bytes written to it and drops the rest
// without failing the writer, so the command is never blocked.
type bounded struct {
	buf   bytes.Buffer
	limit int
}

func (b *bounded) Write(p []byte) (int, error) {
	if room := b.limit - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
