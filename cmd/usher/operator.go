package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
)

// runRaft implements `usher raft list-peers` and `usher raft remove-peer`.
func runRaft(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const about = `Inspect or change the Raft configuration.

  usher raft list-peers [-http ADDR]         the servers, their addresses, who votes and who leads
  usher raft remove-peer [-http ADDR] NAME   remove a server that is gone for good (on the leader)

A removed voter is replaced by a standby when one can be promoted. Removing
the leader is refused: make it leave (usher leave) so that leadership moves
first.`
	if len(args) == 0 || (args[0] != "list-peers" && args[0] != "remove-peer") {
		fs := newFlagSet("raft", "list-peers | remove-peer NAME", about, stderr)
		if code := parseFlags(fs, args); code >= 0 {
			return code
		}
		fs.Usage()
		return 2
	}
	if args[0] == "list-peers" {
		return listPeers(ctx, args[1:], stdout, stderr)
	}
	fs := newFlagSet("raft remove-peer", "[-http ADDR] NAME", about, stderr)
	o := opsCommand{name: "raft remove-peer", stderr: stderr}
	if code := o.setUp(fs, args[1:], 1); code >= 0 {
		return code
	}
	defer o.api.Close()
	if err := o.api.RemovePeer(ctx, fs.Arg(0)); err != nil {
		return o.fail(err)
	}
	fmt.Fprintf(stdout, "removed %s from the raft configuration\n", fs.Arg(0))
	return 0
}

// listPeers implements `usher raft list-peers`.
func listPeers(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("raft list-peers", "[-http ADDR] [-json]", "List the servers of the Raft configuration as the agent at -http knows it.", stderr)
	asJSON := fs.Bool("json", false, "print the peers as JSON")
	o := opsCommand{name: "raft list-peers", stderr: stderr}
	if code := o.setUp(fs, args, 0); code >= 0 {
		return code
	}
	defer o.api.Close()
	peers, body, err := o.api.Peers(ctx)
	if err != nil {
		return o.fail(err)
	}
	if *asJSON {
		stdout.Write(body)
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tSTATE\tVOTER")
	for _, p := range peers {
		state := "follower"
		if p.Leader {
			state = "leader"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.ID, p.Address, state, yesNo(p.Voter))
	}
	tw.Flush()
	return 0
}

// runForceLeave implements `usher force-leave`.
func runForceLeave(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("force-leave", "[-http ADDR] NODE",
		`Make NODE, a member the farm found dead, count as left: the leader takes it
out of the Raft configuration at once rather than waiting to replace it, and
the member list forgets it. A member that is alive is refused (make it leave
with usher leave); one that comes back rejoins.`, stderr)
	o := opsCommand{name: "force-leave", stderr: stderr}
	if code := o.setUp(fs, args, 1); code >= 0 {
		return code
	}
	defer o.api.Close()
	if err := o.api.ForceLeave(ctx, fs.Arg(0)); err != nil {
		return o.fail(err)
	}
	fmt.Fprintf(stdout, "node %s left the farm\n", fs.Arg(0))
	return 0
}

// runCapacity implements `usher capacity`.
func runCapacity(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("capacity", "[-http ADDR] NODE N | -clear NODE",
		`Override the capacity NODE reports with N sessions, through Raft, until
cleared (-clear): the balancer then fills NODE up to N. The override
outlives NODE's restarts; 'usher members' shows the capacity in force.`, stderr)
	clearIt := fs.Bool("clear", false, "drop the override: NODE's own capacity applies again")
	o := opsCommand{name: "capacity", stderr: stderr}
	nargs := 2
	for _, a := range args {
		if a == "-clear" || a == "--clear" || a == "-clear=true" {
			nargs = 1
		}
	}
	if code := o.setUp(fs, args, nargs); code >= 0 {
		return code
	}
	defer o.api.Close()
	node := fs.Arg(0)
	if *clearIt {
		if err := o.api.ClearCapacity(ctx, node); err != nil {
			return o.fail(err)
		}
		fmt.Fprintf(stdout, "node %s: capacity override cleared\n", node)
		return 0
	}
	capacity, err := o.api.SetCapacity(ctx, node, fs.Arg(1))
	if err != nil {
		return o.fail(err)
	}
	fmt.Fprintf(stdout, "node %s: capacity %d\n", node, capacity)
	return 0
}
