package loadsrc

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsimple"
)

func TestSpecValidateErrors(t *testing.T) {
	cases := []struct {
		name string
		spec Spec
		want string
	}{
		{"bad interval", Spec{Source: "push", Interval: "abc"}, `load.interval "abc": not a duration`},
		{"bad timeout", Spec{Source: "push", Timeout: "5"}, `load.timeout "5": not a duration`},
		{"timeout not shorter", Spec{Source: "push", Interval: "1s", Timeout: "1s"}, `load.timeout "1s": must be shorter than load.interval (1s)`},
		{"default timeout vs short interval", Spec{Source: "push", Interval: "200ms"}, `load.timeout "500ms": must be shorter`},
		{"unknown source", Spec{Source: "snmp"}, `load.source "snmp": not one of`},
		{"negative failures", Spec{Source: "push", Failures: -1}, `load.failures -1`},
		{"foreign key", Spec{Source: "push", URL: "http://x/"}, `load.url: not a key of source "push"`},
		{"prometheus no url", Spec{Source: "prometheus", Metric: "m"}, `load.url "": not an http or https URL`},
		{"prometheus no metric", Spec{Source: "prometheus", URL: "http://127.0.0.1/metrics"}, `load.metric: required`},
		{"command empty", Spec{Source: "command"}, `load.command: required`},
		{"shell two strings", Spec{Source: "command", Shell: true, Command: []string{"echo", "1"}}, `with shell = true, give one string`},
		{"sockets protocol", Spec{Source: "sockets", Protocol: "sctp", Port: 1}, `load.protocol "sctp": not udp or tcp`},
		{"sockets no port", Spec{Source: "sockets", Protocol: "udp"}, `load.port 0: not a port`},
		{"sockets both", Spec{Source: "sockets", Protocol: "udp", Port: 1, PortRange: "1-2"}, `give port or port_range, not both`},
		{"sockets range", Spec{Source: "sockets", Protocol: "udp", PortRange: "9-3"}, `load.port_range "9-3": not LOW-HIGH`},
		{"sockets direction", Spec{Source: "sockets", Protocol: "udp", Port: 1, Direction: "up"}, `load.direction "up"`},
		{"sockets state", Spec{Source: "sockets", Protocol: "udp", Port: 1, State: "any"}, `load.state "any"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.spec.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestSpecValidateSettings(t *testing.T) {
	cases := []struct {
		name string
		spec Spec
		want Settings
	}{
		{"defaults", Spec{Source: "sessions"}, Settings{Kind: "sessions", Interval: time.Second, Timeout: 500 * time.Millisecond, Failures: 3}},
		{"command argv kept", Spec{Source: "command", Command: []string{"/bin/x", "a b"}, Interval: "2s", Failures: 5},
			Settings{Kind: "command", Interval: 2 * time.Second, Timeout: 500 * time.Millisecond, Failures: 5, Argv: []string{"/bin/x", "a b"}}},
		{"command shell", Spec{Source: "command", Command: []string{"echo 1 | wc -l"}, Shell: true},
			Settings{Kind: "command", Interval: time.Second, Timeout: 500 * time.Millisecond, Failures: 3, Argv: []string{"/bin/sh", "-c", "echo 1 | wc -l"}}},
		{"coturn relays", Spec{Source: "sockets", Protocol: "udp", PortRange: "49152-65535", State: "bound", Capacity: 500},
			Settings{Kind: "sockets", Interval: time.Second, Timeout: 500 * time.Millisecond, Failures: 3, Capacity: 500, Protocol: "udp", PortLow: 49152, PortHigh: 65535, AnyState: true}},
		{"peer port", Spec{Source: "sockets", Protocol: "tcp", Port: 3478, Direction: "peer"},
			Settings{Kind: "sockets", Interval: time.Second, Timeout: 500 * time.Millisecond, Failures: 3, Protocol: "tcp", PortLow: 3478, PortHigh: 3478, Peer: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.spec.Validate()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Validate() =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

// TestSpecDecodesHCL checks the tags: the block the lead's configuration
// will embed decodes with gohcl.
func TestSpecDecodesHCL(t *testing.T) {
	src := `
load {
  source   = "prometheus"
  url      = "http://127.0.0.1:9100/metrics"
  metric   = "game_sessions"
  labels   = { state = "active" }
  interval = "2s"
  timeout  = "1s"
}
`
	var root struct {
		Load Spec `hcl:"load,block"`
	}
	if err := hclsimple.Decode("x.hcl", []byte(src), nil, &root); err != nil {
		t.Fatal(err)
	}
	_ = gohcl.DecodeBody // the tags are gohcl's; hclsimple uses it
	set, err := root.Load.Validate()
	if err != nil {
		t.Fatal(err)
	}
	if set.Metric != "game_sessions" || set.Labels["state"] != "active" || set.Interval != 2*time.Second || set.Timeout != time.Second {
		t.Fatalf("settings %+v", set)
	}
}
