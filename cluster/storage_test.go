package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// segmentSmall makes raft-wal seal a segment every few dozen entries.
const segmentSmall = 4096

// soloConfig is the configuration of a one-voter farm on dir; until t ends,
// the nodes New starts have log segments small enough for a test to fill
// several.
func soloConfig(t *testing.T, dir string) Config {
	cfg := testConfig(t, "solo", nil)
	cfg.BootstrapExpect = 1
	cfg.DataDir = dir
	useWALSegmentSize(t, segmentSmall)
	return cfg
}

// singleVoter starts a one-voter farm on dir, commits n drains and stops it
// cleanly; it returns the last index the log held.
func singleVoter(t *testing.T, dir string, n int) uint64 {
	t.Helper()
	cfg := soloConfig(t, dir)
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer c.Shutdown()
	eventually(t, 10*time.Second, "the single voter serves", func() bool { _, ok := c.Serving(); return ok })
	for i := range n {
		if err := c.SetDrain(fmt.Sprintf("x%d", i), true); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	// Read the last index from the closed log itself: raft appends lease
	// renewals until it stops.
	meta := &metadb.BoltMetaDB{}
	defer meta.Close()
	w, err := wal.Open(filepath.Join(dir, "raft", "wal"), wal.WithMetaStore(meta), wal.WithSegmentSize(segmentSmall))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	last, err := w.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	return last
}

// reopen starts the single voter on dir again and returns New's error; a
// node that starts is shut down.
func reopen(t *testing.T, dir string) error {
	t.Helper()
	cfg := soloConfig(t, dir)
	c, err := New(cfg)
	if err == nil {
		c.Shutdown()
	}
	return err
}

// segments returns the raft-wal segment files under dir, oldest first.
func segments(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "raft", "wal", "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files) // named by zero-padded base index
	if len(files) < 3 {
		t.Fatalf("want at least 3 segments, have %d", len(files))
	}
	return files
}

// dataEnd returns the offset after the last non-zero byte of a segment
// (segments are preallocated with zeros).
func dataEnd(t *testing.T, path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(bytes.TrimRight(b, "\x00")))
}

func truncateHalf(t *testing.T, path string) {
	if err := os.Truncate(path, dataEnd(t, path)/2); err != nil {
		t.Fatal(err)
	}
}

func zeroFile(t *testing.T, path string) {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, make([]byte, st.Size()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, path string) {
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// Damaged raft storage stops the agent at start with ErrStorageDamaged,
// naming the damaged file; a clean restart and a torn final write, the one
// thing a crash leaves behind, start as before.
func TestStorageFailsLoudly(t *testing.T) {
	tail := func(t *testing.T, dir string) string { s := segments(t, dir); return s[len(s)-1] }
	sealed := func(t *testing.T, dir string) string { return segments(t, dir)[0] }
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
		// names is a file the error must name; "" for a healthy start.
		names string
	}{
		{"clean restart", func(*testing.T, string) {}, ""},
		{"torn final write", tornWrite, ""},
		{"tail truncated", func(t *testing.T, dir string) { truncateHalf(t, tail(t, dir)) }, LogMarkFile},
		{"tail zeroed", func(t *testing.T, dir string) { zeroFile(t, tail(t, dir)) }, LogMarkFile},
		{"tail removed", func(t *testing.T, dir string) { remove(t, tail(t, dir)) }, LogMarkFile},
		{"sealed truncated", func(t *testing.T, dir string) { truncateHalf(t, sealed(t, dir)) }, "wal"},
		{"sealed zeroed", func(t *testing.T, dir string) { zeroFile(t, sealed(t, dir)) }, "wal"},
		{"sealed removed", func(t *testing.T, dir string) { remove(t, sealed(t, dir)) }, "wal"},
		{"metadata removed", func(t *testing.T, dir string) {
			remove(t, filepath.Join(dir, "raft", "wal", metadb.FileName))
		}, metadb.FileName},
		{"mark damaged", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "raft", LogMarkFile), []byte("usherlm1 garbage garbage xx"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, LogMarkFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			last := singleVoter(t, dir, 150)
			mark, ok, err := readMark(filepath.Join(dir, "raft", LogMarkFile))
			if err != nil || !ok || mark.Index != last {
				t.Fatalf("after a clean stop the log mark is %+v (%v, %v), want index %d", mark, ok, err, last)
			}
			tt.damage(t, dir)
			before, _ := filepath.Glob(filepath.Join(dir, "raft", "wal", "*.wal"))
			err = reopen(t, dir)
			t.Logf("start: %v", err)
			for _, f := range before {
				if _, err := os.Stat(f); err != nil {
					t.Errorf("the start deleted segment %s: %v", f, err)
				}
			}
			switch {
			case tt.names == "" && err != nil:
				t.Fatalf("healthy storage refused: %v", err)
			case tt.names != "" && !errors.Is(err, ErrStorageDamaged):
				t.Fatalf("damaged storage: error %v, want ErrStorageDamaged", err)
			case tt.names != "" && !bytes.Contains([]byte(err.Error()), []byte(tt.names)):
				t.Fatalf("error does not name %s: %v", tt.names, err)
			case tt.names != "" && !bytes.Contains([]byte(err.Error()), []byte("to recover")):
				t.Fatalf("error does not name the recovery: %v", err)
			}
		})
	}
}

