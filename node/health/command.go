package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// maxOutput is how much of a command's output a failure's reason quotes.
const maxOutput = 512

// waitDelay bounds how long a killed command's pipes are waited for (a
// descendant that left the process group may hold them open).
const waitDelay = time.Second

// argv is what runs for a command check: the argv itself, or /bin/sh -c
// with the one string when shell is asked for.
func argv(command []string, shell bool) []string {
	if shell {
		return []string{"/bin/sh", "-c", command[0]}
	}
	return command
}

// probeCommand runs the command and passes on exit status 0. The command
// runs in a process group of its own, which ctx's end kills whole.
func probeCommand(ctx context.Context, command []string, shell bool) error {
	args := argv(command, shell)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...) //nolint:gosec // G204: the operator's own check command, from the configuration
	out := &limitedBuffer{max: maxOutput}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.WaitDelay = waitDelay
	ownProcessGroup(cmd)
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("killed: %w", ctx.Err())
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if o := strings.TrimSpace(out.String()); o != "" {
			return fmt.Errorf("%w: %s", err, o)
		}
	}
	return err
}

// limitedBuffer keeps the first max bytes written to it and swallows the
// rest, so a chatty command cannot grow the agent.
type limitedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(truncate(p, room))
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string { return b.buf.String() }
