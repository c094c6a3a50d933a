package node

import (
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/usherlb/usher/assign"
)

func TestDefaultConfigValidates(t *testing.T) {
	for name, c := range map[string]Config{"default": DefaultConfig(), "dev": DevConfig()} {
		if _, err := c.Build(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	c := DefaultConfig()
	rt, err := c.Build()
	if err != nil {
		t.Fatal(err)
	}
	p := rt.Parsed
	if p.KeepaliveInterval != time.Second || p.DeadAfter != 3*time.Second || p.SessionTTL != 3*time.Second || p.TicketTTL != time.Hour {
		t.Errorf("durations = %+v", p)
	}
	if p.Policy != assign.LeastLoaded || c.Capacity != 1000 || c.StockAmplification != 3 || c.Backups != 2 || c.StockBinding != "answer" {
		t.Errorf("defaults = %+v", c)
	}
	// Today's behaviour stays a valid choice.
	r := DefaultConfig()
	r.StockBinding = "redirect"
	if _, err := r.Build(); err != nil {
		t.Errorf("stock_binding = redirect: %v", err)
	}
	if d := DevConfig(); d.VIP != "127.0.0.100:3478" || d.SessionAddr != "127.0.0.1:3479" || d.HTTP != "127.0.0.1:7480" {
		t.Errorf("dev = %+v", d)
	}
}

// TestKeysMatchTags checks that every hcl-tagged field is a key and back.
func TestKeysMatchTags(t *testing.T) {
	var c Config
	keys := map[string]bool{}
	for _, k := range c.keys() {
		if keys[k.name] {
			t.Errorf("key %s listed twice", k.name)
		}
		keys[k.name] = true
	}
	var walk func(rt reflect.Type, prefix string)
	walk = func(rt reflect.Type, prefix string) {
		for i := range rt.NumField() {
			tag, ok := rt.Field(i).Tag.Lookup("hcl")
			if !ok {
				continue
			}
			name, kind, _ := strings.Cut(tag, ",")
			if kind == "block" {
				walk(rt.Field(i).Type, prefix+name+".")
				continue
			}
			if !keys[prefix+name] {
				t.Errorf("field %s (hcl %q) is not a key", rt.Field(i).Name, prefix+name)
			}
			delete(keys, prefix+name)
		}
	}
	walk(reflect.TypeOf(c), "")
	for k := range keys {
		t.Errorf("key %s has no hcl-tagged field", k)
	}
}

func TestParseConfig(t *testing.T) {
	src := `
node_name    = "n1"
session_addr = "127.0.0.1:4000"
capacity     = 50
require_ticket = true
keepalive_interval = "200ms"
dead_after = "1s"
join = ["a:1", "b:2"]
policy = "p2c"
`
	c, err := ParseConfig([]byte(src), "usher.hcl")
	if err != nil {
		t.Fatal(err)
	}
	rt, err := c.Build()
	if err != nil {
		t.Fatal(err)
	}
	if rt.NodeName != "n1" || rt.Capacity != 50 || !rt.RequireTicket || rt.Parsed.KeepaliveInterval != 200*time.Millisecond ||
		!reflect.DeepEqual(rt.Join, []string{"a:1", "b:2"}) || rt.Parsed.Policy != assign.P2C || rt.Parsed.SessionAddr.Port() != 4000 {
		t.Errorf("parsed %+v", c)
	}
	if c.VIP != DefaultConfig().VIP {
		t.Errorf("unset key lost its default: vip = %q", c.VIP)
	}

	j, err := ParseConfig([]byte(`{"node_name": "j", "capacity": 7}`), "usher.json")
	if err != nil {
		t.Fatal(err)
	}
	if j.NodeName != "j" || j.Capacity != 7 {
		t.Errorf("json parsed %+v", j)
	}
}

func TestConfigFileErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"syntax", "node_name = \n", []string{"usher.hcl:1:13:", "node_name:"}},
		{"unknown key", "node_name = \"a\"\nbogus = 1\n", []string{"usher.hcl:2:1:", "bogus"}},
		{"wrong type", "node_name = \"a\"\n  capacity = \"lots\"\n", []string{"usher.hcl:2:14:", "capacity", "whole number"}},
		{"fraction", "capacity = 1.5\n", []string{"usher.hcl:1:12:", "capacity"}},
		{"list", "join = \"a\"\n", []string{"usher.hcl:1:8:", "join", "list"}},
		{"block", "sevrice \"x\" {}\n", []string{"usher.hcl:1:1:", "sevrice"}},
		{"service without address", "service \"x\" {}\n", []string{"usher.hcl:1:13:", "address"}},
		{"service without name", "service {\n address = \"10.0.0.1:1\"\n}\n", []string{"usher.hcl:1:9:", "service"}},
		{"service key", "service \"x\" {\n address = \"10.0.0.1:1\"\n capacty = 3\n}\n", []string{"usher.hcl:3:2:", "capacty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.src), "usher.hcl")
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestValidateFromFileHasLocation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usher.hcl")
	src := "node_name = \"a\"\n\n\n  dead_after = \"abc\"\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Build()
	want := path + `:4:3: dead_after: "abc" is not a duration`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Key != "dead_after" {
		t.Errorf("not a KeyError for dead_after: %#v", err)
	}

	// A flag that overrides the key takes the file's location away.
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"-dead-after", "xyz"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Build(); err == nil || err.Error() != `dead_after: "xyz" is not a duration` {
		t.Errorf("after flag: %v", err)
	}
}

func TestFlagsOverrideFile(t *testing.T) {
	c, err := ParseConfig([]byte("node_name = \"file\"\ncapacity = 5\njoin = [\"x:1\"]\nlog_json = false\n"), "usher.hcl")
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.RegisterFlags(fs)
	args := []string{"-node-name", "flag", "-join", "y:1", "-join", "z:1", "-log-json", "-require-ticket=true"}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if c.NodeName != "flag" || c.Capacity != 5 || !reflect.DeepEqual(c.Join, []string{"y:1", "z:1"}) || !c.LogJSON || !c.RequireTicket {
		t.Errorf("got %+v", c)
	}
	// Every key has a flag.
	for _, k := range c.keys() {
		if fs.Lookup(flagName(k.name)) == nil {
			t.Errorf("no flag for %s", k.name)
		}
	}
	if err := fs.Parse([]string{"-capacity", "many"}); err == nil {
		t.Error("-capacity many accepted")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		key, value string
		set        func(*Config)
	}{
		{"node_name", "", func(c *Config) { c.NodeName = "" }},
		{"node_name", "a/b", func(c *Config) { c.NodeName = "a/b" }},
		{"session_addr", "127.0.0.1:99999", func(c *Config) { c.SessionAddr = "127.0.0.1:99999" }},
		{"advertise_session_addr", "0.0.0.0:1", func(c *Config) { c.AdvertiseSessionAddr = "0.0.0.0:1" }},
		{"vip", "0.0.0.0:3478", func(c *Config) { c.VIP = "0.0.0.0:3478" }},
		{"vip_mode", "magic", func(c *Config) { c.VIPMode = "magic" }},
		{"interface", "", func(c *Config) { c.VIPMode = "netlink" }},
		{"vip_acquire_script", "", func(c *Config) { c.VIPMode = "script"; c.VIPReleaseScript = "x" }},
		{"http", "7480", func(c *Config) { c.HTTP = "7480" }},
		{"capacity", "0", func(c *Config) { c.Capacity = 0 }},
		{"policy", "fastest", func(c *Config) { c.Policy = "fastest" }},
		{"keepalive_interval", "abc", func(c *Config) { c.KeepaliveInterval = "abc" }},
		{"keepalive_interval", "-1s", func(c *Config) { c.KeepaliveInterval = "-1s" }},
		{"dead_after", "500ms", func(c *Config) { c.DeadAfter = "500ms" }},
		{"session_ttl", "1", func(c *Config) { c.SessionTTL = "1" }},
		{"ticket_ttl", "10ms", func(c *Config) { c.TicketTTL = "10ms" }},
		{"ticket_key", "(hidden)", func(c *Config) { c.TicketKey = "zz" }},
		{"ticket_key", "(hidden)", func(c *Config) { c.TicketKey = "abcd" }},
		{"policy_spread", "-2", func(c *Config) { c.PolicySpread = -2 }},
		{"stock_amplification", "0", func(c *Config) { c.StockAmplification = 0 }},
		{"max_sessions", "-1", func(c *Config) { c.MaxSessions = -1 }},
		{"max_sessions_per_source", "-5", func(c *Config) { c.MaxSessionsPerSource = -5 }},
		{"backups", "9", func(c *Config) { c.Backups = 9 }},
		{"probe_read_buffer", "-1", func(c *Config) { c.ProbeReadBuffer = -1 }},
		{"probe_read_buffer", "268435457", func(c *Config) { c.ProbeReadBuffer = 256<<20 + 1 }},
		{"log_level", "loud", func(c *Config) { c.LogLevel = "loud" }},
		{"profile", "slow", func(c *Config) { c.Profile = "slow" }},
		{"join", "", func(c *Config) { c.Join = []string{""} }},
		{"bootstrap_expect", "0", func(c *Config) { c.BootstrapExpect = 0 }},
		{"respond_from", "anyone", func(c *Config) { c.RespondFrom = "anyone" }},
		{"stock_binding", "ignore", func(c *Config) { c.StockBinding = "ignore" }},
		{"stock_binding", "", func(c *Config) { c.StockBinding = "" }},
		{"raft_leader_watch", "soon", func(c *Config) { c.RaftLeaderWatch = "soon" }},
		{"raft_leader_watch", "-1ms", func(c *Config) { c.RaftLeaderWatch = "-1ms" }},
		{"raft_leader_watch", "600ms", func(c *Config) { c.Profile = "lan"; c.RaftLeaderWatch = "600ms" }},
		{"raft_heartbeat_timeout", "0s", func(c *Config) { c.RaftHeartbeatTimeout = "0s" }},
		{"raft_lease_timeout", "2s", func(c *Config) { c.Profile = "lan"; c.RaftLeaseTimeout = "2s" }},
		{"raft_election_timeout", "100ms", func(c *Config) { c.Profile = "lan"; c.RaftElectionTimeout = "100ms" }},
		{"gossip_probe_timeout", "3s", func(c *Config) { c.Profile = "lan"; c.GossipProbeTimeout = "3s" }},
		{"gossip_interval", "soon", func(c *Config) { c.GossipInterval = "soon" }},
		{"gossip_suspicion_mult", "-1", func(c *Config) { c.GossipSuspicionMult = -1 }},
		{"verify_timeout", "0s", func(c *Config) { c.VerifyTimeout = "0s" }},
		{"overload_retry_after", "0s", func(c *Config) { c.OverloadRetryAfter = "0s" }},
		{"overload_retry_after", "2m", func(c *Config) { c.OverloadRetryAfter = "2m" }},
		{"overload_retry_after", "500us", func(c *Config) { c.OverloadRetryAfter = "500us" }},
		{"advertise", "0.0.0.0:7946", func(c *Config) { c.Advertise = "0.0.0.0:7946" }},
		{"advertise", "", func(c *Config) { c.Bind = "0.0.0.0:7946"; c.SessionAddr = "0.0.0.0:3479" }},
		{"probe_sockets", "65", func(c *Config) { c.ProbeSockets = 65 }},
		{"balancer_tcp", "yes", func(c *Config) { c.BalancerTCP = "yes" }},
		{"balancer_tcp", "0", func(c *Config) { c.BalancerTCP = "0" }},
		{"balancer_tcp", "65536", func(c *Config) { c.BalancerTCP = "65536" }},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			c := DefaultConfig()
			tt.set(&c)
			_, err := c.Build()
			if err == nil {
				t.Fatal("accepted")
			}
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("not a KeyError: %v", err)
			}
			if ke.Key != tt.key || ke.Value != tt.value {
				t.Errorf("got key %q value %q (%v), want %q %q", ke.Key, ke.Value, err, tt.key, tt.value)
			}
			if !strings.HasPrefix(err.Error(), tt.key+": ") {
				t.Errorf("error %q does not start with the key", err)
			}
		})
	}
}

