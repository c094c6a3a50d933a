package cluster

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// testKeys returns n distinct gossip keys of 32 bytes.
func testKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = bytes.Repeat([]byte{byte(0x40 + i)}, 32)
	}
	return keys
}

// TestKeyringOps applies keyring commands to a state machine in turn and
// checks each outcome: the validation rules, and the keyring after each
// accepted change.
func TestKeyringOps(t *testing.T) {
	k := testKeys(10)
	seed := &Keyring{Keys: [][]byte{k[0]}}
	f := newFSM(nil)
	for _, tt := range []struct {
		name    string
		cmd     command
		err     string // empty: accepted
		keys    [][]byte
		primary int
	}{
		{"no seed on an empty keyring", command{Op: opKeyringInstall, Key: k[1]}, "gossip encryption is off", nil, 0},
		{"bad seed", command{Op: opKeyringInstall, Key: k[1], Seed: &Keyring{Keys: [][]byte{k[0][:5]}}}, "5 bytes", nil, 0},
		{"install, seeded", command{Op: opKeyringInstall, Key: k[1], Seed: seed}, "", [][]byte{k[0], k[1]}, 0},
		{"a seed is ignored once the farm has a keyring", command{Op: opKeyringInstall, Key: k[2], Seed: &Keyring{Keys: [][]byte{k[9]}}}, "", [][]byte{k[0], k[1], k[2]}, 0},
		{"install twice", command{Op: opKeyringInstall, Key: k[1]}, "", [][]byte{k[0], k[1], k[2]}, 0},
		{"key of 15 bytes", command{Op: opKeyringInstall, Key: k[3][:15]}, "15 bytes is not 16, 24 or 32", [][]byte{k[0], k[1], k[2]}, 0},
		{"key of 24 bytes", command{Op: opKeyringInstall, Key: k[3][:24]}, "", [][]byte{k[0], k[1], k[2], k[3][:24]}, 0},
		{"use one not installed", command{Op: opKeyringUse, Key: k[4]}, "is not installed", [][]byte{k[0], k[1], k[2], k[3][:24]}, 0},
		{"use", command{Op: opKeyringUse, Key: k[2]}, "", [][]byte{k[0], k[1], k[2], k[3][:24]}, 2},
		{"remove the primary", command{Op: opKeyringRemove, Key: k[2]}, "is the primary key", [][]byte{k[0], k[1], k[2], k[3][:24]}, 2},
		{"remove one not installed", command{Op: opKeyringRemove, Key: k[5]}, "is not installed", [][]byte{k[0], k[1], k[2], k[3][:24]}, 2},
		{"remove before the primary", command{Op: opKeyringRemove, Key: k[0]}, "", [][]byte{k[1], k[2], k[3][:24]}, 1},
		{"fill", command{Op: opKeyringInstall, Key: k[4]}, "", [][]byte{k[1], k[2], k[3][:24], k[4]}, 1},
		{"fill", command{Op: opKeyringInstall, Key: k[5]}, "", [][]byte{k[1], k[2], k[3][:24], k[4], k[5]}, 1},
		{"fill", command{Op: opKeyringInstall, Key: k[6]}, "", [][]byte{k[1], k[2], k[3][:24], k[4], k[5], k[6]}, 1},
		{"fill", command{Op: opKeyringInstall, Key: k[7]}, "", [][]byte{k[1], k[2], k[3][:24], k[4], k[5], k[6], k[7]}, 1},
		{"eighth key", command{Op: opKeyringInstall, Key: k[8]}, "", [][]byte{k[1], k[2], k[3][:24], k[4], k[5], k[6], k[7], k[8]}, 1},
		{"ninth key", command{Op: opKeyringInstall, Key: k[9]}, "holds 8 keys already", [][]byte{k[1], k[2], k[3][:24], k[4], k[5], k[6], k[7], k[8]}, 1},
		{"remove after the primary", command{Op: opKeyringRemove, Key: k[8]}, "", [][]byte{k[1], k[2], k[3][:24], k[4], k[5], k[6], k[7]}, 1},
	} {
		before := f.state.Load().Keyring
		res := applyCmd(t, f, tt.cmd)
		err, _ := res.(error)
		switch {
		case tt.err == "" && err != nil:
			t.Fatalf("%s: %v", tt.name, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrKeyring)):
			t.Fatalf("%s: err %v, want ErrKeyring %q", tt.name, err, tt.err)
		}
		kr := f.state.Load().Keyring
		if !kr.Equal(Keyring{Keys: tt.keys, Primary: tt.primary}) {
			t.Fatalf("%s: %v, want %v", tt.name, kr, Keyring{Keys: tt.keys, Primary: tt.primary})
		}
		if err != nil && !kr.Equal(before) {
			t.Fatalf("%s: a refused change changed the keyring", tt.name)
		}
		if err != nil {
			for _, key := range k {
				if strings.Contains(err.Error(), hex.EncodeToString(key[:8])) || strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(key)[:8]) {
					t.Fatalf("%s: the error shows a key: %v", tt.name, err)
				}
			}
		}
	}
	if s := fmt.Sprintf("%v %+v %#v", f.state.Load().Keyring, f.state.Load().Keyring, f.state.Load().Keyring); strings.Contains(s, "[65 65") || strings.Contains(s, hex.EncodeToString(k[1][:8])) {
		t.Errorf("a formatted keyring shows a key: %s", s)
	}
}

