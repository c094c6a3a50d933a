package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usherlb/usher/internal/apiclient"
	"github.com/usherlb/usher/internal/testutil"
	"github.com/usherlb/usher/node"
)

// opsAgent starts an in-process agent on free loopback ports, with its HTTP
// API, for the operator commands to talk to.
func opsAgent(t *testing.T) *node.Agent {
	t.Helper()
	a := startTestAgent(t, "127.0.0.1:0")
	if a.HTTPAddr() == "" {
		t.Fatal("agent has no HTTP API")
	}
	return a
}

// TestOpsAgent runs the operator commands against one agent; leave comes
// last since it takes the agent out of its farm.
func TestOpsAgent(t *testing.T) {
	t.Setenv(apiclient.AddrEnv, "") // the tests choose the address
	a := opsAgent(t)
	ctx := context.Background()
	api := a.HTTPAddr()
	name := a.Status().Node

	t.Run("members", func(t *testing.T) {
		code, out, errOut := runArgs(ctx, "members", "-http", api)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 {
			t.Fatalf("want a header and one member:\n%s", out)
		}
		for _, col := range []string{"NAME", "SESSION ADDR", "STATUS", "LOAD", "ROLE", "DRAINING", "REPORT AGE"} {
			if !strings.Contains(lines[0], col) {
				t.Errorf("header lacks %s: %q", col, lines[0])
			}
		}
		for _, want := range []string{name, a.SessionAddr().String(), "alive", "0/", "(0%)", "leader", " no "} {
			if !strings.Contains(lines[1], want) {
				t.Errorf("member row lacks %q: %q", want, lines[1])
			}
		}

		code, out, errOut = runArgs(ctx, "members", "-json", "-http", api)
		if code != 0 {
			t.Fatalf("-json: exit %d: %s", code, errOut)
		}
		var ms []map[string]any
		if err := json.Unmarshal([]byte(out), &ms); err != nil {
			t.Fatalf("-json: %v\n%s", err, out)
		}
		if len(ms) != 1 || ms[0]["name"] != name || ms[0]["leader"] != true {
			t.Errorf("-json: %v", ms)
		}
		if !strings.HasPrefix(out, "[\n  {\n    \"") {
			t.Errorf("-json is not indented:\n%s", out)
		}
	})

	t.Run("status", func(t *testing.T) {
		code, out, errOut := runArgs(ctx, "status", "-http", api)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		for _, want := range []string{
			"node                " + name,
			"role                leader",
			"leader              " + name,
			"term                " + strconv.FormatUint(a.Term(), 10),
			"serving             yes",
			"held by " + name,
			"members             1 alive",
			"voters              1: " + name,
			"draining            no",
			"version             " + node.Version,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("status lacks %q:\n%s", want, out)
			}
		}

		code, out, errOut = runArgs(ctx, "status", "-json", "-http", api)
		if code != 0 {
			t.Fatalf("-json: exit %d: %s", code, errOut)
		}
		var st map[string]any
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("-json: %v\n%s", err, out)
		}
		if st["leader"] != name || st["term"] != float64(a.Term()) || st["serving"] != true {
			t.Errorf("-json: %v", st)
		}
	})

	t.Run("env", func(t *testing.T) {
		t.Setenv(apiclient.AddrEnv, api)
		if code, out, errOut := runArgs(ctx, "status"); code != 0 || !strings.Contains(out, name) {
			t.Errorf("$%s: exit %d, %q, %q", apiclient.AddrEnv, code, out, errOut)
		}
		// The flag wins over the environment.
		t.Setenv(apiclient.AddrEnv, testutil.ClosedTCPAddr(t))
		if code, _, errOut := runArgs(ctx, "status", "-http", api); code != 0 {
			t.Errorf("-http over $%s: exit %d, %q", apiclient.AddrEnv, code, errOut)
		}
	})

	t.Run("drain", func(t *testing.T) {
		tests := []struct {
			args     []string
			want     string
			draining bool
		}{
			{[]string{"drain", "-http", api, name}, "node " + name + " draining\n", true},
			// Flags after the node's name, as the README writes it.
			{[]string{"undrain", name, "-http", api}, "node " + name + " no longer draining\n", false},
		}
		for _, tt := range tests {
			code, out, errOut := runArgs(ctx, tt.args...)
			if code != 0 || out != tt.want {
				t.Fatalf("%s: exit %d, %q, %q", tt.args[0], code, out, errOut)
			}
			// The drain went through Raft: the agent applies it soon.
			want := "draining            " + yesNo(tt.draining)
			deadline := time.Now().Add(5 * time.Second)
			for {
				_, out, _ := runArgs(ctx, "status", "-http", api)
				if strings.Contains(out, want) && a.Status().Draining == tt.draining {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after %s, status lacks %q:\n%s", tt.args[0], want, out)
				}
				time.Sleep(20 * time.Millisecond)
			}
			_, out, _ = runArgs(ctx, "members", "-http", api)
			if row := strings.Split(out, "\n")[1]; !strings.Contains(row, " "+yesNo(tt.draining)+" ") {
				t.Errorf("after %s, members row: %q", tt.args[0], row)
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			args []string
			code int
			want string
		}{
			{[]string{"drain", "-http", api, "ghost"}, 1, `usher drain: node: "ghost" is not a known node` + "\n"},
			{[]string{"undrain", "-http", api, "a b&c"}, 1, `usher undrain: node: "a b&c" is not a known node` + "\n"},
			{[]string{"drain", "-http", api}, 2, "Usage: usher drain"},
			{[]string{"undrain", "-http", api}, 2, "Usage: usher undrain"},
			{[]string{"drain", "-http", api, name, "extra"}, 2, `unexpected argument "extra"`},
			{[]string{"drain", "-http", api, ""}, 2, "empty argument"},
			{[]string{"members", "-http", api, "extra"}, 2, "Usage: usher members"},
			{[]string{"leave", "-http", api, "extra"}, 2, "Usage: usher leave"},
			{[]string{"status", "-http", "no-port"}, 2, `usher status: -http: "no-port" is not a host:port address`},
			{[]string{"status", "-http", "ftp://" + api}, 2, "is not a host:port address"},
			{[]string{"status", "-bogus"}, 2, "flag provided but not defined"},
		}
		for _, tt := range tests {
			code, _, errOut := runArgs(ctx, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Errorf("%q: exit %d, %q; want %d and %q", tt.args, code, errOut, tt.code, tt.want)
			}
		}
	})

	t.Run("url", func(t *testing.T) {
		if code, out, errOut := runArgs(ctx, "status", "-http", "http://"+api+"/"); code != 0 || !strings.Contains(out, name) {
			t.Errorf("http:// address: exit %d, %q, %q", code, out, errOut)
		}
	})

	t.Run("operator", func(t *testing.T) {
		code, out, errOut := runArgs(ctx, "raft", "list-peers", "-http", api)
		if code != 0 || !strings.Contains(out, "NODE") || !regexp.MustCompile(name+`\s+\S+\s+leader\s+yes`).MatchString(out) {
			t.Errorf("raft list-peers: exit %d, %q, %q", code, out, errOut)
		}
		capacity := func() uint32 {
			ms := a.Members()
			if len(ms) != 1 {
				t.Fatalf("members: %+v", ms)
			}
			return ms[0].Capacity
		}
		own := capacity()
		if code, out, errOut := runArgs(ctx, "capacity", name, "42", "-http", api); code != 0 || out != "node "+name+": capacity 42\n" {
			t.Fatalf("capacity: exit %d, %q, %q", code, out, errOut)
		}
		waitFor(t, "the override in members", func() bool { return capacity() == 42 })
		if code, _, errOut := runArgs(ctx, "capacity", "-clear", name, "-http", api); code != 0 {
			t.Fatalf("capacity -clear: exit %d, %q", code, errOut)
		}
		waitFor(t, "the node's own capacity again", func() bool { return capacity() == own })
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{"capacity", name, "0"}, "at least 1"},
			{[]string{"capacity", "ghost", "5"}, `"ghost" is not a known node`},
			{[]string{"force-leave", name}, "alive"},
			{[]string{"force-leave", "ghost"}, "not a known member"},
			{[]string{"raft", "remove-peer", "ghost"}, "not a server of the raft configuration"},
			{[]string{"raft", "remove-peer", name}, "it is the leader"},
		} {
			if code, _, errOut := runArgs(ctx, append(tt.args, "-http", api)...); code != 1 || !strings.Contains(errOut, tt.want) {
				t.Errorf("%v: exit %d, %q; want 1 and %q", tt.args, code, errOut, tt.want)
			}
		}
	})

	t.Run("leave", func(t *testing.T) {
		code, out, errOut := runArgs(ctx, "leave", "-http", api)
		if code != 0 || out != "node "+name+" left the farm\n" {
			t.Errorf("exit %d, %q, %q", code, out, errOut)
		}
	})
}

