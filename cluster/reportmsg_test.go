package cluster

import (
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
)

// TestNotifyMsg checks which direct reports the member table takes: newer
// ones from alive members it knows, nothing else.
func TestNotifyMsg(t *testing.T) {
	changes := 0
	tb := newMemberTable(hclog.NewNullLogger(), func() []byte { return nil }, func(bool) { changes++ })
	now := time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)
	tb.now = func() time.Time { return now }
	meta, _ := EncodeReport(Report{Seq: 10, Sessions: 1})
	tb.NotifyJoin(&memberlist.Node{Name: "n1", Addr: net.IPv4(127, 0, 0, 1), Port: 7946, Meta: meta})
	tb.NotifyJoin(&memberlist.Node{Name: "gone", Addr: net.IPv4(127, 0, 0, 2), Port: 7946, Meta: meta})
	tb.NotifyLeave(&memberlist.Node{Name: "gone", Addr: net.IPv4(127, 0, 0, 2), Port: 7946, Meta: meta})

	msg := func(name string, seq uint64, sessions uint32) []byte {
		b, err := appendReportMsg(nil, name, Report{Seq: seq, Sessions: sessions})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name     string
		b        []byte
		member   string
		sessions uint32 // the member's sessions afterwards
		taken    bool
	}{
		{"newer", msg("n1", 11, 2), "n1", 2, true},
		{"same seq", msg("n1", 11, 3), "n1", 2, false},
		{"older", msg("n1", 5, 4), "n1", 2, false},
		{"unknown member", msg("n9", 99, 5), "n9", 0, false},
		{"dead member", msg("gone", 99, 6), "gone", 1, false},
		{"garbage", []byte{1, 2, 3}, "n1", 2, false},
		{"newest", msg("n1", 12, 7), "n1", 7, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = now.Add(time.Second)
			before := changes
			tb.NotifyMsg(tt.b)
			e, _ := tb.lookup(tt.member)
			if e.report.Sessions != tt.sessions {
				t.Fatalf("sessions = %d, want %d", e.report.Sessions, tt.sessions)
			}
			if taken := changes > before; taken != tt.taken {
				t.Fatalf("taken = %v, want %v", taken, tt.taken)
			}
			if tt.taken && !e.reportedAt.Equal(now) {
				t.Fatalf("reportedAt = %v, want %v", e.reportedAt, now)
			}
		})
	}
	// An older report in gossiped metadata does not undo a direct one.
	old, _ := EncodeReport(Report{Seq: 11, Sessions: 8})
	tb.NotifyUpdate(&memberlist.Node{Name: "n1", Addr: net.IPv4(127, 0, 0, 1), Port: 7946, Meta: old})
	if e, _ := tb.lookup("n1"); e.report.Seq != 12 {
		t.Fatalf("older metadata replaced the report: seq %d", e.report.Seq)
	}
}

// TestReportsGoToVoters runs three voters and two non-voters: every node's
// report reaches the voters every publish interval, straight, while the
// gossiped metadata changes only when membership fields do.
func TestReportsGoToVoters(t *testing.T) {
	nodes := startFarmWith(t, 5, 3, nil, func(c *Config) {
		if c.NodeName > "n3" {
			c.Voter = false
		}
	})
	leader := waitSingleServer(t, nodes, 15*time.Second)
	eventually(t, 10*time.Second, "three voters", func() bool { return len(leader.Stats().Voters) == 3 })
	n5 := nodeNamed(nodes, "n5")
	// Let the first membership changes settle, then count.
	time.Sleep(2 * DefaultPublishInterval)
	before := n5.Stats()
	for i := range 8 {
		n5.SetReport(Report{Sessions: uint32(10 + i), Capacity: 100})
		want := uint32(10 + i)
		for _, c := range nodes[:3] {
			eventually(t, 4*DefaultPublishInterval, "load of n5 on "+c.Name(), func() bool {
				m, ok := member(c, "n5")
				return ok && m.Report.Sessions == want
			})
		}
	}
	after := n5.Stats()
	sent, gossiped := after.ReportsSent-before.ReportsSent, after.ReportsGossiped-before.ReportsGossiped
	if sent == 0 || gossiped*4 > sent {
		t.Fatalf("n5 sent %d reports to voters and gossiped %d: want most reports sent, few gossiped", sent, gossiped)
	}
	// A membership field goes out in the metadata at once: the non-voter
	// n4 sees n5 draining within a few intervals.
	n5.SetReport(Report{Sessions: 1, Capacity: 100, Draining: true})
	eventually(t, 8*DefaultPublishInterval, "n5 draining on n4", func() bool {
		m, ok := member(nodeNamed(nodes, "n4"), "n5")
		return ok && m.Report.Draining
	})
}