// localKeys returns the keys c's memberlist uses, its primary first.
func localKeys(c *Cluster) [][]byte { return c.LocalKeyring().Keys }

// TestKeyringRotation rotates the gossip key of a three-voter farm the way
// an operator does (install the new key, use it, remove the old one) and
// checks that every node follows each step while the members stay alive to
// each other, that a node holding only the removed key can no longer join
// while one holding the new key can, and that no key shows in the log.
func TestKeyringRotation(t *testing.T) {
	k := testKeys(2)
	old, next := k[0], k[1]
	var logs logBuffer
	nodes := startFarmWith(t, 3, 3, nil, func(c *Config) {
		c.EncryptKey = old
		c.Logger = hclog.New(&hclog.LoggerOptions{Name: c.NodeName, Level: hclog.Trace, Output: &logs})
	})
	leader := waitSingleServer(t, nodes, 20*time.Second)
	allAlive(t, nodes, 3)
	for _, c := range without(nodes, leader) {
		var nl *NotLeaderError
		if err := c.InstallKey(next); !errors.As(err, &nl) {
			t.Fatalf("InstallKey on follower %s: %v, want a NotLeaderError", c.Name(), err)
		}
	}

	steps := []struct {
		what string
		do   func([]byte) error
		key  []byte
		want [][]byte // every node's memberlist keys, the primary first
	}{
		{"install the new key", leader.InstallKey, next, [][]byte{old, next}},
		{"use the new key", leader.UseKey, next, [][]byte{next, old}},
		{"remove the old key", leader.RemoveKey, old, [][]byte{next}},
	}
	for _, st := range steps {
		if err := st.do(st.key); err != nil {
			t.Fatalf("%s: %v", st.what, err)
		}
		eventually(t, 5*time.Second, "every node to "+st.what, func() bool {
			for _, c := range nodes {
				got := localKeys(c)
				if len(got) != len(st.want) || !bytes.Equal(got[0], st.want[0]) {
					return false
				}
				for _, key := range st.want {
					if (Keyring{Keys: got}).index(key) < 0 {
						return false
					}
				}
			}
			return true
		})
		allAlive(t, nodes, 3)
	}
	if err := leader.RemoveKey(next); !errors.Is(err, ErrKeyring) {
		t.Errorf("removing the primary key: %v, want ErrKeyring", err)
	}
	// A few failure-detection rounds on the new key alone: nobody is
	// suspected or declared dead.
	time.Sleep(10 * nodes[0].timing.ProbeInterval)
	allAlive(t, nodes, 3)

	stale := testConfig(t, "stale", nil)
	stale.Voter, stale.EncryptKey, stale.Join = false, old, []string{nodes[0].GossipAddr().String()}
	staleNode := startNode(t, stale)
	fresh := testConfig(t, "fresh", nil)
	fresh.Voter, fresh.EncryptKey, fresh.Join = false, next, []string{nodes[0].GossipAddr().String()}
	startNode(t, fresh)
	eventually(t, 10*time.Second, "the node with the new key to join", func() bool {
		m, ok := member(nodes[0], "fresh")
		return ok && m.Status == Alive
	})
	if _, ok := member(nodes[0], "stale"); ok {
		t.Error("a node with only the removed key joined")
	}
	if ms := staleNode.Members(); len(ms) != 1 {
		t.Errorf("the node with only the removed key sees %d members", len(ms))
	}

	out := logs.String()
	for _, key := range k {
		for _, enc := range []string{hex.EncodeToString(key[:8]), base64.StdEncoding.EncodeToString(key)[:12], fmt.Sprint(key[:8])[1:]} {
			if strings.Contains(out, enc) {
				t.Fatalf("the log shows a gossip key (%s)", enc)
			}
		}
	}
	if !strings.Contains(out, "applied the farm's gossip keyring") {
		t.Error("nothing logged about the keyring: the check proves nothing")
	}
}