// TestOpsNoAgent checks that every API command fails clearly when no agent
// listens.
func TestOpsNoAgent(t *testing.T) {
	addr := testutil.ClosedTCPAddr(t)
	for _, args := range [][]string{
		{"members"}, {"members", "-json"}, {"status"}, {"status", "-json"},
		{"drain", "-http", addr, "n1"}, {"undrain", "-http", addr, "n1"}, {"leave"},
	} {
		if !slices.Contains(args, "-http") {
			args = append(args, "-http", addr)
		}
		code, out, errOut := runArgs(context.Background(), args...)
		want := "usher " + args[0] + ": cannot reach the agent at " + addr
		if code != 1 || out != "" || !strings.HasPrefix(errOut, want) || !strings.Contains(errOut, "refused") {
			t.Errorf("%q: exit %d, %q, %q; want 1 and %q", args, code, out, errOut, want)
		}
	}
}

// TestOpsNotAnAgent checks the message when something else than an agent
// answers.
func TestOpsNotAnAgent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			c.Read(buf)
			c.Write([]byte("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 7\r\nConnection: close\r\n\r\nno luck"))
			c.Close()
		}
	}()
	defer func() { ln.Close(); <-done }()
	code, _, errOut := runArgs(context.Background(), "status", "-http", ln.Addr().String())
	if code != 1 || errOut != "usher status: the agent answered 502 Bad Gateway: no luck\n" {
		t.Errorf("exit %d, %q", code, errOut)
	}
}

