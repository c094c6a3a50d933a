package node

import "time"

// readyPoll is how often an agent that is not ready yet checks again.
const readyPoll = 20 * time.Millisecond

// Ready returns a channel that is closed once the agent has joined its
// farm: its gossip has reached a seed of join (at once without a join list)
// and it knows the farm's leader (Raft elected one among the voters; a
// member outside the Raft configuration learns it from the leader's state
// messages). A voter of a new farm is not ready until bootstrap_expect
// voters have met and elected a leader. The channel stays open if the
// agent closes first. The command line tells systemd READY=1 when it
// closes.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// isReady reports whether the agent is ready (see Ready).
func (a *Agent) isReady() bool {
	cl := a.cl.Load()
	if len(a.cfg.Join) > 0 && !cl.Stats().Joined {
		return false
	}
	leader, _ := cl.Leader()
	return leader != ""
}

// watchReady closes a.ready once the agent is ready, or returns when it
// stops first.
func (a *Agent) watchReady() {
	defer a.wg.Done()
	t := time.NewTicker(readyPoll)
	defer t.Stop()
	for !a.isReady() {
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
	}
	leader, term := a.cl.Load().Leader()
	a.log.Info("ready", "leader", leader, "term", term, "after", time.Since(a.started).Round(time.Millisecond))
	close(a.ready)
}
