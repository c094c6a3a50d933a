package cluster

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/hashicorp/raft"
)

func applyCmd(t *testing.T, f *fsm, cmd command) any {
	t.Helper()
	return f.Apply(&raft.Log{Type: raft.LogCommand, Data: encodeCommand(cmd)})
}

func TestFSMApply(t *testing.T) {
	changes := 0
	f := newFSM(func() { changes++ })
	key := bytes.Repeat([]byte{7}, TicketKeySize)
	rotated := bytes.Repeat([]byte{9}, TicketKeySize)
	steps := []struct {
		cmd     command
		wantErr bool
	}{
		{command{Op: opDrain, Node: "a", Drain: true}, false},
		{command{Op: opDrain, Node: "b", Drain: true}, false},
		{command{Op: opDrain, Node: "b", Drain: false}, false},
		{command{Op: opCapacity, Node: "a", Capacity: 50}, false},
		{command{Op: opCapacity, Node: "c", Capacity: 9}, false},
		{command{Op: opClearCapacity, Node: "c"}, false},
		{command{Op: opTicketKey, Key: key}, false},
		{command{Op: opTicketKey, Key: bytes.Repeat([]byte{8}, TicketKeySize)}, false}, // first key wins
		{command{Op: opTicketKey, Key: []byte{1}}, true},
		{command{Op: opTicketKeyRotate, Key: rotated}, false}, // only an explicit rotation replaces it
		{command{Op: opTicketKeyRotate, Key: []byte{1}}, true},
		{command{Op: opTicketKey, Key: key}, false}, // and set-once stays a no-op after it
		{command{Op: "explode"}, true},
	}
	before := f.state.Load()
	for _, s := range steps {
		res := applyCmd(t, f, s.cmd)
		if err, _ := res.(error); (err != nil) != s.wantErr {
			t.Fatalf("apply %+v: %v", s.cmd, res)
		}
	}
	st := f.state.Load()
	if !st.Drained["a"] || st.Drained["b"] || len(st.Drained) != 1 {
		t.Errorf("drained %v", st.Drained)
	}
	if st.Capacity["a"] != 50 || len(st.Capacity) != 1 {
		t.Errorf("capacity %v", st.Capacity)
	}
	if !bytes.Equal(st.TicketKey, rotated) {
		t.Errorf("ticket key %x", st.TicketKey)
	}
	if len(before.Drained) != 0 {
		t.Error("an earlier State was modified in place")
	}
	if changes != 8 {
		t.Errorf("%d change notifications, want 8", changes)
	}

	for _, bad := range [][]byte{[]byte("{"), []byte(`{"v":2,"op":"drain"}`)} {
		if err, _ := f.Apply(&raft.Log{Type: raft.LogCommand, Data: bad}).(error); !errors.Is(err, errBadCommand) {
			t.Errorf("apply %q: %v", bad, err)
		}
	}
	if res := f.Apply(&raft.Log{Type: raft.LogBarrier}); res != nil {
		t.Errorf("barrier: %v", res)
	}
}

// memorySink is a raft.SnapshotSink in memory.
type memorySink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memorySink) ID() string    { return "test" }
func (s *memorySink) Close() error  { return nil }
func (s *memorySink) Cancel() error { s.cancelled = true; return nil }

func TestFSMSnapshotRestore(t *testing.T) {
	f := newFSM(nil)
	applyCmd(t, f, command{Op: opDrain, Node: "a", Drain: true})
	applyCmd(t, f, command{Op: opCapacity, Node: "b", Capacity: 3})
	applyCmd(t, f, command{Op: opTicketKey, Key: bytes.Repeat([]byte{1}, TicketKeySize)})
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memorySink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	g := newFSM(nil)
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	got, want := g.state.Load(), f.state.Load()
	if !got.Drained["a"] || got.Capacity["b"] != 3 || !bytes.Equal(got.TicketKey, want.TicketKey) {
		t.Fatalf("restored %+v, want %+v", got, want)
	}
	for _, bad := range []string{"nope", `{"v":9,"state":{}}`} {
		if err := g.Restore(io.NopCloser(bytes.NewReader([]byte(bad)))); err == nil {
			t.Errorf("restore %q succeeded", bad)
		}
	}
}
