// Command usher-bench measures Usher against its baselines on this machine
// and writes BENCHMARKS.md, the plots in docs/bench/ and the raw results
// they are rendered from (docs/bench/results.json). It is a tool of the
// repository, not part of the product: the agent binary (cmd/usher) links
// none of it.
//
//	usher-bench                 the full run (about 25 minutes)
//	usher-bench -quick          a short pass
//	usher-bench -render         write the report and plots again from the saved results
//
// The scale part starts agents from the usher binary named by -usher
// (default: usher next to this binary, as `make bench` builds them). The
// version is set at build time with -ldflags "-X main.version=v1.2.3" and
// reported in the report's machine line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/usherlb/usher/node"
)

// version is the binary's version, set with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if version != "dev" {
		node.Version = version
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runBench(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// newFlagSet returns the command's flag set, which reports errors instead
// of exiting, with a usage header.
func newFlagSet(synopsis, about string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("usher-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: usher-bench %s\n\n%s\n\nFlags:\n", synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs and turns the outcome into an exit code:
// -1 to go on, 0 after -h, 2 for a usage error.
func parseFlags(fs *flag.FlagSet, args []string) int {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return -1
	case errors.Is(err, flag.ErrHelp):
		return 0
	}
	return 2
}
