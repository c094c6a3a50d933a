package farm

import (
	"cmp"
	"errors"
	"flag"
	"io"
	"net/netip"
	"strconv"

	"github.com/usherlb/usher/node"
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
		"-vip-mode", cmp.Or(s.VIPMode, "bind"),
		"-bootstrap-expect", strconv.Itoa(s.Expect),
		"-data-dir", s.DataDir,
		"-profile", cmp.Or(s.Profile, "fast"),
		"-log-level", cmp.Or(s.LogLevel, "info"),
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

// CheckArgs runs an agent command line (as Args returns it, "agent"
// first) through the agent's own configuration checks, the flags and
// node.Config.Build, without starting anything: for credentials, that the
// files load, the key file is private, the certificate names the node in
// the farm of its label, and the gossip key is one memberlist takes.
func CheckArgs(args []string) error {
	if len(args) == 0 || args[0] != "agent" {
		return errors.New("not an agent command line")
	}
	cfg := node.DefaultConfig()
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.RegisterFlags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	_, err := cfg.Build()
	return err
}
