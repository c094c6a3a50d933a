package node

import (
	"errors"
	"flag"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/usherlb/usher/node/loadsrc"
)

// TestParseServices reads two service blocks, one dual-stack with a
// check, and vip_service naming one of them.
func TestParseServices(t *testing.T) {
	src := `
vip_service = "turn"
service "turn" {
  address    = "198.18.0.7:3478"
  address_v6 = "[2001:db8::7]:3478"
  capacity   = 5000
  load {
    source     = "sockets"
    protocol   = "udp"
    port_range = "49152-65535"
    state      = "bound"
  }
  check "coturn" {
    type     = "stun"
    address  = "198.18.0.7:3478"
    interval = "250ms"
    timeout  = "200ms"
  }
}
service "game" {
  address  = "198.18.0.7:7777"
  capacity = 64
  load { source = "push" }
}
`
	c, err := ParseConfig([]byte(src), "farm.hcl")
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Build()
	if err != nil {
		t.Fatal(err)
	}
	svcs := r.Parsed.Services
	if len(svcs) != 2 || r.VIPService != "turn" {
		t.Fatalf("services %+v, vip_service %q", svcs, r.VIPService)
	}
	turn, game := svcs[0], svcs[1]
	if turn.Name != "turn" || turn.Addr != netip.MustParseAddrPort("198.18.0.7:3478") ||
		turn.Addr6 != netip.MustParseAddrPort("[2001:db8::7]:3478") || turn.Capacity != 5000 {
		t.Errorf("turn = %+v", turn)
	}
	if len(turn.Checks) != 1 || turn.Checks[0].Interval != 250*time.Millisecond {
		t.Errorf("turn checks = %+v", turn.Checks)
	}
	if turn.Load.Kind != "sockets" || turn.Load.PortLow != 49152 || turn.Load.PortHigh != 65535 {
		t.Errorf("turn load = %+v", turn.Load)
	}
	if game.Name != "game" || game.Capacity != 64 || game.Addr6.IsValid() || len(game.Checks) != 0 || game.Load.Kind != "push" {
		t.Errorf("game = %+v", game)
	}
}

// TestValidateServices checks that each bad service block, and a
// vip_service naming none, is refused under a key naming the service.
func TestValidateServices(t *testing.T) {
	svc := func(name, addr string, capacity int) ServiceConfig {
		return ServiceConfig{Name: name, Address: addr, Capacity: capacity, Load: &loadsrc.Spec{Source: "push"}}
	}
	tests := []struct {
		key, value string
		set        func(*Config)
	}{
		{"vip_service", "turn", func(c *Config) { c.VIPService = "turn" }},
		{"service.turn.address", "coturn:3478", func(c *Config) { c.Services = []ServiceConfig{svc("turn", "coturn:3478", 1)} }},
		{"service.turn.address", "0.0.0.0:3478", func(c *Config) { c.Services = []ServiceConfig{svc("turn", "0.0.0.0:3478", 1)} }},
		{"service.turn.capacity", "0", func(c *Config) { c.Services = []ServiceConfig{svc("turn", "198.18.0.7:3478", 0)} }},
		{"service.turn.address_v6", "198.18.0.8:3478", func(c *Config) {
			s := svc("turn", "198.18.0.7:3478", 1)
			s.AddressV6 = "198.18.0.8:3478"
			c.Services = []ServiceConfig{s}
		}},
		{"service.turn.address_v6", "[2001:db8::8]:3478", func(c *Config) {
			s := svc("turn", "[2001:db8::7]:3478", 1)
			s.AddressV6 = "[2001:db8::8]:3478"
			c.Services = []ServiceConfig{s}
		}},
		{"service", "turn", func(c *Config) {
			c.Services = []ServiceConfig{svc("turn", "198.18.0.7:3478", 1), svc("turn", "198.18.0.7:3479", 1)}
		}},
		{"service.turn.load", "", func(c *Config) {
			s := svc("turn", "198.18.0.7:3478", 1)
			s.Load = nil
			c.Services = []ServiceConfig{s}
		}},
		{"service.turn.load", "gossip", func(c *Config) {
			s := svc("turn", "198.18.0.7:3478", 1)
			s.Load.Source = "gossip"
			c.Services = []ServiceConfig{s}
		}},
		{"service", "default", func(c *Config) { c.Services = []ServiceConfig{svc("default", "198.18.0.7:3478", 1)} }},
		{"service", "tu rn", func(c *Config) { c.Services = []ServiceConfig{svc("tu rn", "198.18.0.7:3478", 1)} }},
		{"service", "9", func(c *Config) {
			for i := range 9 {
				c.Services = append(c.Services, svc(strings.Repeat("s", i+1), "198.18.0.7:3478", 1))
			}
		}},
		{"service", "8", func(c *Config) {
			for i := range 8 {
				c.Services = append(c.Services, svc(strings.Repeat("s", 31)+string(rune('a'+i)), "[2001:db8::7]:3478", 1))
			}
		}},
		{"service.turn.domain", "-turn.example", func(c *Config) { c.Services = []ServiceConfig{domainSvc("turn", "-turn.example")} }},
		{"service.turn.domain", "turn..example", func(c *Config) { c.Services = []ServiceConfig{domainSvc("turn", "turn..example")} }},
		{"service.turn.domain", "turn.example.", func(c *Config) { c.Services = []ServiceConfig{domainSvc("turn", "turn.example.")} }},
		{"service.turn.domain", "turn_1.example", func(c *Config) { c.Services = []ServiceConfig{domainSvc("turn", "turn_1.example")} }},
		{"service.turn.domain", longDomain + "x", func(c *Config) { c.Services = []ServiceConfig{domainSvc("turn", longDomain+"x")} }},
		{"service", "4", func(c *Config) {
			// Four that fit without domains (TestServiceDomainBudget).
			for i := range 4 {
				c.Services = append(c.Services, domainSvc("sss"+string(rune('a'+i)), longDomain))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			c := DefaultConfig()
			tt.set(&c)
			_, err := c.Build()
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("Build = %v, want a KeyError", err)
			}
			if ke.Key != tt.key || ke.Value != tt.value {
				t.Errorf("got key %q value %q (%v), want %q %q", ke.Key, ke.Value, err, tt.key, tt.value)
			}
		})
	}
}

