// Command usher is the one Usher binary: it runs the agent on a node, and it
// is the operator's tool to probe a balancer address, check a configuration
// file and try the whole system on one machine.
//
//	usher agent -config FILE     run the agent (every config key is a flag too)
//	usher agent -dev             one node: VIP 127.0.0.100:3478, sessions on 127.0.0.1:3479
//	usher probe [-json] ADDR     ask a balancer address for an assignment
//	usher members                the farm's members: address, load, status, role
//	usher status                 an agent's view: leader, term, VIP holder, report age
//	usher drain NODE             stop assigning to NODE (through Raft); usher undrain NODE undoes it
//	usher leave                  make an agent leave the farm gracefully
//	usher reload                 make an agent read its configuration again, as SIGHUP does
//	usher capacity NODE N        override NODE's capacity through Raft; -clear NODE drops it
//	usher force-leave NODE       a member found dead counts as left, out of Raft at once
//	usher raft list-peers        the Raft configuration; remove-peer NAME takes a server out
//	usher keygen                 a new gossip encryption key
//	usher keyring -list          the farm's gossip keys; -install, -use, -remove KEY rotate them
//	usher tls ca create          a farm CA; `usher tls cert create -node NAME` a node certificate
//	usher validate FILE          check a configuration file
//	usher version                print the version
//	usher completion bash|zsh    the shell completion script
//	usher demo                   a five-agent farm on loopback and a few hundred clients; kills the leader and a server
//
// Flags may come before or after a command's arguments (usher drain n2
// -http ADDR).
//
// The version is set at build time with -ldflags "-X main.version=v1.2.3"
// (the Makefile does this) and reported by `usher version` and the agent's
// API as node.Version.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
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
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is one subcommand.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// commands lists the subcommands in the order help shows them.
var commands = []command{
	{"agent", "run the agent on this node", runAgent},
	{"probe", "send probes to a balancer address and print the assigned server", runProbe},
	{"members", "list the farm's members: address, load, status, voter/leader", runMembers},
	{"status", "show an agent's view: leader, term, balancer address holder, report age", runStatus},
	{"drain", "drain a node: it gets no new sessions and its clients move (through Raft)", runDrain},
	{"undrain", "undo a drain", runUndrain},
	{"leave", "make an agent leave the farm gracefully", runLeave},
	{"reload", "make an agent read its configuration again (log level, capacity, TLS files), as SIGHUP does", runReload},
	{"capacity", "override a node's capacity through Raft, or clear the override", runCapacity},
	{"force-leave", "make a member the farm found dead count as left (out of Raft at once)", runForceLeave},
	{"raft", "list the Raft peers, or remove one that is gone for good", runRaft},
	{"keygen", "print a new gossip encryption key", runKeygen},
	{"keyring", "list, install, use or remove the farm's gossip keys (key rotation, through Raft)", runKeyring},
	{"tls", "create the farm CA and node certificates of Raft's mutual TLS", runTLS},
	{"validate", "check a configuration file", runValidate},
	{"version", "print the version", runVersion},
	{"demo", "run a five-node farm and a few hundred clients on loopback, kill nodes, show the failover", runDemo},
}

// run executes the command line args (without the program name) and returns
// the exit code: 0 for success, 1 for a failure, 2 for a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "usher: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// usage writes the top-level help.
func usage(w io.Writer) {
	fmt.Fprint(w, `Usher balances session-based services: clients probe a balancer address
and are redirected to the least-loaded server, which they then talk to directly.

Usage: usher <command> [flags] [arguments]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun 'usher <command> -h' for the command's flags.\n")
}

// newFlagSet returns a flag set for a command that reports errors instead
// of exiting, with a usage header.
func newFlagSet(name, synopsis, about string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("usher "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: usher %s %s\n\n%s\n\nFlags:\n", name, synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs and turns the outcome into an exit code:
// -1 to go on, 0 after -h, 2 for a usage error. Flags may come before or
// after the positional arguments, as Consul's and git's commands take them
// (`usher drain n2 -http ADDR`); after "--" everything is positional.
func parseFlags(fs *flag.FlagSet, args []string) int {
	err := parseInterspersed(fs, args)
	switch {
	case err == nil:
		return -1
	case errors.Is(err, flag.ErrHelp):
		return 0
	}
	return 2
}

// runVersion implements `usher version`.
func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "", "Print the version of this binary.", stderr)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	fmt.Fprintf(stdout, "usher %s (%s, %s/%s)\n", node.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}

// runValidate implements `usher validate FILE`.
func runValidate(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", "FILE", "Check the configuration file FILE: its syntax, its keys and every value.", stderr)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	path := fs.Arg(0)
	if err := node.CheckConfigFile(path); err != nil {
		fmt.Fprintf(stderr, "usher: %s is not valid:\n%v\n", path, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: valid\n", path)
	return 0
}

// parseInterspersed parses args into fs, taking flags wherever they are
// among the positional arguments, which fs.Args then returns in their
// order. The standard flag package stops at the first positional argument;
// here each stop moves that argument aside and parsing goes on. A "--"
// ends the flags: whatever follows it is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) error {
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	// Parsing "--" alone sets fs.Args to what follows it, and no flag.
	return fs.Parse(append([]string{"--"}, pos...))
}
