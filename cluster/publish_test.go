package cluster

import (
	"net"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
)

// TestReportTargetsSticky follows a member outside raft through the
// leader's state messages coming and pausing: it reports to the voters
// they named, goes on doing so while they pause, and before it ever knew
// a voter reports to the members whose reports say they are
// voter-eligible with raft state.
func TestReportTargetsSticky(t *testing.T) {
	c := &Cluster{cfg: Config{NodeName: "n9"}}
	c.voters.Store(&map[string]raft.ServerSuffrage{})
	c.members = newMemberTable(hclog.NewNullLogger(), func() []byte { return nil }, func(bool) {})
	for i, r := range []Report{{Voter: true, Bootstrapped: true}, {Voter: true}, {}, {}} {
		name := []string{"n1", "n2", "n3", "n9"}[i]
		b, _ := EncodeReport(r)
		c.members.NotifyJoin(&memberlist.Node{Name: name, Addr: net.IPv4(127, 0, 0, 1), Port: uint16(7000 + i), Meta: b})
	}
	names := func(ts []reportTarget) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.name)
		}
		slices.Sort(out)
		return out
	}
	var p publisher
	steps := []struct {
		what      string
		delivered *delivery
		want      []string
	}{
		{"no voter known yet", nil, []string{"n1"}},
		{"the leader names n2 and n3", &delivery{voters: []string{"n2", "n3", "n9"}, leader: "n2", at: Monotonic()}, []string{"n2", "n3"}},
		{"the state messages pause", &delivery{voters: []string{"n2", "n3", "n9"}, leader: "n2", at: Monotonic() - 10*stateResend}, []string{"n2", "n3"}},
	}
	for _, s := range steps {
		c.delivered.Store(s.delivered)
		if got := names(c.reportTargets(&p)); !slices.Equal(got, s.want) {
			t.Fatalf("%s: targets %v, want %v", s.what, got, s.want)
		}
	}
}

// TestNoVoterNoReportGossip starts two voter-eligible nodes that wait for
// a third to bootstrap: neither knows a voter, and neither gossips each of
// its reports for want of one (at a hundred members that flooded every
// member's memberlist queue); their metadata still carries what bootstrap
// decides from.
func TestNoVoterNoReportGossip(t *testing.T) {
	nodes := startFarmWith(t, 2, 3, nil, nil)
	for _, c := range nodes {
		eventually(t, 10*time.Second, c.Name()+" sees both members' reports", func() bool {
			n := 0
			for _, m := range c.Members() {
				if m.Status == Alive && m.Report.Voter && m.Report.RaftAddr != "" {
					n++
				}
			}
			return n == 2
		})
	}
	before := []Stats{nodes[0].Stats(), nodes[1].Stats()}
	time.Sleep(8 * DefaultPublishInterval)
	for i, c := range nodes {
		after := c.Stats()
		if g := after.ReportsGossiped - before[i].ReportsGossiped; g > 1 {
			t.Errorf("%s gossiped %d reports in 8 intervals without a voter to send them to", c.Name(), g)
		}
		if s := after.ReportsSent - before[i].ReportsSent; s != 0 {
			t.Errorf("%s sent %d reports with no voter", c.Name(), s)
		}
	}
}
