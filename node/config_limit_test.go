package node

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/internal/srclimit"
	"github.com/usherlb/usher/wire"
)

// TestSourceLimits checks the limits the source_limit keys build: the
// defaults, the session endpoint's following capacity and
// keepalive_interval, explicit values, and "off".
func TestSourceLimits(t *testing.T) {
	tests := []struct {
		name              string
		set               func(*Config)
		balancer, session srclimit.Config
	}{
		{"defaults", func(*Config) {},
			srclimit.Config{Rate: 400, Burst: 2000, IPv4Bits: 24, IPv6Bits: 56},
			srclimit.Config{Rate: 2000, Burst: 4000, IPv4Bits: 24, IPv6Bits: 56}},
		{"session limit follows capacity and keepalive_interval", func(c *Config) { c.Capacity = 5000; c.KeepaliveInterval = "500ms"; c.DeadAfter = "2s" },
			srclimit.Config{Rate: 400, Burst: 2000, IPv4Bits: 24, IPv6Bits: 56},
			srclimit.Config{Rate: 20000, Burst: 40000, IPv4Bits: 24, IPv6Bits: 56}},
		{"explicit", func(c *Config) {
			c.SourceLimitRate, c.SourceLimitBurst, c.SessionLimitRate, c.SessionLimitBurst = 7, 8, 9, 10
			c.SourceLimitIPv4Prefix, c.SourceLimitIPv6Prefix = 32, 64
		},
			srclimit.Config{Rate: 7, Burst: 8, IPv4Bits: 32, IPv6Bits: 64},
			srclimit.Config{Rate: 9, Burst: 10, IPv4Bits: 32, IPv6Bits: 64}},
		{"off", func(c *Config) { c.SourceLimit = "off" }, srclimit.Config{}, srclimit.Config{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.set(&c)
			r, err := c.Build()
			if err != nil {
				t.Fatal(err)
			}
			if b, s := r.sourceLimits(); b != tt.balancer || s != tt.session {
				t.Errorf("limits %+v and %+v, want %+v and %+v", b, s, tt.balancer, tt.session)
			}
		})
	}
}

// TestValidateSourceLimits checks that each bad source_limit value is
// refused, naming its key and value.
func TestValidateSourceLimits(t *testing.T) {
	tests := []struct {
		key, value string
		set        func(*Config)
	}{
		{"source_limit", "maybe", func(c *Config) { c.SourceLimit = "maybe" }},
		{"source_limit_rate", "0", func(c *Config) { c.SourceLimitRate = 0 }},
		{"source_limit_burst", "0", func(c *Config) { c.SourceLimitBurst = 0 }},
		{"session_limit_rate", "-1", func(c *Config) { c.SessionLimitRate = -1 }},
		{"session_limit_burst", "-1", func(c *Config) { c.SessionLimitBurst = -1 }},
		{"session_refusal_rate", "-1", func(c *Config) { c.SessionRefusalRate = -1 }},
		{"source_limit_ipv4_prefix", "33", func(c *Config) { c.SourceLimitIPv4Prefix = 33 }},
		{"source_limit_ipv6_prefix", "0", func(c *Config) { c.SourceLimitIPv6Prefix = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			c := DefaultConfig()
			tt.set(&c)
			_, err := c.Build()
			var ke *KeyError
			if !errors.As(err, &ke) || ke.Key != tt.key || ke.Value != tt.value {
				t.Errorf("Build = %v, want a KeyError for %s %q", err, tt.key, tt.value)
			}
		})
	}
}

// TestAgentSourceLimits checks that the source_limit keys reach the agent's
// balancer address and session endpoint: with a burst of 3 and a rate of
// 1, a fourth stock Binding to each in a row is dropped as rate_limited.
func TestAgentSourceLimits(t *testing.T) {
	c := testConfig()
	c.SourceLimitRate, c.SourceLimitBurst = 1, 3
	c.SessionLimitRate, c.SessionLimitBurst = 1, 3
	// One probe socket, which keeps the whole limit (several share it).
	c.ProbeSockets = 1
	a := startAgent(t, c)
	cl := listenUDP(t, "127.0.0.1:0")
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw
	for _, to := range []netip.AddrPort{a.VIPAddr(), a.SessionAddr()} {
		for range 3 {
			roundTrip(t, cl, to, req)
		}
		if _, err := cl.WriteToUDPAddrPort(req, to); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool {
		st := a.Stats()
		return st.Responder.Drops["rate_limited"] == 1 && st.Endpoint.Drops["rate_limited"] == 1
	})
}

// TestAgentRefusalLimit checks that session_refusal_rate reaches the
// session endpoint: with room for 3 error answers, the fourth ticketless
// keepalive is dropped as refusal_limit.
func TestAgentRefusalLimit(t *testing.T) {
	c := testConfig() // tickets required
	c.SessionRefusalRate = 3
	a := startAgent(t, c)
	cl := listenUDP(t, "127.0.0.1:0")
	for i := range 3 {
		if r := roundTrip(t, cl, a.SessionAddr(), keepalive(t, wire.SessionID{5, byte(i)}, nil, wire.KeepaliveSize)); r.Code != stun.CodeUnauthorized {
			t.Fatalf("ticketless keepalive %d: %+v, want a 401", i, r)
		}
	}
	if _, err := cl.WriteToUDPAddrPort(keepalive(t, wire.SessionID{5, 9}, nil, wire.KeepaliveSize), a.SessionAddr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return a.Stats().Endpoint.Drops["refusal_limit"] == 1 })
}
