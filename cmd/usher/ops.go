package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/usherlb/usher/internal/apiclient"
	"github.com/usherlb/usher/node"
)

// The operator commands (members, status, drain, undrain, leave) talk to an
// agent's HTTP API through package apiclient; keygen needs no agent.

// opsCommand is what every API command shares: its name (for messages), its
// error stream and the client, built after its flags are parsed.
type opsCommand struct {
	name   string
	stderr io.Writer
	api    *apiclient.Client
}

// setUp parses args into fs (registering -http first) and builds the API
// client. It returns the exit code to stop with, or -1 to go on; nargs is
// the number of positional arguments the command takes.
func (o *opsCommand) setUp(fs *flag.FlagSet, args []string, nargs int) int {
	flags := apiclient.RegisterFlags(fs)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() != nargs {
		if fs.NArg() > nargs {
			fmt.Fprintf(o.stderr, "usher %s: unexpected argument %q\n", o.name, fs.Arg(nargs))
		}
		fs.Usage()
		return 2
	}
	for i := range nargs {
		if fs.Arg(i) == "" {
			fmt.Fprintf(o.stderr, "usher %s: empty argument\n", o.name)
			return 2
		}
	}
	api, err := flags.New()
	if err != nil {
		fmt.Fprintf(o.stderr, "usher %s: %v\n", o.name, err)
		return 2
	}
	o.api = api
	return -1
}

// fail reports err and returns the failure exit code.
func (o *opsCommand) fail(err error) int {
	fmt.Fprintf(o.stderr, "usher %s: %v\n", o.name, err)
	return 1
}

// runMembers implements `usher members`.
func runMembers(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("members", "[-json] [-http ADDR] [-ca-file FILE]",
		`List the members of the farm as the agent at -http sees them: each node's
session address, gossip status (alive, suspect, dead, left), load (sessions
over capacity, after the farm's capacity overrides), Raft role (leader, voter
or non-voter), whether it is draining and the age of its last load report;
then each named service of each node: its address, load, and whether it
accepts new sessions (accepting, draining, unhealthy or load-failed, with
the reason on the agent asked).`, stderr)
	asJSON := fs.Bool("json", false, "print the API's JSON array of members instead of a table")
	o := opsCommand{name: "members", stderr: stderr}
	if code := o.setUp(fs, args, 0); code >= 0 {
		return code
	}
	defer o.api.Close()
	members, raw, err := o.api.Members(ctx)
	if err != nil {
		return o.fail(err)
	}
	if *asJSON {
		// Re-indent the raw answer, keeping any field this binary does
		// not know; an empty farm is [] rather than null.
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return o.fail(err)
		}
		if elems == nil {
			elems = []json.RawMessage{}
		}
		b, err := json.MarshalIndent(elems, "", "  ")
		if err != nil {
			return o.fail(err)
		}
		fmt.Fprintf(stdout, "%s\n", b)
		return 0
	}
	writeMembers(stdout, members)
	return 0
}

// writeMembers writes members as an aligned table.
func writeMembers(w io.Writer, members []node.MemberInfo) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSESSION ADDR\tSTATUS\tLOAD\tROLE\tDRAINING\tREPORT AGE")
	for _, m := range members {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			m.Name, orDash(m.SessionAddr), m.Status, formatLoad(uint64(m.Sessions), uint64(m.Capacity)),
			memberRole(m), yesNo(m.Draining), formatAgeMs(m.ReportAgeMs))
	}
	tw.Flush()
	writeServices(w, members)
}

// writeServices writes the members' named services, if any, as a second
// table: one row per node and service, with why a service of the agent
// asked is not accepting.
func writeServices(w io.Writer, members []node.MemberInfo) {
	var rows []string
	for _, m := range members {
		for _, s := range m.Services {
			addr := s.Addr
			if s.Addr6 != "" {
				addr += " " + s.Addr6
			}
			rows = append(rows, fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, m.Name, addr,
				formatLoad(uint64(s.Sessions), uint64(s.Capacity)), s.State, orDash(s.Reason)))
		}
	}
	if len(rows) == 0 {
		return
	}
	slices.Sort(rows)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tNODE\tADDRESS\tLOAD\tSTATE\tREASON")
	for _, r := range rows {
		fmt.Fprint(tw, r)
	}
	tw.Flush()
}

