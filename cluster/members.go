package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-metrics"
	"github.com/hashicorp/memberlist"
)

// MemberStatus is a member's liveness as this agent's memberlist sees it.
type MemberStatus uint8

// Member statuses. The zero value is not a valid status.
const (
	// Alive members answer the failure detector.
	Alive MemberStatus = iota + 1
	// Suspect members missed probes and may be declared dead soon.
	// memberlist's event API does not report suspicion, so a Member shows
	// Alive until it is Dead; the age of its report (ReportedAt) is the
	// finer liveness signal.
	Suspect
	// Dead members failed the failure detector.
	Dead
	// Left members left the cluster gracefully.
	Left
)

// String returns the lower-case status name.
func (s MemberStatus) String() string {
	switch s {
	case Alive:
		return "alive"
	case Suspect:
		return "suspect"
	case Dead:
		return "dead"
	case Left:
		return "left"
	}
	return "unknown"
}

// Member is one node as this agent sees it.
type Member struct {
	// Name is the node name.
	Name string
	// Gossip is the node's memberlist address.
	Gossip netip.AddrPort
	// Status is the node's liveness.
	Status MemberStatus
	// Report is the node's latest load report; zero if none decoded yet.
	// A voter hears every report; other members see the gossiped one, whose
	// load is refreshed every 30 s (see the package documentation).
	Report Report
	// ReportedAt is the local time this agent received the current report
	// (the time Report.Seq last changed).
	ReportedAt time.Time
	// Voter says the node is a voter in the raft configuration.
	Voter bool
	// Leader says the node is the raft leader as this agent knows it.
	Leader bool
	// AwaitingReport is set on the leader for the node that led before
	// it, until a report from that node arrives after the takeover. A leader that lost its leadership by falling silent is
	// most likely dead, while its last report stays fresh for up to three
	// publish intervals more; the agent sends no new session to it until
	// it speaks again (a leader that handed over gracefully reports within
	// one interval).
	AwaitingReport bool
}

// memberEntry is the table's record of one node.
type memberEntry struct {
	name        string
	gossip      netip.AddrPort
	status      MemberStatus
	statusSince time.Time
	firstSeen   time.Time
	report      Report
	reportedAt  time.Time
	// With Config.TLS: key is the key that signed report; meta is the
	// last metadata that verified, metaReport and metaKey what it held
	// (so unchanged metadata is not verified again); pending is the
	// latest metadata that did not verify (it is tried again when the
	// node's certificate is learned).
	key        keyID
	meta       []byte
	metaReport Report
	metaKey    keyID
	pending    []byte
}

// memberTable keeps the member table from memberlist's events and serves
// this node's metadata. memberlist calls its methods with its own locks
// held, so they do no more than update the table and signal.
type memberTable struct {
	logger   hclog.Logger
	now      func() time.Time
	meta     func() []byte
	onChange func(membership bool)
	// onState, if set, takes the state messages (statemsg.go).
	onState func([]byte)
	// auth, set with Config.TLS, checks the signatures of reports and
	// metadata and takes the certificate messages (certdir.go).
	auth *gossipAuth

	mu sync.Mutex
	m  map[string]*memberEntry
	// names are the keys of m, sorted: snapshot, called several times a
	// second, copies in this order rather than sorting its copy.
	names []string
}

func newMemberTable(logger hclog.Logger, meta func() []byte, onChange func(membership bool)) *memberTable {
	return &memberTable{
		logger:   logger,
		now:      time.Now,
		meta:     meta,
		onChange: onChange,
		m:        map[string]*memberEntry{},
	}
}

// NotifyJoin implements memberlist.EventDelegate.
func (t *memberTable) NotifyJoin(n *memberlist.Node) { t.observe(n, Alive) }

// NotifyLeave implements memberlist.EventDelegate. memberlist does not tell
// a graceful leave from a death here (Node.State is not kept current), so a
// member whose last report announced Leaving is Left, any other Dead.
func (t *memberTable) NotifyLeave(n *memberlist.Node) { t.observe(n, Dead) }