// allAlive fails the test unless every node sees n members, all alive.
func allAlive(t *testing.T, nodes []*Cluster, n int) {
	t.Helper()
	eventually(t, 5*time.Second, fmt.Sprintf("%d members alive everywhere", n), func() bool {
		for _, c := range nodes {
			alive := 0
			for _, m := range c.Members() {
				if m.Status == Alive {
					alive++
				}
			}
			if alive != n {
				return false
			}
		}
		return true
	})
	for _, c := range nodes {
		for _, m := range c.Members() {
			if m.Status != Alive {
				t.Errorf("%s sees %s %v", c.Name(), m.Name, m.Status)
			}
		}
	}
}

// TestKeyringReachesMembersOutsideRaft rotates the gossip key of a TLS farm
// with a member outside the Raft configuration, which learns the farm's
// keyring only from the leader's state messages (sealed to its key): it
// must follow every step and stay a live member on the new key alone.
func TestKeyringReachesMembersOutsideRaft(t *testing.T) {
	k := testKeys(2)
	old, next := k[0], k[1]
	p := newTestPKI(t, testFarm)
	nodes := startFarmWith(t, 3, 3, nil, func(c *Config) {
		p.withTLS(c)
		c.EncryptKey = old
	})
	leader := waitSingleServer(t, nodes, 20*time.Second)
	cfg := testConfig(t, "n4", nil)
	cfg.Voter, cfg.EncryptKey, cfg.Join = false, old, []string{nodes[0].GossipAddr().String()}
	p.withTLS(&cfg)
	outside := startNode(t, cfg)
	all := append(slices.Clone(nodes), outside)
	allAlive(t, all, 4)

	for _, step := range []struct {
		what string
		do   func([]byte) error
		key  []byte
		want [][]byte // the outside member's keys, the primary first
	}{
		{"install the new key", leader.InstallKey, next, [][]byte{old, next}},
		{"use the new key", leader.UseKey, next, [][]byte{next, old}},
		{"remove the old key", leader.RemoveKey, old, [][]byte{next}},
	} {
		if err := step.do(step.key); err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		eventually(t, 10*time.Second, "the member outside raft to "+step.what, func() bool {
			got := localKeys(outside)
			if len(got) != len(step.want) || !bytes.Equal(got[0], step.want[0]) {
				return false
			}
			for _, key := range step.want {
				if (Keyring{Keys: got}).index(key) < 0 {
					return false
				}
			}
			return true
		})
	}
	time.Sleep(10 * nodes[0].timing.ProbeInterval)
	allAlive(t, all, 4)
}