// memberRole names a member's Raft role.
func memberRole(m node.MemberInfo) string {
	switch {
	case m.Leader:
		return "leader"
	case m.Voter:
		return "voter"
	}
	return "non-voter"
}

// formatLoad writes sessions over capacity with the percentage, like
// "12/100 (12%)".
func formatLoad(sessions, capacity uint64) string {
	if capacity == 0 {
		return strconv.FormatUint(sessions, 10) + "/0"
	}
	pct := float64(sessions) * 100 / float64(capacity)
	return fmt.Sprintf("%d/%d (%.0f%%)", sessions, capacity, pct)
}

// formatAgeMs writes an age in milliseconds as a rounded duration, or "-"
// when there is none.
func formatAgeMs(ms float64) string {
	d := time.Duration(ms * float64(time.Millisecond))
	switch {
	case d <= 0:
		return "-"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// yesNo writes a flag for people.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// orDash returns s, or "-" when s is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// runStatus implements `usher status`.
func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("status", "[-json] [-http ADDR] [-ca-file FILE]",
		`Show the state of the agent at -http: its role, the leader and term, the
balancer address and which node holds it, whether this node answers probes,
the farm's size and voters, the age of the oldest load report, how often
leadership changed, this node's sessions and capacity, whether it drains,
its uptime and version.`, stderr)
	asJSON := fs.Bool("json", false, "print the API's JSON status object instead of a summary")
	o := opsCommand{name: "status", stderr: stderr}
	if code := o.setUp(fs, args, 0); code >= 0 {
		return code
	}
	defer o.api.Close()
	st, raw, err := o.api.Status(ctx)
	if err != nil {
		return o.fail(err)
	}
	if *asJSON {
		var b bytes.Buffer
		if err := json.Indent(&b, bytes.TrimSpace(raw), "", "  "); err != nil {
			return o.fail(err)
		}
		b.WriteByte('\n')
		stdout.Write(b.Bytes())
		return 0
	}
	writeStatus(stdout, st)
	return 0
}

// writeStatus writes st as aligned "key  value" lines.
func writeStatus(w io.Writer, st *node.Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(key, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{key}, args...)...)
	}
	line("node", "%s", st.Node)
	line("role", "%s", st.Role)
	line("leader", "%s", orNone(st.Leader))
	line("term", "%d", st.Term)
	vip := orNone(st.VIP)
	if st.VIP != "" && st.VIPMode != "" {
		vip += " (" + st.VIPMode + ")"
	}
	line("balancer address", "%s, held by %s", vip, orNone(st.VIPHolder))
	line("serving", "%s", yesNo(st.Serving))
	line("session address", "%s", orNone(st.SessionAddr))
	line("members", "%d alive", st.Members)
	line("voters", "%d: %s", len(st.Voters), orNone(strings.Join(st.Voters, ", ")))
	// Only voters hear every report; a non-voter sees the gossiped copies,
	// refreshed every 30 s or so, which look stale.
	gossiped := ""
	if st.Role == node.RoleNonVoter {
		gossiped = " (gossiped; only voters hear every report)"
	}
	line("oldest report age", "%s%s", formatAgeMs(st.OldestReportMs), gossiped)
	line("leadership changes", "%d", st.LeadershipChanges)
	if st.Role == node.RoleLeader {
		line("lease lapses", "%d (stalls in which this leader answered nothing)", st.LeaseLapses)
	}
	line("sessions", "%s, %d accepted", formatLoad(uint64(max(st.Sessions, 0)), uint64(max(st.Capacity, 0))), st.Accepted)
	line("draining", "%s", yesNo(st.Draining))
	if st.Profile != "" {
		line("profile", "%s", st.Profile)
	}
	line("uptime", "%s", st.Uptime)
	line("version", "%s", st.Version)
	tw.Flush()
}