// TestBuildReportsEveryProblemOnce checks that Build reports a value that
// does not parse and a problem Validate finds with another key together,
// and a key that does not parse once, not again as out of range.
func TestBuildReportsEveryProblemOnce(t *testing.T) {
	c := DefaultConfig()
	c.DeadAfter, c.Capacity, c.RaftHeartbeatTimeout = "abc", 0, "often"
	_, err := c.Build()
	want := []string{
		`dead_after: "abc" is not a duration`,
		`raft_heartbeat_timeout: "often" is not a duration`,
		`capacity: "0" must be at least 1`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("Build = %v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}

// TestValidateIsPure checks that Validate judges the built values alone:
// it reads no file (those a Runtime names may be gone since Build) and
// finds a problem set in the typed values, naming the key and its value as
// written.
func TestValidateIsPure(t *testing.T) {
	rt := buildThenRemove(t, testGossipKey, func(c *Config, path string) { c.EncryptKeyFile = path })
	if err := rt.Validate(); err != nil {
		t.Fatalf("Validate read a file again: %v", err)
	}

	tests := []struct {
		key, value string
		set        func(*Runtime)
	}{
		{"dead_after", "2s", func(r *Runtime) { r.Parsed.KeepaliveInterval = 3 * time.Second }},
		{"raft_bind", "0.0.0.0:7001", func(r *Runtime) { r.Parsed.RaftBind = netip.MustParseAddrPort("0.0.0.0:7001") }},
		{"raft_lease_timeout", "300ms", func(r *Runtime) { r.Parsed.Timing.RaftLease = r.Parsed.Timing.RaftHeartbeat }},
		{"http", "127.0.0.1:0", func(r *Runtime) { r.Parsed.apiLoopback, r.Parsed.APIWriteToken = false, "" }},
		{"api_tls", "true", func(r *Runtime) { r.Parsed.APITLS = true }},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			r := rt
			tt.set(&r)
			err := r.Validate()
			var ke *KeyError
			if !errors.As(err, &ke) || ke.Key != tt.key || ke.Value != tt.value {
				t.Errorf("Validate = %v, want a KeyError for %s %q", err, tt.key, tt.value)
			}
		})
	}
}

// TestBalancerTCP checks that balancer_tcp takes true, false and a port
// number, unquoted in the file, and is on by default on the balancer port.
func TestBalancerTCP(t *testing.T) {
	tests := []struct {
		src  string
		on   bool
		port uint16
	}{
		{"", true, 0},
		{"balancer_tcp = false\n", false, 0},
		{"balancer_tcp = true\n", true, 0},
		{"balancer_tcp = 443\n", true, 443},
		{"balancer_tcp = \"3480\"\n", true, 3480},
	}
	for _, tt := range tests {
		c, err := ParseConfig([]byte(tt.src), "usher.hcl")
		if err != nil {
			t.Fatalf("%q: %v", tt.src, err)
		}
		if _, err := c.Build(); err != nil {
			t.Fatalf("%q: %v", tt.src, err)
		}
		if on, port, ok := c.balancerTCP(); !ok || on != tt.on || port != tt.port {
			t.Errorf("%q: on %v port %d ok %v, want on %v port %d", tt.src, on, port, ok, tt.on, tt.port)
		}
	}
}

func TestAddressWithoutPort(t *testing.T) {
	tests := []struct {
		name string
		set  func(*Config)
		got  func(Parsed) netip.AddrPort
		want string
	}{
		{"bind", func(c *Config) { c.Bind = "127.0.0.7" }, func(p Parsed) netip.AddrPort { return p.Bind }, "127.0.0.7:7946"},
		{"raft_bind follows bind", func(c *Config) { c.Bind = "127.0.0.7" }, func(p Parsed) netip.AddrPort { return p.RaftBind }, "127.0.0.7:7947"},
		{"raft_bind", func(c *Config) { c.Bind = "127.0.0.7:8000"; c.RaftBind = "127.0.0.8" }, func(p Parsed) netip.AddrPort { return p.RaftBind }, "127.0.0.8:8001"},
		{"advertise takes bind's port", func(c *Config) { c.Bind = "0.0.0.0:8000"; c.Advertise = "127.0.0.9" }, func(p Parsed) netip.AddrPort { return p.Advertise }, "127.0.0.9:8000"},
		{"session_addr", func(c *Config) { c.SessionAddr = "127.0.0.1" }, func(p Parsed) netip.AddrPort { return p.SessionAddr }, "127.0.0.1:3479"},
		{"vip v6", func(c *Config) { c.VIP = "[::1]" }, func(p Parsed) netip.AddrPort { return p.VIP }, "[::1]:3478"},
		{"vip v6 bare", func(c *Config) { c.VIP = "::1" }, func(p Parsed) netip.AddrPort { return p.VIP }, "[::1]:3478"},
		{"port kept", func(c *Config) { c.VIP = "127.0.0.100:5000" }, func(p Parsed) netip.AddrPort { return p.VIP }, "127.0.0.100:5000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DevConfig()
			tt.set(&c)
			rt, err := c.Build()
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.got(rt.Parsed).String(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}
