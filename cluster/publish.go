package cluster

import (
	"net/netip"
	"slices"
	"time"

	"github.com/hashicorp/go-metrics"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
)

// runPublisher republishes this node's report every PublishInterval with a
// new Seq, so the age of a member's report is a liveness signal (see the
// package documentation). Once the owner has called SetReport, it goes on
// only while the owner keeps doing so: an agent whose own loop is stuck
// stops looking alive even though memberlist still answers for it.
func (c *Cluster) runPublisher() {
	t := time.NewTicker(c.timing.PublishInterval)
	defer t.Stop()
	p := publisher{seq: c.loadReport().Seq}
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		if last := c.reportedAt.Load(); last != 0 && Monotonic()-time.Duration(last) > ownerSilence*c.timing.PublishInterval {
			continue
		}
		p.seq++
		r := *c.pending.Load()
		r.Seq = p.seq
		r.RaftAddr = c.raftAddr
		r.Voter = c.cfg.Voter
		r.Bootstrapped = c.verifiedState()
		r.Timing = c.timing.Fingerprint()
		c.refreshKey(&p)
		if !c.publish(r, &p) {
			return
		}
	}
}

// ownerSilence is how many publish intervals may pass without a SetReport
// before the publisher stops vouching for the node.
const ownerSilence = 2

// metaEvery is how many publish intervals may pass between two metadata
// updates whose report differs only in load (see publisher): 30 s at the
// default interval, memberlist's own push/pull period. Every update is
// gossiped to every member several times over, so at 64 members a refresh
// every 5 s was still most of the gossip traffic.
const metaEvery = 120

// publisher is the publisher goroutine's state.
//
// Only the voters need every report: the leader assigns from them, and any
// voter may be the next leader. So each report goes straight to each voter
// in one small memberlist packet (SendBestEffort, encrypted and labelled like
// the rest of memberlist's traffic), and the gossiped metadata, which every
// member receives many times over, changes only when the report's
// membership fields do (service, raft address, voter, bootstrapped, timing,
// draining, capacity, API) or every metaEvery intervals to refresh the load
// figures the other members show. Gossiping every report costs each member
// O(N log N) messages a second; this costs a voter O(N) and everyone else
// O(1). A node that knows no voter yet (reportTargets) sends its reports
// nowhere: the metadata still carries what bootstrap decides from, and
// gossiping every report instead, which each member of a large farm would
// do at once after it started, floods every member's memberlist queue.
type publisher struct {
	seq      uint64
	gossiped Report // the report last put in the metadata
	since    int    // publish intervals since then
	msg      []byte // the direct message, reused
	// pushed records the voters this node sent its certificate to, by
	// the key id sent (Config.TLS).
	pushed map[string]keyID
	// voters are the voters last known (reportTargets).
	voters []string
}

// refreshKey follows a reloaded certificate (Config.TLS): the metadata is
// signed again at once, and every alive member is sent the new
// certificate.
func (c *Cluster) refreshKey(p *publisher) {
	if c.auth == nil {
		return
	}
	changed, err := c.auth.refresh()
	if err != nil {
		c.logger.Error("reloaded certificate cannot sign gossip; still signing with the previous one", "error", err)
		return
	}
	if !changed {
		return
	}
	c.logger.Info("signing gossip with a reloaded certificate")
	p.gossiped = Report{} // gossip the metadata, signed anew
	for _, e := range c.members.snapshot() {
		if e.status == Alive && e.name != c.cfg.NodeName {
			c.auth.push(e.name)
		}
	}
}