// orNone returns s, or "(none)" when s is empty.
func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// runDrain implements `usher drain NODE`.
func runDrain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("drain", "[-http ADDR] [-ca-file FILE] [-service NAME] NODE",
		`Drain the node NODE: balancers stop assigning new sessions to it and its
keepalive answers ask its clients to move to another server. With -service,
drain only NODE's service NAME: no new clients are sent to it, and NODE's
other services are untouched. The drain is agreed through Raft, so every
balancer applies it and it survives NODE's restart, until 'usher undrain
NODE' (with the same -service). Any agent of the farm takes the request: a
follower forwards it to the leader.`, stderr)
	return setDrain(ctx, "drain", fs, args, stdout, stderr, true)
}

// runUndrain implements `usher undrain NODE`.
func runUndrain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("undrain", "[-http ADDR] [-ca-file FILE] [-service NAME] NODE",
		`Undo 'usher drain NODE': NODE gets new sessions again. Like a drain, this
goes through Raft; any agent of the farm takes the request.`, stderr)
	return setDrain(ctx, "undrain", fs, args, stdout, stderr, false)
}

// setDrain drains (on) or undrains a node through the API.
func setDrain(ctx context.Context, name string, fs *flag.FlagSet, args []string, stdout, stderr io.Writer, on bool) int {
	o := opsCommand{name: name, stderr: stderr}
	service := fs.String("service", "", "drain only this service of NODE")
	if code := o.setUp(fs, args, 1); code >= 0 {
		return code
	}
	defer o.api.Close()
	target := fs.Arg(0)
	what := "node " + target
	if *service != "" {
		what = "service " + *service + " of node " + target
	}
	if err := o.api.SetDrain(ctx, target, *service, on); err != nil {
		return o.fail(err)
	}
	if on {
		fmt.Fprintf(stdout, "%s draining\n", what)
	} else {
		fmt.Fprintf(stdout, "%s no longer draining\n", what)
	}
	return 0
}

// runLeave implements `usher leave`.
func runLeave(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("leave", "[-http ADDR] [-ca-file FILE]",
		`Make the agent at -http leave the farm gracefully: it hands leadership on if
it leads, leaves the Raft configuration and tells the other members it is
going, so they do not wait for it to time out. The agent's process keeps
running (and its sockets open) until it is stopped; stop it afterwards with
SIGTERM.`, stderr)
	o := opsCommand{name: "leave", stderr: stderr}
	if code := o.setUp(fs, args, 0); code >= 0 {
		return code
	}
	defer o.api.Close()
	name, err := o.api.Leave(ctx)
	if err != nil {
		return o.fail(err)
	}
	if name == "" {
		name = "at " + o.api.Addr()
	}
	fmt.Fprintf(stdout, "node %s left the farm\n", name)
	return 0
}

// runReload implements `usher reload`.
func runReload(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("reload", "[-http ADDR] [-ca-file FILE]",
		`Make the agent at -http read its configuration again, as SIGHUP does: it
applies the log level, the node's capacity and the tls block's files at once,
and names the other keys that changed but need a restart. The agent never
stops or leaves for a reload; a configuration that does not build changes
nothing.`, stderr)
	o := opsCommand{name: "reload", stderr: stderr}
	if code := o.setUp(fs, args, 0); code >= 0 {
		return code
	}
	defer o.api.Close()
	res, err := o.api.Reload(ctx)
	if err != nil {
		return o.fail(err)
	}
	fmt.Fprintln(stdout, res)
	return 0
}

// runKeygen implements `usher keygen`.
func runKeygen(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("keygen", "[-bytes N]",
		`Print a new random gossip encryption key, base64 encoded: the value of the
agent's encrypt_key setting. Every member of a farm needs the same key. The
key comes from the operating system's random source; nothing is sent.`, stderr)
	size := fs.Int("bytes", 32, "key length in bytes: 16, 24 or 32 (AES-128, -192 or -256)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	switch *size {
	case 16, 24, 32:
	default:
		fmt.Fprintf(stderr, "usher keygen: -bytes must be 16, 24 or 32, not %d\n", *size)
		return 2
	}
	key := make([]byte, *size)
	rand.Read(key) // never fails (crypto/rand)
	fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(key))
	return 0
}
