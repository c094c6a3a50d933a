package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/hashicorp/go-hclog"

	"github.com/usherlb/usher/node"
)

// runAgent implements `usher agent`: it runs the agent until ctx is done.
func runAgent(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	about := `Run the Usher agent on this node. Settings come from the defaults (or, with
-dev, the single-node development settings), then the configuration file,
then the flags; every configuration key is also a flag. -dev runs one node
that leads itself: balancer address 127.0.0.100:3478, session endpoint
127.0.0.1:3479, HTTP API 127.0.0.1:7480.`

	// First pass: find -config and -dev, which decide the base the other
	// flags override.
	var (
		path string
		dev  bool
	)
	scratch := node.DefaultConfig()
	pre := newFlagSet("agent", "[-config FILE | -dev] [flags]", about, stderr)
	addAgentFlags(pre, &scratch, &path, &dev)
	if code := parseFlags(pre, args); code >= 0 {
		return code
	}
	if pre.NArg() > 0 {
		fmt.Fprintf(stderr, "usher agent: unexpected argument %q\n", pre.Arg(0))
		return 2
	}

	cfg := node.DefaultConfig()
	if dev {
		cfg = node.DevConfig()
	}
	if path != "" {
		if err := cfg.DecodeFile(path); err != nil {
			fmt.Fprintf(stderr, "usher agent: %v\n", err)
			return 1
		}
	}
	fs := newFlagSet("agent", "", about, io.Discard)
	addAgentFlags(fs, &cfg, &path, &dev)
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "usher agent: %v\n", err)
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "usher agent: invalid configuration:\n%v\n", err)
		return 1
	}

	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "usher",
		Level:      cfg.Parsed.LogLevel,
		JSONFormat: cfg.LogJSON,
		Output:     stderr,
	})
	a, err := node.New(cfg, logger)
	if err != nil {
		fmt.Fprintf(stderr, "usher agent: %v\n", err)
		return 1
	}
	<-ctx.Done()
	logger.Info("shutting down")
	if err := a.Close(); err != nil {
		fmt.Fprintf(stderr, "usher agent: shutdown: %v\n", err)
		return 1
	}
	return 0
}

// addAgentFlags registers the agent's flags: -config, -dev and one per
// configuration key.
func addAgentFlags(fs *flag.FlagSet, cfg *node.Config, path *string, dev *bool) {
	fs.StringVar(path, "config", "", "configuration file (HCL, or JSON if named *.json)")
	fs.BoolVar(dev, "dev", false, "run one development node on loopback")
	cfg.RegisterFlags(fs)
}
