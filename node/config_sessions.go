package node

// sessionCap is the most sessions the session endpoint counts: max_sessions,
// or twice capacity when it is 0. The leader stops assigning a node at its
// capacity, so the cap only binds when reports lag behind a burst or when
// sessions come from elsewhere than the leader's assignments.
func (r *Runtime) sessionCap() int {
	if r.MaxSessions > 0 {
		return r.MaxSessions
	}
	return 2 * r.Capacity
}

// sourceCap is the most sessions the session endpoint counts from one
// source: max_sessions_per_source, or a tenth of capacity (at least 1) when
// it is 0. A NAT's users spread over the farm's nodes, so one address
// rarely holds a tenth of a node; one that does is more likely one client
// probing for many tickets to fill the node.
func (r *Runtime) sourceCap() int {
	if r.MaxSessionsPerSource > 0 {
		return r.MaxSessionsPerSource
	}
	return max(1, r.Capacity/10)
}
