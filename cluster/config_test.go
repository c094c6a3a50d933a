package cluster

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		return Config{
			NodeName:        "node-a",
			BindAddr:        netip.MustParseAddrPort("10.0.0.1:7946"),
			RaftBindAddr:    netip.MustParseAddrPort("10.0.0.1:8300"),
			Join:            []string{"10.0.0.2:7946", "seed.example:7946"},
			DataDir:         "/var/lib/usher",
			BootstrapExpect: 3,
			Voter:           true,
		}
	}
	fast, _ := Profile(ProfileFast)
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string // substring of the error; empty means valid
	}{
		{"valid", func(*Config) {}, ""},
		{"valid fast timing", func(c *Config) { c.Timing = fast }, ""},
		{"valid key", func(c *Config) { c.EncryptKey = make([]byte, 24) }, ""},
		{"valid unspecified bind with advertise", func(c *Config) {
			c.BindAddr = netip.MustParseAddrPort("0.0.0.0:7946")
			c.AdvertiseAddr = netip.MustParseAddrPort("10.0.0.1:7946")
		}, ""},
		{"no name", func(c *Config) { c.NodeName = "" }, "node_name: must be set"},
		{"name with space", func(c *Config) { c.NodeName = "a b" }, `node_name: "a b"`},
		{"long name", func(c *Config) { c.NodeName = strings.Repeat("n", 129) }, "node_name:"},
		{"no bind", func(c *Config) { c.BindAddr = netip.AddrPort{} }, "bind_addr:"},
		{"unspecified bind", func(c *Config) { c.BindAddr = netip.MustParseAddrPort("0.0.0.0:7946") }, "advertise_addr: must be set when bind_addr 0.0.0.0:7946"},
		{"unspecified advertise", func(c *Config) { c.AdvertiseAddr = netip.MustParseAddrPort("0.0.0.0:7946") }, "advertise_addr: 0.0.0.0:7946"},
		{"no raft bind", func(c *Config) { c.RaftBindAddr = netip.AddrPort{} }, "raft_bind_addr:"},
		{"raft unspecified port 0", func(c *Config) { c.RaftBindAddr = netip.MustParseAddrPort("[::]:0") }, "raft_bind_addr: [::]:0: must be this node's own address"},
		{"raft unspecified v4", func(c *Config) { c.RaftBindAddr = netip.MustParseAddrPort("0.0.0.0:8300") }, "raft_bind_addr: 0.0.0.0:8300: must be"},
		{"raft unspecified with advertise", func(c *Config) {
			c.RaftBindAddr = netip.MustParseAddrPort("[::]:8300")
			c.RaftAdvertiseAddr = netip.MustParseAddrPort("10.0.0.1:8300")
		}, "raft_bind_addr: [::]:8300: must be"},
		{"raft advertise port 0", func(c *Config) { c.RaftAdvertiseAddr = netip.MustParseAddrPort("10.0.0.1:0") }, "raft_advertise_addr: 10.0.0.1:0"},
		{"bad seed", func(c *Config) { c.Join = []string{"10.0.0.2"} }, `join: "10.0.0.2"`},
		{"negative retry", func(c *Config) { c.RetryJoinInterval = -time.Second }, "retry_join_interval: -1s"},
		{"long label", func(c *Config) { c.Label = strings.Repeat("l", 256) }, "label:"},
		{"bad key", func(c *Config) { c.EncryptKey = make([]byte, 15) }, "encrypt_key: 15 bytes is not 16, 24 or 32"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "data_dir: must be set"},
		{"expect 2", func(c *Config) { c.BootstrapExpect = 2 }, "bootstrap_expect: 2 is not 1, 3 or 5"},
		{"expect 0", func(c *Config) { c.BootstrapExpect = 0 }, "bootstrap_expect: 0 is not 1, 3 or 5"},
		{"lease not below heartbeat", func(c *Config) {
			c.Timing = fast
			c.Timing.RaftLease = fast.RaftHeartbeat
		}, "timing.raft_lease: 300ms is not below raft_heartbeat 300ms"},
		{"election below heartbeat", func(c *Config) {
			c.Timing = fast
			c.Timing.RaftElection = 100 * time.Millisecond
		}, "timing.raft_election: 100ms"},
		{"tiny heartbeat", func(c *Config) {
			c.Timing = fast
			c.Timing.RaftHeartbeat = time.Millisecond
		}, "timing.raft_heartbeat: 1ms is below the minimum 10ms"},
		{"probe timeout above interval", func(c *Config) {
			c.Timing = fast
			c.Timing.ProbeTimeout = time.Second
		}, "timing.probe_timeout: 1s"},
		{"suspicion mult", func(c *Config) {
			c.Timing = fast
			c.Timing.SuspicionMult = 0
		}, "timing.suspicion_mult: 0"},
		{"no publish interval", func(c *Config) {
			c.Timing = fast
			c.Timing.PublishInterval = 0
		}, "timing.publish_interval: 0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mutate(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("no error, want %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{BindAddr: netip.MustParseAddrPort("10.0.0.1:7946")}.withDefaults()
	lan, _ := Profile(ProfileLAN)
	if c.Timing != lan || c.RetryJoinInterval != DefaultRetryJoinInterval || c.Logger == nil || c.AdvertiseAddr != c.BindAddr {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestProfiles(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		heartbeat, lease, pub time.Duration
		probe                 time.Duration
	}{
		{ProfileLAN, time.Second, 500 * time.Millisecond, 250 * time.Millisecond, time.Second},
		{ProfileFast, 300 * time.Millisecond, 150 * time.Millisecond, 250 * time.Millisecond, 200 * time.Millisecond},
		{ProfileRapid, 100 * time.Millisecond, 50 * time.Millisecond, 250 * time.Millisecond, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Profile(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if p.RaftHeartbeat != tc.heartbeat || p.RaftLease != tc.lease || p.PublishInterval != tc.pub || p.ProbeInterval != tc.probe {
				t.Errorf("profile %s: %+v", tc.name, p)
			}
			if err := p.validate(); err != nil {
				t.Errorf("profile %s invalid: %v", tc.name, err)
			}
		})
	}
	if _, err := Profile("turbo"); err == nil || !strings.Contains(err.Error(), `"turbo"`) {
		t.Errorf("Profile(turbo): %v", err)
	}
}
