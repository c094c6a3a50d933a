package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// Storage that fails loudly.
//
// raft-wal fsyncs every append, so a crash can lose at most the batch being
// written when it struck, which Raft never counted as stored. On open it
// recovers the last segment by reading up to the last intact commit frame,
// which is right for that torn write but just as silent when the segment
// was truncated, zeroed or removed after the fact: entries this node
// acknowledged to the leader are gone, and with them the guarantee that a
// committed entry lives on a majority. A lost metadata database is worse:
// raft-wal then deletes every segment file and starts an empty log, with
// the current term and the vote forgotten too.
//
// So the node keeps a small record of its own, the log mark (LogMarkFile
// under DataDir/raft): the highest log index it ever saw stored and the
// highest term, checksummed and replaced atomically (written to a
// temporary file, fsynced, renamed, directory fsynced). It is written by a
// goroutine of its own when the index has advanced by markStride or a
// markEvery has passed, and once more when the log closes, so it trails
// what the log holds and never runs ahead of it. A removal of the log's
// tail (a follower dropping entries the leader overwrote, or a restore from
// a snapshot) lowers it first, synchronously. At start, before Raft runs,
// the log must reach the mark (itself or through the newest snapshot),
// hold every entry from its first to its last index, and know the term the
// mark recorded; otherwise New fails with ErrStorageDamaged naming the file
// and the recovery.

// LogMarkFile is the name, under DataDir/raft, of the log mark: the
// highest index and term this node's raft log is known to have stored.
const LogMarkFile = "log-mark"

// markStride and markEvery bound how far the log mark trails the log.
const (
	markStride = 64
	markEvery  = time.Second
)

// logMark is the content of LogMarkFile.
type logMark struct {
	Index uint64
	Term  uint64
}

// markMagic starts LogMarkFile: format name and version.
const markMagic = "usherlm1"

// markLen is the size of LogMarkFile: magic, index, term, CRC-32C.
const markLen = len(markMagic) + 8 + 8 + 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// keyCurrentTerm is the stable-store key under which raft keeps its term.
var keyCurrentTerm = "CurrentTerm"

// recoverStorage tells the operator how to bring back a node whose raft
// storage cannot be trusted.
const recoverStorage = "to recover, stop this agent and either restore its data_dir from a backup, " +
	"or keep it stopped until the leader has replaced it ('usher members' no longer shows it as a voter: " +
	"the leader replaces a voter dead for three probe intervals when a standby can take its place; " +
	"without one, recover the other voters with " + PeersFile + ") and then start it with an empty data_dir"

// encode returns the file content for m.
func (m logMark) encode() []byte {
	b := make([]byte, 0, markLen)
	b = append(b, markMagic...)
	b = binary.BigEndian.AppendUint64(b, m.Index)
	b = binary.BigEndian.AppendUint64(b, m.Term)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// readMark reads the log mark at path; ok is false when there is none.
func readMark(path string) (m logMark, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, false, nil
	}
	if err != nil {
		return m, false, err
	}
	body := b[:max(len(b)-4, 0)]
	if len(b) != markLen || string(b[:len(markMagic)]) != markMagic ||
		crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[len(body):]) {
		return m, false, fmt.Errorf("%w: %s is not a valid log mark (%d bytes); %s", ErrStorageDamaged, path, len(b), recoverStorage)
	}
	m.Index = binary.BigEndian.Uint64(b[len(markMagic):])
	m.Term = binary.BigEndian.Uint64(b[len(markMagic)+8:])
	return m, true, nil
}

// writeMark replaces the log mark at path with m, durably.
func writeMark(path string, m logMark) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(m.encode())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}

