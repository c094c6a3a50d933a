package assign

import (
	"fmt"
	"hash/fnv"
	"testing"
)

// stickyMap picks once for each of n sessions (without recording anything,
// thanks to noLedger) and returns session index -> node ID.
func stickyMap(t *testing.T, a *Assigner, n int) []string {
	t.Helper()
	return pickIDs(t, a, n)
}

func stickyAssigner(c *fakeClock, seed uint64, nodes []Node) *Assigner {
	return newTestAssigner(Config{Policy: Sticky, noLedger: true}, c, seed, nodes)
}

func TestStickyAgreesAcrossLeaders(t *testing.T) {
	c := newFakeClock()
	nodes := equalNodes(c, 10, 1000)
	// Different random sources stand for different leaders.
	x := stickyMap(t, stickyAssigner(c, 1, nodes), 2000)
	y := stickyMap(t, stickyAssigner(c, 999, nodes), 2000)
	for i := range x {
		if x[i] != y[i] {
			t.Fatalf("session %d: leader one says %s, leader two %s", i, x[i], y[i])
		}
	}
}

func TestStickyHashIsPinned(t *testing.T) {
	// These values must never change: leaders running different builds
	// must agree on where a session goes.
	tests := []struct {
		s    SessionID
		node string
		want uint64
	}{
		{SessionID{}, "", 0xf51ec3dabc2c4015},
		{SessionID{1, 2, 3, 4, 5, 6, 7, 8}, "node-a", 0x8ae0cbcf58a6d8cb},
		{SessionID{1, 2, 3, 4, 5, 6, 7, 8}, "node-b", 0xf8b8aa580727950e},
	}
	for _, tt := range tests {
		if got := StickyScore(tt.s, tt.node); got != tt.want {
			t.Errorf("StickyScore(%x, %q) = %#x, want %#x", tt.s, tt.node, got, tt.want)
		}
	}
}

// TestStickyHashIsStandardFNV checks the hand-rolled, allocation-free FNV-1a
// against the standard library's.
func TestStickyHashIsStandardFNV(t *testing.T) {
	for _, id := range []string{"", "a", "node-b", "a much longer node name.example"} {
		for i := range uint64(50) {
			s := sid(i * 0x9e3779b97f4a7c15)
			h := fnv.New64a()
			h.Write([]byte(id))
			h.Write([]byte{0})
			h.Write(s[:])
			want := h.Sum64()
			got := hashNodeID(id)
			for _, b := range s {
				got = (got ^ uint64(b)) * fnvPrime64
			}
			if got != want {
				t.Fatalf("FNV-1a(%q, %x) = %#x, want %#x", id, s, got, want)
			}
		}
	}
}

func TestStickySpreadsEvenly(t *testing.T) {
	c := newFakeClock()
	a := stickyAssigner(c, 1, equalNodes(c, 10, 1000))
	got := countIDs(t, a, 20000)
	for id, n := range got {
		if n < 1700 || n > 2300 {
			t.Errorf("%s got %d of 20000 sessions, want about 2000", id, n)
		}
	}
	if len(got) != 10 {
		t.Errorf("only %d nodes got sessions", len(got))
	}
}

func TestStickyMovesOnlyWhenItsNodeLeaves(t *testing.T) {
	const sessions = 3000
	c := newFakeClock()
	base := equalNodes(c, 8, 1000)
	a := stickyAssigner(c, 1, base)
	before := stickyMap(t, a, sessions)

	tests := []struct {
		name   string
		change func([]Node) []Node
		gone   string // the node that stops being eligible, if any
		added  string // the node that joins, if any
	}{
		{name: "other loads change", change: func(ns []Node) []Node {
			for i := range ns {
				ns[i].Sessions = (i * 97) % 500
				ns[i].Accepted += uint64(i)
			}
			return ns
		}},
		{name: "node joins", added: "n99", change: func(ns []Node) []Node {
			return append(ns, nodeN(c, 99, 0, 1000))
		}},
		{name: "node leaves", gone: "n03", change: func(ns []Node) []Node {
			return append(ns[:3:3], ns[4:]...)
		}},
		{name: "node drains", gone: "n05", change: func(ns []Node) []Node {
			ns[5].Draining = true
			return ns
		}},
		{name: "node goes suspect", gone: "n00", change: func(ns []Node) []Node {
			ns[0].Suspect = true
			return ns
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nodes := tt.change(append([]Node(nil), base...))
			a.SetView(NewView(nodes))
			after := stickyMap(t, a, sessions)
			moved := 0
			for i := range after {
				if before[i] == after[i] {
					continue
				}
				moved++
				switch {
				case before[i] == tt.gone:
					// Its node left: it must move, and did.
				case after[i] == tt.added && tt.added != "":
					// Rendezvous hashing: a new node takes a fair share.
				default:
					t.Fatalf("session %d moved from %s to %s for no reason", i, before[i], after[i])
				}
				if after[i] == tt.gone {
					t.Fatalf("session %d still on %s", i, tt.gone)
				}
			}
			if tt.gone != "" || tt.added != "" {
				// About one eighth (or ninth) of the sessions move.
				if moved < sessions/16 || moved > sessions/5 {
					t.Errorf("%d of %d sessions moved, want about %d", moved, sessions, sessions/8)
				}
			}
			// Going back to the old view restores every assignment.
			a.SetView(NewView(base))
			back := stickyMap(t, a, sessions)
			if fmt.Sprint(back) != fmt.Sprint(before) {
				t.Error("restoring the view did not restore the assignments")
			}
		})
	}
}
