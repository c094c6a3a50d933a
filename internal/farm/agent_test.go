package farm

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestAgentSpecArgs checks the defaults an empty field stands for, the
// optional flags, that an agent does not join itself, and that Extra comes
// last, where it overrides.
func TestAgentSpecArgs(t *testing.T) {
	ap := netip.MustParseAddrPort
	base := AgentSpec{
		Addrs:   Addrs{Name: "n1", Gossip: ap("10.0.0.1:7946"), Session: ap("10.0.0.1:3479"), HTTP: ap("10.0.0.1:7480")},
		VIP:     ap("10.0.0.100:3478"),
		Expect:  3,
		DataDir: "/d/n1",
		Seeds:   []netip.AddrPort{ap("10.0.0.1:7946"), ap("10.0.0.2:7946")},
	}
	netlink := base
	netlink.VIPMode, netlink.Interface, netlink.Profile, netlink.LogLevel = "netlink", "eth0", "rapid", "debug"
	netlink.APIToken, netlink.Extra = "tok", []string{"-profile", "lan"}
	tests := []struct {
		name string
		spec AgentSpec
		want string
	}{
		{"defaults", base, "agent -node n1 -bind 10.0.0.1:7946 -session-addr 10.0.0.1:3479 -http 10.0.0.1:7480 " +
			"-vip 10.0.0.100:3478 -vip-mode bind -bootstrap-expect 3 -data-dir /d/n1 -profile fast -log-level info " +
			"-join 10.0.0.2:7946"},
		{"netlink", netlink, "agent -node n1 -bind 10.0.0.1:7946 -session-addr 10.0.0.1:3479 -http 10.0.0.1:7480 " +
			"-vip 10.0.0.100:3478 -vip-mode netlink -bootstrap-expect 3 -data-dir /d/n1 -profile rapid -log-level debug " +
			"-interface eth0 -api-token tok -join 10.0.0.2:7946 -profile lan"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(tt.spec.Args(), " "); got != tt.want {
				t.Errorf("Args:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
	if slices.Contains(base.Args(), "-api-token") {
		t.Error("an empty token became a flag")
	}
}
