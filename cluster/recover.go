package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// PeersFile is the name, under DataDir/raft, of the file an operator writes
// to recover a farm that lost its voters' quorum for good. It lists the
// voters to carry on with:
//
//	[{"id": "n1", "address": "10.0.0.11:7947"}, {"id": "n2", "address": "10.0.0.12:7947"}]
//
// At start an agent that finds it forces its Raft configuration to that list
// (raft.RecoverCluster), then renames the file to PeersFile + ".applied".
// Every surviving voter must get the same file before any of them starts.
const PeersFile = "peers.json"

// peerEntry is one voter of a peers file.
type peerEntry struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	NonVoter bool   `json:"non_voter,omitempty"`
}

// readPeersFile returns the configuration in path, or ok false when there
// is no such file.
func readPeersFile(path string) (cfg raft.Configuration, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, false, nil
	}
	if err != nil {
		return cfg, false, err
	}
	var peers []peerEntry
	if err := json.Unmarshal(b, &peers); err != nil {
		return cfg, false, fmt.Errorf("%s: %w", path, err)
	}
	voters := 0
	for i, p := range peers {
		if p.ID == "" || p.Address == "" {
			return cfg, false, fmt.Errorf("%s: entry %d needs both id and address", path, i)
		}
		s := raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address), Suffrage: raft.Voter}
		if p.NonVoter {
			s.Suffrage = raft.Nonvoter
		} else {
			voters++
		}
		cfg.Servers = append(cfg.Servers, s)
	}
	if voters == 0 {
		return cfg, false, fmt.Errorf("%s: no voter listed", path)
	}
	return cfg, true, nil
}

// recoverFromPeersFile applies DataDir/raft/peers.json if an operator wrote
// one (see PeersFile).
func (c *Cluster) recoverFromPeersFile(dir string, rc *raft.Config, logs raft.LogStore, stable raft.StableStore, snaps raft.SnapshotStore, trans raft.Transport) error {
	path := filepath.Join(dir, PeersFile)
	cfg, ok, err := readPeersFile(path)
	if err != nil || !ok {
		return err
	}
	c.logger.Warn("recovering raft from a peers file: the configuration is forced to its voters", "file", path, "servers", len(cfg.Servers))
	if err := raft.RecoverCluster(rc, c.fsm, logs, stable, snaps, trans, cfg); err != nil {
		return fmt.Errorf("recover from %s: %w", path, err)
	}
	c.bootstrapped.Store(true)
	c.verified.Store(true)
	return os.Rename(path, path+".applied")
}
