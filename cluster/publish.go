package cluster

import (
	"time"

	"github.com/hashicorp/go-metrics"
)

// runPublisher republishes this node's report every PublishInterval with a
// new Seq, so the age of a member's report is a liveness signal (see the
// package documentation). Once the owner has called SetReport, it goes on
// only while the owner keeps doing so: an agent whose own loop is stuck
// stops looking alive even though memberlist still answers for it.
func (c *Cluster) runPublisher() {
	t := time.NewTicker(c.timing.PublishInterval)
	defer t.Stop()
	seq := c.loadReport().Seq
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		if last := c.reportedAt.Load(); last != 0 && Monotonic()-time.Duration(last) > ownerSilence*c.timing.PublishInterval {
			continue
		}
		seq++
		r := *c.pending.Load()
		r.Seq = seq
		r.RaftAddr = c.raftAddr
		r.Voter = c.cfg.Voter
		r.Bootstrapped = c.bootstrapped.Load()
		r.Timing = c.timing.Fingerprint()
		if !c.publish(r) {
			return
		}
	}
}

// ownerSilence is how many publish intervals may pass without a SetReport
// before the publisher stops vouching for the node.
const ownerSilence = 2

// publish gossips r unless the node has left; it reports whether the
// publisher should go on.
func (c *Cluster) publish(r Report) bool {
	c.leaveMu.Lock()
	defer c.leaveMu.Unlock()
	if c.left {
		return false
	}
	if !c.encodeMeta(r) {
		return true
	}
	c.members.setLocalReport(c.cfg.NodeName, r)
	// UpdateNode waits until the broadcast is sent; a timeout only means
	// nobody else is reachable right now.
	if err := c.ml.UpdateNode(c.timing.PublishInterval); err != nil {
		c.logger.Trace("publishing report", "error", err)
	}
	metrics.IncrCounter([]string{"cluster", "report", "published"}, 1)
	return true
}

// encodeMeta stores the encoding of r for memberlist's NodeMeta.
func (c *Cluster) encodeMeta(r Report) bool {
	b, err := EncodeReport(r)
	if err != nil {
		c.logger.Error("encoding report", "error", err)
		return false
	}
	c.meta.Store(&b)
	return true
}

// loadMeta returns the current node metadata.
func (c *Cluster) loadMeta() []byte { return *c.meta.Load() }

// loadReport decodes the current node metadata.
func (c *Cluster) loadReport() Report {
	r, _ := DecodeReport(c.loadMeta())
	return r
}
