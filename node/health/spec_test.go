package health

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// decode parses src, a body of check blocks, with gohcl as the agent's
// configuration will.
func decode(t *testing.T, src string) []Spec {
	t.Helper()
	f, diags := hclparse.NewParser().ParseHCL([]byte(src), "test.hcl")
	if diags.HasErrors() {
		t.Fatalf("parse: %v", diags)
	}
	var body struct {
		Checks []Spec   `hcl:"check,block"`
		Rest   hcl.Body `hcl:",remain"`
	}
	if diags := gohcl.DecodeBody(f.Body, nil, &body); diags.HasErrors() {
		t.Fatalf("decode: %v", diags)
	}
	return body.Checks
}

// TestSpecDecodeHCL decodes every kind from HCL and checks what Build
// makes of them, defaults included.
func TestSpecDecodeHCL(t *testing.T) {
	specs := decode(t, `
check "coturn" {
  type     = "stun"
  address  = "10.0.0.7:3478"
  interval = "250ms"
  timeout  = "200ms"
  failures_before_critical = 3
  successes_before_passing = 2
}
check "game" {
  type     = "udp"
  address  = "[::1]:27015"
  send_hex = "ffffffff54"
  expect   = "I"
}
check "web" {
  type = "http"
  url  = "http://127.0.0.1:8080/health"
}
check "db" {
  type    = "tcp"
  address = "localhost:5432"
}
check "script" {
  type    = "command"
  command = ["/usr/bin/true", "--flag"]
}
`)
	checks, err := BuildAll(specs)
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 5 {
		t.Fatalf("got %d checks, want 5", len(checks))
	}
	c := checks[0]
	if c.Name != "coturn" || c.Kind != KindSTUN || c.Interval != 250*time.Millisecond ||
		c.Timeout != 200*time.Millisecond || c.FailuresBeforeCritical != 3 || c.SuccessesBeforePassing != 2 {
		t.Errorf("coturn: %+v", c)
	}
	if got, want := c.String(), `check "coturn" (stun 10.0.0.7:3478)`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	g := checks[1]
	if string(g.Send) != "\xff\xff\xff\xffT" || string(g.Expect) != "I" {
		t.Errorf("game payloads: send %q expect %q", g.Send, g.Expect)
	}
	w := checks[2]
	if w.Interval != DefaultInterval || w.Timeout != DefaultTimeout ||
		w.FailuresBeforeCritical != DefaultFailuresBeforeCritical || w.SuccessesBeforePassing != DefaultSuccessesBeforePassing {
		t.Errorf("web defaults: %+v", w)
	}
	if s := checks[4]; len(s.Command) != 2 || s.Shell {
		t.Errorf("script: %+v", s)
	}
}

// TestSpecErrors checks that Build refuses bad specs with an error naming
// the check, the key and the value.
func TestSpecErrors(t *testing.T) {
	stun := Spec{Name: "coturn", Type: "stun", Address: "127.0.0.1:3478"}
	with := func(f func(*Spec)) Spec { s := stun; f(&s); return s }
	tests := []struct {
		spec Spec
		want string
	}{
		{with(func(s *Spec) { s.Interval = "1x" }), `check "coturn": interval "1x": not a duration`},
		{with(func(s *Spec) { s.Timeout = "-1s" }), `check "coturn": timeout "-1s": must be positive`},
		{with(func(s *Spec) { s.Interval = "250ms"; s.Timeout = "250ms" }), `check "coturn": timeout "250ms": must be below interval "250ms"`},
		{with(func(s *Spec) { s.Interval = "100ms" }), `check "coturn": timeout "500ms": must be below interval "100ms"`},
		{with(func(s *Spec) { s.FailuresBeforeCritical = -1 }), `failures_before_critical -1: must be positive`},
		{with(func(s *Spec) { s.SuccessesBeforePassing = -2 }), `successes_before_passing -2: must be positive`},
		{with(func(s *Spec) { s.Type = "" }), `check "coturn": type: required`},
		{with(func(s *Spec) { s.Type = "ping" }), `check "coturn": type "ping": not stun, udp, tcp, http or command`},
		{with(func(s *Spec) { s.Address = "" }), `check "coturn": address: required`},
		{with(func(s *Spec) { s.Address = "10.0.0.7" }), `check "coturn": address "10.0.0.7": not host:port`},
		{with(func(s *Spec) { s.URL = "http://x/" }), `check "coturn": url: not used by a stun check`},
		{with(func(s *Spec) { s.Name = "" }), `check "": name: must not be empty`},
		{Spec{Name: "g", Type: "udp", Address: "127.0.0.1:1"}, `check "g": send: one of send or send_hex is required`},
		{Spec{Name: "g", Type: "udp", Address: "127.0.0.1:1", Send: "a", SendHex: "61"}, `send: set send or send_hex, not both`},
		{Spec{Name: "g", Type: "udp", Address: "127.0.0.1:1", SendHex: "zz"}, `check "g": send_hex "zz": not hex`},
		{Spec{Name: "g", Type: "udp", Address: "127.0.0.1:1", Send: "a", ExpectHex: "z"}, `expect_hex "z": not hex`},
		{Spec{Name: "w", Type: "http", URL: "ftp://x/"}, `check "w": url "ftp://x/": not an http or https URL`},
		{Spec{Name: "w", Type: "http", Address: "127.0.0.1:80"}, `check "w": address: not used by a http check`},
		{Spec{Name: "c", Type: "command"}, `check "c": command: required`},
		{Spec{Name: "c", Type: "command", Command: []string{""}}, `command: the program must not be empty`},
		{Spec{Name: "c", Type: "command", Command: []string{"echo", "hi"}, Shell: true}, `with shell = true, give one string`},
		{Spec{Name: "t", Type: "tcp", Address: "127.0.0.1:1", Shell: true}, `check "t": shell: not used by a tcp check`},
	}
	for _, tt := range tests {
		err := tt.spec.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: error %v, want %q", tt.spec, err, tt.want)
		}
	}
	dup := []Spec{stun, stun}
	if _, err := BuildAll(dup); err == nil || !strings.Contains(err.Error(), `check "coturn": defined twice`) {
		t.Errorf("duplicate names: error %v", err)
	}
	if _, err := New(dup, Options{}); err == nil {
		t.Error("New accepted duplicate names")
	}
}
