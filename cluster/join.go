package cluster

import (
	"time"

	"github.com/hashicorp/go-metrics"
)

// runJoiner joins the seed list, retrying every RetryJoinInterval until at
// least one seed answers or the cluster shuts down (like Consul's retry_join).
func (c *Cluster) runJoiner() {
	log := c.logger.Named("join")
	t := time.NewTimer(0)
	defer t.Stop()
	for attempt := 1; ; attempt++ {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		n, left, err := c.join()
		if left {
			return
		}
		if n > 0 {
			c.joined.Store(true)
			metrics.IncrCounter([]string{"cluster", "join", "ok"}, 1)
			log.Info("joined", "seeds_answered", n, "attempts", attempt)
			return
		}
		metrics.IncrCounter([]string{"cluster", "join", "failed"}, 1)
		log.Warn("no seed answered, retrying", "seeds", c.cfg.Join, "attempt", attempt,
			"retry_in", c.cfg.RetryJoinInterval, "error", err)
		t.Reset(c.cfg.RetryJoinInterval)
	}
}

// join tries the seeds once, unless the node has left.
func (c *Cluster) join() (n int, left bool, err error) {
	c.leaveMu.Lock()
	defer c.leaveMu.Unlock()
	if c.left {
		return 0, true, nil
	}
	n, err = c.ml.Join(c.cfg.Join)
	return n, false, err
}