// NotifyUpdate implements memberlist.EventDelegate.
func (t *memberTable) NotifyUpdate(n *memberlist.Node) { t.observe(n, Alive) }

func (t *memberTable) observe(n *memberlist.Node, status MemberStatus) {
	now := t.now()
	var gossip netip.AddrPort
	if a, ok := netip.AddrFromSlice(n.Addr); ok {
		gossip = netip.AddrPortFrom(a.Unmap(), n.Port)
	}
	// The entry exists, with its address, before the metadata is
	// verified, so that a request for the member's certificate finds it.
	t.mu.Lock()
	e, ok := t.m[n.Name]
	if !ok {
		e = &memberEntry{name: n.Name, firstSeen: now}
		t.m[n.Name] = e
		i, _ := slices.BinarySearch(t.names, n.Name)
		t.names = slices.Insert(t.names, i, n.Name)
	}
	e.gossip = gossip
	t.mu.Unlock()
	report, key, err := t.decodeMeta(n.Name, n.Meta)
	if err != nil && len(n.Meta) > 0 && !errors.Is(err, errUnauthenticated) {
		t.logger.Warn("undecodable member report", "member", n.Name, "error", err)
		metrics.IncrCounter([]string{"cluster", "report", "bad"}, 1)
	}

	t.mu.Lock()
	if status == Dead && (e.report.Leaving || err == nil && report.Leaving) {
		status = Left
	}
	membership := !ok || e.status != status
	if membership {
		e.status = status
		e.statusSince = now
	}
	e.gossip = gossip
	switch {
	case err == nil && t.auth != nil:
		e.meta, e.metaReport, e.metaKey, e.pending = bytes.Clone(n.Meta), report, key, nil
	case errors.Is(err, errUnauthenticated):
		e.pending = bytes.Clone(n.Meta)
	}
	// A report also arrives straight from its node (NotifyMsg), so the
	// metadata may carry an older one: only a newer Seq replaces it, except
	// when the member comes back (its Seq starts from its clock anew).
	if err == nil && (membership || report.Seq > e.report.Seq || e.reportedAt.IsZero()) {
		e.report, e.key = report, key
		e.reportedAt = now
	}
	t.mu.Unlock()

	if membership {
		t.logger.Debug("member status", "member", n.Name, "status", status, "addr", gossip)
	}
	t.onChange(membership)
}

// decodeMeta decodes a member's metadata and, with Config.TLS, checks
// that it is signed by the member; metadata that verified before is not
// verified again.
func (t *memberTable) decodeMeta(name string, meta []byte) (Report, keyID, error) {
	if t.auth == nil {
		r, err := DecodeReport(meta)
		return r, keyID{}, err
	}
	t.mu.Lock()
	if e, ok := t.m[name]; ok && len(meta) > 0 && bytes.Equal(e.meta, meta) {
		r, key := e.metaReport, e.metaKey
		t.mu.Unlock()
		return r, key, nil
	}
	t.mu.Unlock()
	r, trailer, err := decodeReport(meta)
	if err != nil {
		return Report{}, keyID{}, err
	}
	key, err := t.auth.verify(sigMeta, name, meta[:len(meta)-len(trailer)], trailer)
	if err != nil {
		return Report{}, keyID{}, err
	}
	return r, key, nil
}

// retryMeta verifies again the metadata of name that did not verify,
// once name's certificate has been learned (the authenticator calls it).
func (t *memberTable) retryMeta(name string) {
	t.mu.Lock()
	e, ok := t.m[name]
	if !ok || e.pending == nil {
		t.mu.Unlock()
		return
	}
	pending := e.pending
	t.mu.Unlock()
	report, key, err := t.decodeMeta(name, pending)
	if err != nil {
		return
	}
	now := t.now()
	t.mu.Lock()
	taken := bytes.Equal(e.pending, pending)
	if taken {
		e.meta, e.metaReport, e.metaKey, e.pending = pending, report, key, nil
		if report.Seq > e.report.Seq || e.reportedAt.IsZero() {
			e.report, e.key = report, key
			e.reportedAt = now
		}
	}
	t.mu.Unlock()
	if taken {
		t.onChange(true)
	}
}

