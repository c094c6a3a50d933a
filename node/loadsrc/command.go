package loadsrc

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/usherlb/usher/internal/runcmd"
)

// command runs a program and reads a number from the first token of its
// standard output.
type command struct {
	argv []string
}

func newCommand(set Settings) *command { return &command{argv: set.Argv} }

// waitDelay bounds how long Wait waits for the output pipes once the
// process is killed (a grandchild may hold them open).
const waitDelay = 100 * time.Millisecond

// Poll runs the command once; the context's end kills its process group.
func (c *command) Poll(ctx context.Context) (Reading, error) {
	out, err := runcmd.Run(ctx, c.argv, MaxOutput, waitDelay)
	if ctx.Err() != nil {
		return Reading{}, fmt.Errorf("%s: %w", c.argv[0], ctx.Err())
	}
	if err != nil {
		if msg := firstLine(out.Stderr); msg != "" {
			return Reading{}, fmt.Errorf("%s: %w: %s", c.argv[0], err, msg)
		}
		return Reading{}, fmt.Errorf("%s: %w", c.argv[0], err)
	}
	load, err := parseLoad(out.Stdout)
	if err != nil {
		return Reading{}, fmt.Errorf("%s: %w", c.argv[0], err)
	}
	return Reading{Load: load}, nil
}

// parseLoad reads the first token of out as a non-negative number.
func parseLoad(out string) (int, error) {
	fields := strings.Fields(out)
	if len(fields) == 0 {
		return 0, fmt.Errorf("no output")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("output %q: not a number", truncate(fields[0], 32))
	}
	if v < 0 || v > math.MaxInt32 {
		return 0, fmt.Errorf("output %q: not a load (0 to %d)", truncate(fields[0], 32), math.MaxInt32)
	}
	return int(math.Round(v)), nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return truncate(line, 200)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