// markedLog is raft's log and stable store: raft-wal, with the log mark
// kept up to date beside it.
type markedLog struct {
	*wal.WAL
	path   string // the log mark
	walDir string
	log    hclog.Logger

	// durable is the highest index stored, term the highest term set.
	durable, term atomic.Uint64
	// kicked is the index at the last request for a write.
	kicked atomic.Uint64
	// writes counts the calls that write the log or the stable store
	// (Stats.StoreWrites).
	writes atomic.Uint64
	// mu serializes writes of the mark; written is the last one written.
	mu      sync.Mutex
	written logMark

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

// openLog opens the write-ahead log in walDir with its metadata database
// meta, checks it against the log mark (see the comment at the top of this
// file) and starts the mark's writer. The snapshot store is consulted for
// the newest snapshot's index. segmentSize 0 means raft-wal's default.
func openLog(dir, walDir string, meta *metadb.BoltMetaDB, snaps raft.SnapshotStore, logger hclog.Logger, segmentSize int) (*markedLog, error) {
	path := filepath.Join(dir, LogMarkFile)
	mark, haveMark, err := readMark(path)
	if err != nil {
		return nil, err
	}
	metaPath := filepath.Join(walDir, metadb.FileName)
	if haveMark && mark != (logMark{}) {
		// raft-wal would start over without its metadata and delete every
		// segment file: refuse before it does.
		if _, err := os.Stat(metaPath); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s is missing but %s records log index %d, term %d; %s",
				ErrStorageDamaged, metaPath, path, mark.Index, mark.Term, recoverStorage)
		}
	}
	w, err := wal.Open(walDir, wal.WithLogger(logger), wal.WithMetaStore(meta), wal.WithSegmentSize(segmentSize))
	if err != nil {
		return nil, fmt.Errorf("%w: open raft log in %s: %w; %s", ErrStorageDamaged, walDir, err, recoverStorage)
	}
	m := &markedLog{WAL: w, path: path, walDir: walDir, log: logger, kick: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	found, err := m.check(mark, snaps)
	if err != nil {
		w.Close()
		return nil, err
	}
	if !haveMark && found != (logMark{}) {
		logger.Info("no log mark yet, recording the log as found", "file", path, "index", found.Index, "term", found.Term)
	}
	m.durable.Store(max(found.Index, mark.Index))
	m.term.Store(max(found.Term, mark.Term))
	m.kicked.Store(m.durable.Load())
	m.written = mark
	if err := m.flush(); err != nil {
		w.Close()
		return nil, err
	}
	go m.run()
	return m, nil
}

// check verifies the opened log against mark and returns what it found:
// the last index (the log's or, when the log ends before it, the newest
// snapshot's) and the current term.
func (m *markedLog) check(mark logMark, snaps raft.SnapshotStore) (logMark, error) {
	first, err := m.FirstIndex()
	if err != nil {
		return logMark{}, err
	}
	last, err := m.LastIndex()
	if err != nil {
		return logMark{}, err
	}
	term, err := m.GetUint64([]byte(keyCurrentTerm))
	if err != nil && err.Error() != "not found" {
		return logMark{}, fmt.Errorf("%w: read the raft term: %w; %s", ErrStorageDamaged, err, recoverStorage)
	}
	var snap uint64
	if metas, err := snaps.List(); err == nil && len(metas) > 0 {
		snap = metas[0].Index // newest first
	}
	walDir := m.walDir
	switch {
	case max(last, snap) < mark.Index:
		return logMark{}, fmt.Errorf("%w: the raft log in %s ends at index %d (newest snapshot %d) but %s records index %d as stored: %d entries are lost; %s",
			ErrStorageDamaged, walDir, last, snap, m.path, mark.Index, mark.Index-max(last, snap), recoverStorage)
	case term < mark.Term:
		return logMark{}, fmt.Errorf("%w: the raft log in %s is at term %d but %s records term %d: the term and the vote are lost; %s",
			ErrStorageDamaged, walDir, term, m.path, mark.Term, recoverStorage)
	case first > 1 && first > snap+1:
		return logMark{}, fmt.Errorf("%w: the raft log in %s starts at index %d but the newest snapshot ends at %d: entries %d to %d are lost; %s",
			ErrStorageDamaged, walDir, first, snap, snap+1, first-1, recoverStorage)
	}
	if err := m.readAll(first, last, walDir); err != nil {
		return logMark{}, err
	}
	return logMark{Index: max(last, snap), Term: term}, nil
}