// setLocalReport records this node's own report at publish time so the
// local view never waits for memberlist to echo it.
func (t *memberTable) setLocalReport(name string, r Report, key keyID) {
	now := t.now()
	t.mu.Lock()
	if e, ok := t.m[name]; ok && r.Seq > e.report.Seq {
		e.report, e.key = r, key
		e.reportedAt = now
	}
	t.mu.Unlock()
}

// snapshot returns a copy of every entry, sorted by name.
func (t *memberTable) snapshot() []memberEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]memberEntry, len(t.names))
	for i, name := range t.names {
		out[i] = *t.m[name]
	}
	return out
}

// prune forgets dead and left members whose status is older than age and
// for which keep returns false.
func (t *memberTable) prune(age time.Duration, keep func(name string) bool) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.names = slices.DeleteFunc(t.names, func(name string) bool {
		e := t.m[name]
		if (e.status == Dead || e.status == Left) && now.Sub(e.statusSince) > age && !keep(name) {
			delete(t.m, name)
			return true
		}
		return false
	})
}

// NodeMeta implements memberlist.Delegate.
func (t *memberTable) NodeMeta(limit int) []byte {
	b := t.meta()
	if len(b) > limit {
		// Cannot happen: MaxReportSize is below memberlist's limit.
		t.logger.Error("report larger than the metadata limit", "size", len(b), "limit", limit)
		return nil
	}
	return b
}

// NotifyMsg implements memberlist.Delegate: it passes state messages to
// onState and certificate messages to the authenticator, and takes the
// report messages members send straight to the voters (see publisher). A
// report replaces the member's current one only if its Seq is newer, only
// for a member memberlist has told this node about and that is alive, and
// with Config.TLS only if the member signed it.
func (t *memberTable) NotifyMsg(b []byte) {
	if len(b) == 0 {
		return
	}
	switch b[0] {
	case msgState:
		if t.onState != nil {
			t.onState(b)
		}
		return
	case msgCert, msgCertRequest:
		if t.auth != nil {
			t.auth.take(b)
		}
		return
	}
	name, r, trailer, err := decodeSignedReportMsg(b)
	if err == nil && t.auth == nil && len(trailer) != 0 {
		err = fmt.Errorf("%w: %d trailing bytes", ErrBadReport, len(trailer))
	}
	if err != nil {
		metrics.IncrCounter([]string{"cluster", "report", "bad"}, 1)
		return
	}
	now := t.now()
	t.mu.Lock()
	e, ok := t.m[name]
	fresh := ok && e.status == Alive && r.Seq > e.report.Seq
	t.mu.Unlock()
	if !fresh {
		return
	}
	var key keyID
	if t.auth != nil {
		if key, err = t.auth.verify(sigReport, name, b[:len(b)-len(trailer)], trailer); err != nil {
			return
		}
	}
	t.mu.Lock()
	fresh = e.status == Alive && r.Seq > e.report.Seq && t.m[name] == e
	if fresh {
		e.report, e.key = r, key
		e.reportedAt = now
	}
	t.mu.Unlock()
	if fresh {
		t.onChange(false)
	}
}

// forceLeft marks name left if the failure detector found it dead (or it
// left already), and reports whether it did.
func (t *memberTable) forceLeft(name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[name]
	if !ok || (e.status != Dead && e.status != Left) {
		return false
	}
	if e.status == Dead {
		e.status, e.statusSince = Left, t.now()
	}
	return true
}

// lookup returns a copy of name's entry.
func (t *memberTable) lookup(name string) (memberEntry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[name]
	if !ok {
		return memberEntry{}, false
	}
	return *e, true
}

// GetBroadcasts implements memberlist.Delegate; the cluster has none.
func (t *memberTable) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState implements memberlist.Delegate; all state travels as metadata.
func (t *memberTable) LocalState(join bool) []byte { return nil }

// MergeRemoteState implements memberlist.Delegate.
func (t *memberTable) MergeRemoteState(buf []byte, join bool) {}