// TestServiceFlag checks the -service flag: the short form of a service
// block, repeatable, replacing the file's blocks, with errors that say
// what is wrong.
func TestServiceFlag(t *testing.T) {
	c, err := ParseConfig([]byte("service \"old\" {\n address = \"198.18.0.1:1\"\n capacity = 1\n load { source = \"push\" }\n}\n"), "f.hcl")
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	c.RegisterFlags(fs)
	err = fs.Parse([]string{
		"-service", "turn=198.18.0.7:3478,load=relay-ports:61000-64999,check=stun",
		"-service", "game=198.18.0.7:7777,capacity=64,load=sessions,check=tcp",
		"-capacity", "500",
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Build()
	if err != nil {
		t.Fatal(err)
	}
	svcs := r.Parsed.Services
	if len(svcs) != 2 || svcs[0].Name != "turn" || svcs[1].Name != "game" {
		t.Fatalf("services %+v: want turn and game only", svcs)
	}
	turn, game := svcs[0], svcs[1]
	if turn.Capacity != 500 || turn.Load.Kind != "sockets" || turn.Load.PortLow != 61000 || !turn.Load.AnyState {
		t.Errorf("turn = %+v", turn)
	}
	if len(turn.Checks) != 1 || turn.Checks[0].Kind != "stun" || turn.Checks[0].Address != "198.18.0.7:3478" {
		t.Errorf("turn checks = %+v", turn.Checks)
	}
	if game.Capacity != 64 || game.Load.Kind != "sessions" || len(game.Checks) != 1 || game.Checks[0].Kind != "tcp" {
		t.Errorf("game = %+v", game)
	}
	for _, bad := range []string{"turn", "=1.2.3.4:5", "turn=198.18.0.7:1,capacity=x", "turn=198.18.0.7:1,load=magic", "turn=198.18.0.7:1,check=ping", "turn=198.18.0.7:1,colour=red"} {
		fs := flag.NewFlagSet("agent", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c := DefaultConfig()
		c.RegisterFlags(fs)
		if err := fs.Parse([]string{"-service", bad}); err == nil {
			t.Errorf("-service %q accepted", bad)
		}
	}
}

// longDomain is a valid domain of cluster.MaxServiceDomainLen bytes.
var longDomain = strings.Repeat("d", 60) + ".com"

// domainSvc is a service block with the domain name domain.
func domainSvc(name, domain string) ServiceConfig {
	return ServiceConfig{Name: name, Address: "198.18.0.7:3478", Capacity: 1,
		Domain: domain, Load: &loadsrc.Spec{Source: "push"}}
}

// TestServiceDomainBudget checks that the report budget counts the
// domains: four services that fit without them, and with short ones, do
// not with the longest, and a
// service's domain reaches its parsed form.
func TestServiceDomainBudget(t *testing.T) {
	build := func(domain string) error {
		c := DefaultConfig()
		for i := range 4 {
			c.Services = append(c.Services, domainSvc("sss"+string(rune('a'+i)), domain))
		}
		rt, err := c.Build()
		if err == nil && rt.Parsed.Services[3].Domain != domain {
			t.Errorf("parsed domain %q, want %q", rt.Parsed.Services[3].Domain, domain)
		}
		return err
	}
	if err := build(""); err != nil {
		t.Fatalf("four services without domains: %v", err)
	}
	if err := build("turn-7.example.com"); err != nil {
		t.Fatalf("four services with short domains: %v", err)
	}
	var ke *KeyError
	if err := build(longDomain); !errors.As(err, &ke) || ke.Key != "service" {
		t.Fatalf("four services with %d-byte domains: %v, want a KeyError on service", len(longDomain), err)
	}
}