// publish records r, sends it to the voters and, when due, gossips it,
// unless the node has left; it reports whether the publisher should go on.
func (c *Cluster) publish(r Report, p *publisher) bool {
	c.leaveMu.Lock()
	defer c.leaveMu.Unlock()
	if c.left {
		return false
	}
	var key keyID
	if c.auth != nil {
		key = c.auth.key().id
	}
	c.members.setLocalReport(c.cfg.NodeName, r, key)
	c.lastSeq.Store(r.Seq)
	targets := c.reportTargets(p)
	p.since++
	if p.since >= metaEvery || !sameMembership(r, p.gossiped) {
		if !c.encodeMeta(r) {
			return true
		}
		// UpdateNode waits until the broadcast is sent; a timeout only
		// means nobody else is reachable right now.
		if err := c.ml.UpdateNode(c.timing.PublishInterval); err != nil {
			c.logger.Trace("publishing report", "error", err)
		}
		p.gossiped, p.since = r, 0
		c.reportsGossiped.Add(1)
		metrics.IncrCounter([]string{"cluster", "report", "gossiped"}, 1)
	}
	var err error
	if p.msg, err = appendReportMsg(p.msg[:0], c.cfg.NodeName, r); err == nil && c.auth != nil {
		p.msg, err = c.auth.key().sign(p.msg, sigReport, c.cfg.NodeName)
	}
	if err != nil {
		c.logger.Error("encoding report", "error", err)
		return true
	}
	c.pushCert(targets, p)
	for _, to := range targets {
		n := memberlist.Node{Name: to.name, Addr: to.gossip.Addr().AsSlice(), Port: to.gossip.Port()}
		if err := c.ml.SendBestEffort(&n, p.msg); err != nil {
			c.logger.Trace("sending report", "to", to.name, "error", err)
			continue
		}
		c.reportsSent.Add(1)
	}
	metrics.IncrCounter([]string{"cluster", "report", "published"}, 1)
	return true
}

// pushCert sends this node's certificate to each voter it starts
// reporting to (Config.TLS), so that its first reports are not dropped
// for want of its key.
func (c *Cluster) pushCert(targets []reportTarget, p *publisher) {
	if c.auth == nil {
		return
	}
	if p.pushed == nil {
		p.pushed = map[string]keyID{}
	}
	id := c.auth.key().id
	for _, to := range targets {
		if sent, ok := p.pushed[to.name]; !ok || sent != id {
			p.pushed[to.name] = id
			c.auth.push(to.name)
		}
	}
}

// reportTarget is a voter to send reports to.
type reportTarget struct {
	name   string
	gossip netip.AddrPort
}

// reportTargets returns the members to send reports to: the alive voters
// other than this node that the leader's state messages name while they
// keep coming (this node is outside the raft configuration), else those of
// this node's own raft configuration, else the voters last known either
// way (an election or a late state message leaves the voters as they
// were), else the alive members whose reports say they are
// voter-eligible and have raft state (the voters of a farm that has just
// bootstrapped, and its standbys; with Config.TLS only on a node that
// verifies the others' metadata, see checkScope).
func (c *Cluster) reportTargets(p *publisher) []reportTarget {
	var names []string
	for name, suffrage := range c.suffrages() {
		if name != c.cfg.NodeName && suffrage == raft.Voter {
			names = append(names, name)
		}
	}
	if len(names) > 0 {
		p.voters = names
	}
	var out []reportTarget
	for _, name := range p.voters {
		if e, ok := c.members.lookup(name); ok && e.status == Alive && e.gossip.IsValid() {
			out = append(out, reportTarget{name: name, gossip: e.gossip})
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, e := range c.members.snapshot() {
		if e.name != c.cfg.NodeName && e.status == Alive && e.gossip.IsValid() && e.report.Voter && e.report.Bootstrapped {
			out = append(out, reportTarget{name: e.name, gossip: e.gossip})
		}
	}
	return out
}

// sameMembership reports whether a and b agree on everything but load and
// Seq, that is on everything that members other than the voters act on.
func sameMembership(a, b Report) bool {
	if !slices.EqualFunc(a.Services, b.Services, sameService) {
		return false
	}
	return a.Service == b.Service && a.RaftAddr == b.RaftAddr && a.Capacity == b.Capacity &&
		a.Draining == b.Draining && a.Voter == b.Voter && a.API == b.API &&
		a.Bootstrapped == b.Bootstrapped && a.Timing == b.Timing && a.Leaving == b.Leaving
}

// sameService reports whether a and b agree on everything but load.
func sameService(a, b ServiceReport) bool {
	a.Sessions, a.Accepted = b.Sessions, b.Accepted
	return a == b
}

// encodeMeta stores the encoding of r for memberlist's NodeMeta.
func (c *Cluster) encodeMeta(r Report) bool {
	b, err := EncodeReport(r)
	if err == nil && c.auth != nil {
		b, err = c.auth.key().sign(b, sigMeta, c.cfg.NodeName)
	}
	if err != nil {
		c.logger.Error("encoding report", "error", err)
		return false
	}
	c.meta.Store(&b)
	return true
}

// loadMeta returns the current node metadata.
func (c *Cluster) loadMeta() []byte { return *c.meta.Load() }

// loadReport decodes the current node metadata (without its signature).
func (c *Cluster) loadReport() Report {
	r, _, _ := decodeReport(c.loadMeta())
	return r
}
