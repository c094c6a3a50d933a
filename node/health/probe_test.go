package health

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runProbe runs c once with a short timeout and returns its error.
func runProbe(t *testing.T, s Spec) error {
	t.Helper()
	if s.Name == "" {
		s.Name = "t"
	}
	if s.Interval == "" {
		s.Interval, s.Timeout = "1s", "300ms"
	}
	c, err := s.Build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	return probe(ctx, &c)
}

// want checks a probe's verdict: pass (errSub empty) or a failure whose
// error contains errSub.
func want(t *testing.T, err error, errSub string) {
	t.Helper()
	switch {
	case errSub == "" && err != nil:
		t.Fatalf("failed: %v, want pass", err)
	case errSub != "" && err == nil:
		t.Fatalf("passed, want failure %q", errSub)
	case errSub != "" && !strings.Contains(err.Error(), errSub):
		t.Fatalf("failed: %v, want failure %q", err, errSub)
	}
}

// closedUDPPort returns a loopback UDP address nobody listens on.
func closedUDPPort(t *testing.T) string {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}

// TestProbeSTUN runs the stun check against responders answering each way:
// a success and a 401 pass, everything else fails.
func TestProbeSTUN(t *testing.T) {
	tests := []struct {
		name   string
		mode   stunMode
		errSub string
	}{
		{"success", answerSuccess, ""},
		{"401 passes", answer401, ""},
		{"400 fails", answer400, "error response 400"},
		{"garbage fails", answerGarbage, "not a stun message"},
		{"wrong transaction fails", answerWrongTID, "another transaction id"},
		{"silence fails", answerNothing, "i/o timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeSTUN(t, tt.mode)
			want(t, runProbe(t, Spec{Type: "stun", Address: srv.Addr()}), tt.errSub)
		})
	}
	t.Run("refused fails", func(t *testing.T) {
		want(t, runProbe(t, Spec{Type: "stun", Address: closedUDPPort(t)}), "connection refused")
	})
}

// TestProbeUDP runs the udp check against an echo server, with and without
// an expected prefix, and against a closed port.
func TestProbeUDP(t *testing.T) {
	echo := newUDPEcho(t)
	tests := []struct {
		name   string
		spec   Spec
		errSub string
	}{
		{"any reply", Spec{Send: "ping"}, ""},
		{"hex payload", Spec{SendHex: "ffff00"}, ""},
		{"expected prefix", Spec{Send: "pong!", Expect: "pong"}, ""},
		{"expected hex prefix", Spec{SendHex: "ff01", ExpectHex: "ff"}, ""},
		{"wrong prefix", Spec{Send: "ping", Expect: "pong"}, `does not start with "pong"`},
		{"refused", Spec{Send: "ping", Address: closedUDPPort(t)}, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.spec
			s.Type = "udp"
			if s.Address == "" {
				s.Address = echo.Addr()
			}
			want(t, runProbe(t, s), tt.errSub)
		})
	}
	t.Run("silence", func(t *testing.T) {
		silent := newFakeSTUN(t, answerNothing) // answers nothing that is not STUN
		want(t, runProbe(t, Spec{Type: "udp", Address: silent.Addr(), Send: "x"}), "i/o timeout")
	})
}

// TestProbeTCP connects to a listener, then to the same port once closed.
func TestProbeTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	want(t, runProbe(t, Spec{Type: "tcp", Address: addr}), "")
	ln.Close()
	want(t, runProbe(t, Spec{Type: "tcp", Address: addr}), "connection refused")
}

// TestProbeHTTP checks 2xx passes, 5xx and endless redirects fail, and a
// body larger than the limit is no trouble.
func TestProbeHTTP(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) { w.Write(make([]byte, 4*maxBody)) })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "down", http.StatusInternalServerError) })
	mux.HandleFunc("/hop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tests := []struct{ path, errSub string }{
		{"/ok", ""},
		{"/big", ""},
		{"/hop", ""},
		{"/fail", "status 500"},
		{"/loop", "redirects"},
		{"/missing", "status 404"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			want(t, runProbe(t, Spec{Type: "http", URL: srv.URL + tt.path}), tt.errSub)
		})
	}
}

// script writes an executable shell script into a temporary directory.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "check.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestProbeCommand runs scripts: exit 0 passes, any other status fails
// with the output quoted, and argv reaches the program unchanged, without
// a shell, unless shell = true.
func TestProbeCommand(t *testing.T) {
	literal := script(t, `[ "$1" = 'a; exit 3' ] && [ "$#" = 1 ]`)
	tests := []struct {
		name   string
		spec   Spec
		errSub string
	}{
		{"exit 0", Spec{Command: []string{script(t, "exit 0")}}, ""},
		{"exit 2", Spec{Command: []string{script(t, "echo overloaded; exit 2")}}, "exit status 2: overloaded"},
		{"no such program", Spec{Command: []string{filepath.Join(t.TempDir(), "nope")}}, "no such file"},
		{"argv is literal", Spec{Command: []string{literal, "a; exit 3"}}, ""},
		{"shell when asked", Spec{Command: []string{"exit 4"}, Shell: true}, "exit status 4"},
		{"shell runs pipelines", Spec{Command: []string{"echo ok | grep -q ok"}, Shell: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.spec
			s.Type = "command"
			want(t, runProbe(t, s), tt.errSub)
		})
	}
}

// TestProbeCommandTimeoutKillsGroup runs a shell whose child outlives the
// timeout: the probe fails within the timeout plus the pipe grace, and the
// child, which shares the group, is killed too (it would otherwise create
// its marker file).
func TestProbeCommandTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "survived")
	start := time.Now()
	err := runProbe(t, Spec{
		Type:    "command",
		Command: []string{"(sleep 1; touch " + marker + ") & sleep 5"},
		Shell:   true,
	})
	elapsed := time.Since(start)
	want(t, err, "killed")
	// Killing the shell alone would leave its child holding the output
	// pipe until waitDelay ran out.
	if bound := 300*time.Millisecond + waitDelay/2; elapsed > bound {
		t.Errorf("probe took %v, want at most %v", elapsed, bound)
	}
	time.Sleep(1500 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the command's child survived the timeout")
	}
}