func TestKeygen(t *testing.T) {
	seen := map[string]bool{}
	tests := []struct {
		args []string
		size int
	}{
		{[]string{"keygen"}, 32},
		{[]string{"keygen"}, 32},
		{[]string{"keygen", "-bytes", "32"}, 32},
		{[]string{"keygen", "-bytes", "16"}, 16},
		{[]string{"keygen", "-bytes", "24"}, 24},
	}
	for _, tt := range tests {
		args, size := tt.args, tt.size
		code, out, errOut := runArgs(context.Background(), args...)
		if code != 0 || !strings.HasSuffix(out, "\n") {
			t.Fatalf("%q: exit %d, %q, %q", args, code, out, errOut)
		}
		key := strings.TrimSuffix(out, "\n")
		b, err := base64.StdEncoding.DecodeString(key)
		if err != nil || len(b) != size {
			t.Errorf("%q: %q decodes to %d bytes, %v", args, key, len(b), err)
		}
		if seen[key] {
			t.Errorf("%q: key %q repeated", args, key)
		}
		seen[key] = true
		// The agent takes it as its encrypt_key.
		c := node.DevConfig()
		c.EncryptKey = key
		if _, err := c.Build(); err != nil {
			t.Errorf("%q: encrypt_key refused: %v", args, err)
		}
	}
	for _, args := range [][]string{{"keygen", "-bytes", "20"}, {"keygen", "extra"}} {
		if code, _, _ := runArgs(context.Background(), args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

// TestWriteStatusReportAge checks that a non-voter's report age says it
// comes from gossip, which only refreshes every 30 s or so.
func TestWriteStatusReportAge(t *testing.T) {
	tests := []struct {
		role, want string
	}{
		{node.RoleLeader, "oldest report age   250ms\n"},
		{node.RoleFollower, "oldest report age   250ms\n"},
		{node.RoleNonVoter, "oldest report age   250ms (gossiped; only voters hear every report)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.role, func(t *testing.T) {
			var b strings.Builder
			writeStatus(&b, &node.Status{Node: "n1", Role: tt.role, OldestReportMs: 250})
			if !strings.Contains(b.String(), tt.want) {
				t.Errorf("status lacks %q:\n%s", tt.want, b.String())
			}
		})
	}
}

// TestWriteServices checks the services table `usher members` prints under
// the members: one row per service and node, sorted, with state and reason,
// and no table for a farm without services.
func TestWriteServices(t *testing.T) {
	members := []node.MemberInfo{
		{Name: "n2", Services: []node.ServiceInfo{{Name: "turn", Addr: "198.18.0.2:3478", Sessions: 3, Capacity: 10, State: "unhealthy", Reason: `check "coturn": 2 failures in a row`}}},
		{Name: "n1", Services: []node.ServiceInfo{{Name: "turn", Addr: "198.18.0.1:3478", Addr6: "[2001:db8::1]:3478", Capacity: 10, State: "accepting"}}},
	}
	var b strings.Builder
	writeServices(&b, members)
	want := []string{
		"SERVICE  NODE  ADDRESS                             LOAD        STATE      REASON",
		"turn     n1    198.18.0.1:3478 [2001:db8::1]:3478  0/10 (0%)   accepting  -",
		`turn     n2    198.18.0.2:3478                     3/10 (30%)  unhealthy  check "coturn": 2 failures in a row`,
	}
	if got := strings.TrimSpace(b.String()); got != strings.Join(want, "\n") {
		t.Errorf("services table:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	b.Reset()
	writeServices(&b, []node.MemberInfo{{Name: "n1"}})
	if b.Len() != 0 {
		t.Errorf("a farm without services printed %q", b.String())
	}
}
