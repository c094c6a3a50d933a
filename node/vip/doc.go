// Package vip holds the balancer address (the VIP) on behalf of one node,
// by vip_mode:
//
//   - "bind" binds the probe socket to the address when the node takes it
//     and closes it when the node lets go. The address must already be
//     routed to the host (as 127.0.0.0/8 is on Linux); only one socket on a
//     host can bind it, so the bind itself fences.
//   - "netlink" adds the address to an interface and announces it
//     (gratuitous ARP, or an unsolicited neighbour advertisement for IPv6),
//     with a short kernel lifetime that it keeps renewing (netlink_linux.go).
//   - "script" runs the operator's acquire and release commands, for clouds
//     that move addresses through an API (script.go).
//
// A [Holder] puts one mode behind the cluster's VIP interface
// (cluster.VIP). It starts the probe responder (a [Server]) on the address
// in Acquire and stops it in Release, the same way in every mode; in
// netlink and script modes the probe socket is bound with IP_FREEBIND once,
// for the agent's life, so that a takeover needs no re-bind.
//
// # Ownership
//
// A Holder keeps no "held" flag and no lock: whether the node holds the
// address is the cluster's VIP owner goroutine's state, and that goroutine
// is the only caller of Acquire and Release (cluster/vip.go; a test in
// cluster/vipowner_test.go fails if anything else in the module calls
// them). It calls Acquire only when the address is not held and Release
// only after an Acquire that succeeded; an Acquire that fails holds
// nothing. The agent ends its hold by shutting the cluster down (or by
// Cluster.Leave), which waits for the owner to release, and only then
// closes the Holder.
//
// events.go writes the optional vip_events log, one JSON line per change of
// the node's hold, timed on the host's monotonic clock.
package vip
