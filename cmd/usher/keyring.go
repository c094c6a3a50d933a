package main

import (
	"context"
	"fmt"
	"io"
)

// runKeyring implements `usher keyring -list | -install KEY | -use KEY |
// -remove KEY`.
func runKeyring(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("keyring", "[-http ADDR] -list | -install KEY | -use KEY | -remove KEY",
		`Show or change the farm's gossip keyring, as Consul's 'consul keyring' does.
The keyring is farm state, changed through Raft: any agent takes a change (a
follower forwards it to the leader), and every agent applies it to its gossip
within a second. Keys are base64 ('usher keygen' makes one); -list names them
by fingerprint (the first 16 hex digits of their SHA-256), never by value.

Rotate the key in three steps, each after the one before reached every node
('usher keyring -list' on any agent shows its local keys):

  usher keyring -install NEW   every node accepts NEW as well
  usher keyring -use NEW       every node encrypts with NEW
  usher keyring -remove OLD    nobody accepts OLD any more

then set encrypt_key (or encrypt_key_file) to NEW in every node's
configuration, so that a restarted node can join again. Changes need the
write token.`, stderr)
	list := fs.Bool("list", false, "list the farm's keys and the agent's own, by fingerprint")
	install := fs.String("install", "", "add KEY to the farm's keyring")
	use := fs.String("use", "", "make KEY, already installed, the primary key every node encrypts with")
	remove := fs.String("remove", "", "remove KEY, which must not be the primary, from the farm's keyring")
	o := opsCommand{name: "keyring", stderr: stderr}
	if code := o.setUp(fs, args, 0); code >= 0 {
		return code
	}
	defer o.api.Close()
	var op, key string
	n := 0
	for name, v := range map[string]string{"install": *install, "use": *use, "remove": *remove} {
		if v != "" {
			op, key = name, v
			n++
		}
	}
	if *list {
		n++
	}
	if n != 1 {
		fmt.Fprintln(stderr, "usher keyring: give exactly one of -list, -install, -use, -remove")
		fs.Usage()
		return 2
	}
	if *list {
		return o.listKeyring(ctx, stdout)
	}
	if err := o.api.ChangeKeyring(ctx, op, key); err != nil {
		return o.fail(err)
	}
	fmt.Fprintf(stdout, "keyring: %s done; the agents apply it within a second\n", op)
	return 0
}

// listKeyring prints the farm's keyring and the agent's own.
func (o *opsCommand) listKeyring(ctx context.Context, stdout io.Writer) int {
	kl, err := o.api.Keyring(ctx)
	if err != nil {
		return o.fail(err)
	}
	show := func(what, primary string, keys []string) {
		fmt.Fprintf(stdout, "%s:\n", what)
		if len(keys) == 0 {
			fmt.Fprintln(stdout, "  (none: every node gossips with its configured encrypt_key)")
		}
		for _, k := range keys {
			mark := " "
			if k == primary {
				mark = "*"
			}
			fmt.Fprintf(stdout, "  %s %s\n", mark, k)
		}
	}
	show("farm keyring (* primary)", kl.Farm.Primary, kl.Farm.Keys)
	show("keys in use on "+kl.Node, kl.Local.Primary, kl.Local.Keys)
	return 0
}
