package cluster

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A farm that lost two of its three voters for good is recovered by hand:
// the operator writes a peers file naming the survivor, restarts it, and it
// leads alone, with the state it had.
func TestRecoverFromPeersFile(t *testing.T) {
	ledger := newVIPLedger(t)
	nodes := startFarm(t, 3, 3, ledger)
	leader := waitSingleServer(t, nodes, 15*time.Second)
	if err := leader.SetDrain("n2", true); err != nil {
		t.Fatal(err)
	}
	survivor := without(nodes, leader)[0]
	eventually(t, 5*time.Second, "drain replicated", func() bool { return survivor.State().Drained["n2"] })
	for _, c := range without(nodes, survivor) {
		c.crash()
	}
	eventually(t, 5*time.Second, "nobody serves without a quorum", func() bool { return len(servingNodes(nodes)) == 0 })

	cfg := survivor.cfg
	cfg.BindAddr = survivor.GossipAddr()
	cfg.AdvertiseAddr = netip.AddrPort{}
	cfg.RaftBindAddr = netip.MustParseAddrPort(survivor.RaftAddr())
	cfg.Join = nil
	survivor.crash()

	peers, _ := json.Marshal([]peerEntry{{ID: cfg.NodeName, Address: cfg.RaftBindAddr.String()}})
	path := filepath.Join(cfg.DataDir, "raft", PeersFile)
	if err := os.WriteFile(path, peers, 0o600); err != nil {
		t.Fatal(err)
	}
	recovered := startNode(t, cfg)
	eventually(t, 10*time.Second, "the survivor serves alone", func() bool {
		_, ok := recovered.Serving()
		return ok
	})
	if !recovered.State().Drained["n2"] {
		t.Error("the recovered node forgot the farm's state")
	}
	if _, err := os.Stat(path + ".applied"); err != nil {
		t.Errorf("peers file not marked applied: %v", err)
	}
}

func TestReadPeersFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, body, err string
		servers         int
	}{
		{"two voters", `[{"id":"a","address":"10.0.0.1:7947"},{"id":"b","address":"10.0.0.2:7947"}]`, "", 2},
		{"with a non-voter", `[{"id":"a","address":"10.0.0.1:7947"},{"id":"b","address":"10.0.0.2:7947","non_voter":true}]`, "", 2},
		{"not json", `{`, "unexpected end", 0},
		{"no address", `[{"id":"a"}]`, "needs both id and address", 0},
		{"no voter", `[{"id":"a","address":"x:1","non_voter":true}]`, "no voter", 0},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, tt.name)
		os.WriteFile(path, []byte(tt.body), 0o600)
		cfg, ok, err := readPeersFile(path)
		switch {
		case tt.err == "" && (err != nil || !ok || len(cfg.Servers) != tt.servers):
			t.Errorf("%s: %v %v %+v", tt.name, ok, err, cfg)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.err)
		}
	}
	if _, ok, err := readPeersFile(filepath.Join(dir, "missing")); ok || err != nil {
		t.Errorf("missing file: %v %v", ok, err)
	}
}
