package health

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/usherlb/usher/internal/runcmd"
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
	out, err := runcmd.Run(ctx, argv(command, shell), maxOutput, waitDelay)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("killed: %w", ctx.Err())
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if o := strings.TrimSpace(out.Stdout + out.Stderr); o != "" {
			return fmt.Errorf("%w: %s", err, string(truncate([]byte(o), maxOutput)))
		}
	}
	return err
}
