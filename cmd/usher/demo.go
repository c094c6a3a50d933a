package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/usherlb/usher/internal/demo"
)

// runDemo implements `usher demo`: it parses the flags and runs
// internal/demo.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", "[-clients N] [-phase D] [-bin PATH] [-v]",
		`Run a five-node Usher farm on loopback (five agent processes of this binary,
on 127.0.0.11-15, balancer address 127.0.0.100:3478 held by the Raft leader)
and N client sessions in this process. A table of the nodes is refreshed in
place. After one phase the leader is killed with SIGKILL, after another a
server with sessions; the table shows the balancer address and the clients
moving. The summary gives the failover times, the sessions disturbed on the
servers that stayed up (must be 0: the exit code is 1 otherwise) and the
load spread. Busy addresses are replaced by free loopback ports.`, stderr)
	var o demo.Options
	fs.IntVar(&o.Clients, "clients", 300, "number of client sessions")
	fs.DurationVar(&o.Phase, "phase", 10*time.Second, "length of each act: steady, after the leader's death, after the server's")
	fs.DurationVar(&o.Keepalive, "keepalive", 500*time.Millisecond, "keepalive interval the agents give clients")
	fs.DurationVar(&o.DeadAfter, "dead-after", 1500*time.Millisecond, "silence after which a client declares its server dead")
	fs.StringVar(&o.VIP, "vip", "127.0.0.100:3478", "balancer address to try first")
	fs.StringVar(&o.Bin, "bin", "", "usher binary to run the agents with (default: this one)")
	fs.BoolVar(&o.Verbose, "v", false, "print the agents' logs if the demo fails")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "usher demo: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if o.Bin == "" {
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintf(stderr, "usher demo: cannot find this binary (use -bin): %v\n", err)
			return 1
		}
		o.Bin = exe
	}
	if err := o.Validate(); err != nil {
		fmt.Fprintf(stderr, "usher demo: %v\n", err)
		return 2
	}
	o.TTY = isTerminal(stdout)
	if err := demo.Run(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "usher demo: %v\n", err)
		return 1
	}
	return 0
}

// isTerminal reports whether w is a character device, where the demo's
// table can be redrawn in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
