package farm

import (
	"net/netip"
	"strconv"
)

// Addrs names an agent and the addresses it serves.
type Addrs struct {
	Name    string
	Gossip  netip.AddrPort // memberlist; Raft uses the next port
	Session netip.AddrPort
	HTTP    netip.AddrPort
}

// AgentSpec is an agent's command line: where it listens, the balancer
// address and how it holds it, how its cluster forms, and the caller's own
// flags. The zero values of VIPMode, Profile and LogLevel stand for bind,
// fast and info.
type AgentSpec struct {
	Addrs
	VIP       netip.AddrPort
	VIPMode   string // bind or netlink
	Interface string // the VIP's interface (vip mode netlink); none when empty
	Profile   string
	Expect    int // bootstrap_expect
	DataDir   string
	// Seeds are the gossip addresses the agent joins; its own is left out.
	Seeds    []netip.AddrPort
	LogLevel string
	APIToken string // none when empty
	// Extra follows every other flag, so that it may override one.
	Extra []string
}

// Args returns the agent's command line, "agent" first.
func (s AgentSpec) Args() []string {
	args := []string{"agent",
		"-node", s.Name,
		"-bind", s.Gossip.String(),
		"-session-addr", s.Session.String(),
		"-http", s.HTTP.String(),
		"-vip", s.VIP.String(),
		"-vip-mode", or(s.VIPMode, "bind"),
		"-bootstrap-expect", strconv.Itoa(s.Expect),
		"-data-dir", s.DataDir,
		"-profile", or(s.Profile, "fast"),
		"-log-level", or(s.LogLevel, "info"),
	}
	if s.Interface != "" {
		args = append(args, "-interface", s.Interface)
	}
	if s.APIToken != "" {
		args = append(args, "-api-token", s.APIToken)
	}
	for _, seed := range s.Seeds {
		if seed != s.Gossip {
			args = append(args, "-join", seed.String())
		}
	}
	return append(args, s.Extra...)
}

// or returns v, or def when v is empty.
func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