// tornWrite appends to the last segment what a crash in the middle of an
// append leaves: an entry frame without its commit frame.
func tornWrite(t *testing.T, dir string) {
	s := segments(t, dir)
	path := s[len(s)-1]
	end := dataEnd(t, path)
	end = (end + 7) &^ 7 // frames are 8-byte aligned
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Frame header: type 1 (entry), three reserved bytes, length 16, then
	// half of the payload.
	frame := []byte{1, 0, 0, 0, 16, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4}
	if _, err := f.WriteAt(frame, end); err != nil {
		t.Fatal(err)
	}
}

// Removing the log's tail (raft drops entries the leader overwrote) lowers
// the log mark before the entries go, so a crash right after cannot leave a
// mark beyond the log.
func TestLogMarkFollowsTailRemoval(t *testing.T) {
	dir := t.TempDir()
	walDir := filepath.Join(dir, "wal")
	if err := os.MkdirAll(walDir, 0o700); err != nil {
		t.Fatal(err)
	}
	snaps := raft.NewInmemSnapshotStore()
	meta := &metadb.BoltMetaDB{}
	defer meta.Close()
	l, err := openLog(dir, walDir, meta, snaps, testLogger("wal"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var logs []*raft.Log
	for i := uint64(1); i <= 200; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte("x")})
	}
	if err := l.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := l.flush(); err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteRange(151, 200); err != nil {
		t.Fatal(err)
	}
	if m, _, err := readMark(filepath.Join(dir, LogMarkFile)); err != nil || m.Index != 150 {
		t.Fatalf("after removing 151-200 the mark is %+v (%v), want index 150", m, err)
	}
	// A head compaction leaves the mark alone.
	if err := l.DeleteRange(1, 100); err != nil {
		t.Fatal(err)
	}
	if m, _, err := readMark(filepath.Join(dir, LogMarkFile)); err != nil || m.Index != 150 {
		t.Fatalf("after compacting 1-100 the mark is %+v (%v), want index 150", m, err)
	}
}

func TestLogMarkRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), LogMarkFile)
	want := logMark{Index: 1 << 40, Term: 7}
	if err := writeMark(path, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := readMark(path)
	if err != nil || !ok || got != want {
		t.Fatalf("read %+v %v %v, want %+v", got, ok, err, want)
	}
	b, _ := os.ReadFile(path)
	for i := range b {
		bad := bytes.Clone(b)
		bad[i] ^= 0x10
		os.WriteFile(path, bad, 0o600)
		if _, _, err := readMark(path); !errors.Is(err, ErrStorageDamaged) {
			t.Fatalf("flipped byte %d: error %v", i, err)
		}
	}
}
