package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/usherlb/usher/internal/agentrun"
	"github.com/usherlb/usher/node"
)

// agentAbout is the help text of `usher agent`.
const agentAbout = `Run the Usher agent on this node. Settings come from the defaults (or, with
-dev, the single-node development settings), then the configuration file,
then the flags; every configuration key is also a flag. -dev runs one node
that leads itself: balancer address 127.0.0.100:3478, session endpoint
127.0.0.1:3479, HTTP API 127.0.0.1:7480.

A farm of several voters (bootstrap_expect 3 or 5) needs gossip encryption
(encrypt_key, from 'usher keygen') and Raft's mutual TLS (tls.ca_file,
tls.cert_file, tls.key_file, from 'usher tls'), or insecure = true. With
the tls block, an HTTP API on an address other than loopback serves HTTPS
with the node's certificate (api_tls; clients need the farm CA, see 'usher
status -h'). SIGHUP (or 'usher reload') reads the configuration again: it
applies the log level, the capacity and the TLS files (a certificate renewed
on disk applies to the next Raft or API connection), logs which changed keys
need a restart, and never stops the agent.
SIGINT or SIGTERM makes the agent leave the farm gracefully and stop (with
leave_on_terminate = false it stops without leaving: a voter keeps its seat
for its restart; a leader hands leadership on either way); a
second one, or 45 s without finishing, ends it at once (exit code 1),
logging every goroutine's stack. Under systemd (Type=notify, NOTIFY_SOCKET
set) the agent reports READY=1 once it has joined its seeds and knows the
farm's leader, and STOPPING=1 when it begins to stop.`

// runAgent implements `usher agent`: it runs the agent until ctx is done.
func runAgent(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// SIGHUP reloads the configuration; caught from the start, it never
	// ends the agent (its default action would).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	cfg, code := agentConfig(args, stderr)
	if code >= 0 {
		return code
	}
	rt, err := cfg.Build()
	if err != nil {
		fmt.Fprintf(stderr, "usher agent: invalid configuration:\n%v\n", err)
		return 1
	}
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "usher",
		Level:      rt.Parsed.LogLevel,
		JSONFormat: rt.LogJSON,
		Output:     stderr,
	})
	a, err := node.NewFromRuntime(rt, logger)
	if err != nil {
		fmt.Fprintf(stderr, "usher agent: %v\n", err)
		return 1
	}
	// A reload reads the configuration as the start did: the same file
	// and flags, the file's new contents.
	a.SetConfigSource(func() (node.Runtime, error) {
		cfg, code := agentConfig(args, io.Discard)
		if code >= 0 {
			return node.Runtime{}, fmt.Errorf("the command line no longer parses (exit %d)", code)
		}
		return cfg.Build()
	})
	if err := agentrun.Run(ctx, a, hup, logger); err != nil {
		fmt.Fprintf(stderr, "usher agent: %v\n", err)
		return 1
	}
	return 0
}

// agentConfig reads the agent's configuration from args: the defaults, or
// with -dev the development settings, then the -config file, then every
// other flag. It returns the exit code to end with, or -1 to go on.
func agentConfig(args []string, stderr io.Writer) (node.Config, int) {
	// First pass: find -config and -dev, which decide the base the other
	// flags override.
	var (
		path string
		dev  bool
	)
	scratch := node.DefaultConfig()
	pre := newFlagSet("agent", "[-config FILE | -dev] [flags]", agentAbout, stderr)
	addAgentFlags(pre, &scratch, &path, &dev)
	pre.Usage = func() { agentUsage(pre.Output(), pre.Lookup("service").Usage) }
	if code := parseFlags(pre, args); code >= 0 {
		return node.Config{}, code
	}
	if pre.NArg() > 0 {
		fmt.Fprintf(stderr, "usher agent: unexpected argument %q\n", pre.Arg(0))
		return node.Config{}, 2
	}

	cfg := node.DefaultConfig()
	if dev {
		cfg = node.DevConfig()
	}
	if path != "" {
		if err := cfg.DecodeFile(path); err != nil {
			fmt.Fprintf(stderr, "usher agent: %v\n", err)
			return node.Config{}, 1
		}
	}
	fs := newFlagSet("agent", "", agentAbout, io.Discard)
	addAgentFlags(fs, &cfg, &path, &dev)
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "usher agent: %v\n", err)
		return node.Config{}, 2
	}
	return cfg, -1
}

// addAgentFlags registers the agent's flags: -config, -dev and one per
// configuration key.
func addAgentFlags(fs *flag.FlagSet, cfg *node.Config, path *string, dev *bool) {
	fs.StringVar(path, "config", "", "configuration file (HCL, or JSON if named *.json)")
	fs.BoolVar(dev, "dev", false, "run one development node on loopback")
	cfg.RegisterFlags(fs)
}

// agentUsage writes `usher agent -h`: the flags grouped as the
// configuration reference groups the keys, each with its type and one
// default.
func agentUsage(w io.Writer, serviceUsage string) {
	fmt.Fprintf(w, "Usage: usher agent [-config FILE | -dev] [flags]\n\n%s\n\n", agentAbout)
	fmt.Fprint(w, `Start:
  -config path
	configuration file (HCL, or JSON if named *.json)
  -dev
	run one development node on loopback
  -service spec
	`+strings.ReplaceAll(serviceUsage, "\n", "\n\t")+"\n")
	node.WriteFlagUsage(w)
	fmt.Fprint(w, "\nEvery flag is also a key of the configuration file: docs/config.md lists them.\n")
}