// readAll reads every entry from first to last: a segment truncated or
// overwritten after it was sealed opens without complaint and fails only
// when an entry in it is read.
func (m *markedLog) readAll(first, last uint64, walDir string) error {
	if last == 0 {
		return nil
	}
	var l raft.Log
	for i := first; i <= last; i++ {
		err := m.GetLog(i, &l)
		if err == nil && l.Index != i {
			err = fmt.Errorf("entry %d holds index %d", i, l.Index)
		}
		if err != nil {
			return fmt.Errorf("%w: the raft log in %s holds indexes %d to %d but entry %d cannot be read: %w; %s",
				ErrStorageDamaged, walDir, first, last, i, err, recoverStorage)
		}
	}
	return nil
}

// run writes the mark every markEvery and when asked, until Close.
func (m *markedLog) run() {
	defer close(m.done)
	t := time.NewTicker(markEvery)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		case <-m.kick:
		}
		if err := m.flush(); err != nil {
			m.log.Error("writing the log mark", "error", err)
		}
	}
}

// flush writes the mark if it changed.
func (m *markedLog) flush() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := logMark{Index: m.durable.Load(), Term: m.term.Load()}
	if next == m.written {
		return nil
	}
	if err := writeMark(m.path, next); err != nil {
		return err
	}
	m.written = next
	return nil
}

// StoreLog implements raft.LogStore.
func (m *markedLog) StoreLog(l *raft.Log) error {
	return m.StoreLogs([]*raft.Log{l})
}

// StoreLogs implements raft.LogStore: once raft-wal has the entries on
// disk, the mark may name them.
func (m *markedLog) StoreLogs(logs []*raft.Log) error {
	m.writes.Add(1)
	if err := m.WAL.StoreLogs(logs); err != nil {
		return err
	}
	if len(logs) > 0 {
		last := logs[len(logs)-1].Index
		m.durable.Store(last)
		if last >= m.kicked.Load()+markStride {
			m.kicked.Store(last)
			select {
			case m.kick <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

// DeleteRange implements raft.LogStore. A range that reaches the end of the
// log lowers the mark first, durably, so that a crash in between cannot
// leave a mark beyond the log.
func (m *markedLog) DeleteRange(lo, hi uint64) error {
	m.writes.Add(1)
	last, err := m.LastIndex()
	if err != nil {
		return err
	}
	if hi >= last && m.durable.Load() >= lo {
		first, err := m.FirstIndex()
		if err != nil {
			return err
		}
		keep := lo - 1
		if lo <= first {
			// The whole log goes (a snapshot replaces it); the
			// snapshot store holds what the mark may name.
			keep = 0
		}
		m.durable.Store(keep)
		m.kicked.Store(keep)
		if err := m.flush(); err != nil {
			return fmt.Errorf("lower the log mark before deleting entries %d to %d: %w", lo, hi, err)
		}
	}
	return m.WAL.DeleteRange(lo, hi)
}

// SetUint64 implements raft.StableStore, following the current term.
func (m *markedLog) SetUint64(key []byte, v uint64) error {
	m.writes.Add(1)
	if err := m.WAL.SetUint64(key, v); err != nil {
		return err
	}
	if string(key) == keyCurrentTerm && v > m.term.Load() {
		m.term.Store(v)
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// Set implements raft.StableStore.
func (m *markedLog) Set(key, v []byte) error {
	m.writes.Add(1)
	return m.WAL.Set(key, v)
}

// Close stops the mark's writer, writes the mark a last time and closes the
// log. It is idempotent.
func (m *markedLog) Close() error {
	select {
	case <-m.stop:
		return nil
	default:
	}
	close(m.stop)
	<-m.done
	return errors.Join(m.flush(), m.WAL.Close())
}
