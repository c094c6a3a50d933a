// Package assign decides which server a new session goes to.
//
// It is the pure heart of Usher's balancer: given a snapshot of the farm (a
// [View] built from the nodes' gossiped load reports) and the leader's own
// memory of the redirects it has recently handed out (the pending ledger), an
// [Assigner] picks one server per probe, and a few backups to name in
// USHER-BACKUP.
//
// The package imports nothing else from Usher, touches no sockets, and never
// reads the wall clock or the global random source: a clock and a
// *rand.Rand are injected into [New], so every policy and timer can be
// tested deterministically and without sleeping (design invariant 7).
//
// # Eligibility
//
// A node is eligible when it is not draining, not suspect, has a valid
// address and a positive capacity, its reported sessions are below that
// capacity, and (when Config.StaleAfter is set) its report is no older than
// StaleAfter. [Assigner.Pick] never returns anything else (design invariant
// 5), and never sends a client back to the server it says it just lost.
// [Assigner.PickFor] also leaves out the nodes whose address is of the
// other family than the client's, which the client cannot reach.
//
// Pending entries (below) narrow the choice without closing the farm: while
// some eligible node has room counting its pending entries too, the pick is
// among those; when none has, it is among all the eligible nodes, still by
// load counting the entries. So a node is passed over once the redirects
// on their way would fill it, yet a farm whose reports show room answers
// every probe, however many redirects anyone has had made.
//
// # The pending ledger
//
// Load reports reach the leader late: a node gossips its session count every
// so often and the gossip takes time to spread. A leader that trusted the
// reports alone would send a whole burst of clients to whichever node looked
// emptiest in the last report, and that node would be overrun before the next
// report showed it ("herding"). The ledger fixes that. Every pick appends an
// entry for the chosen node; a node's load is its reported sessions plus its
// ledger entries. When a new view arrives, each node's monotonic Accepted
// counter says how many clients it took since the previous view, and that many
// of its oldest entries are removed: those clients are now in the report.
// Entries the reports never confirm (the client went elsewhere or gave up)
// expire after Config.PendingTTL. A node that leaves the view takes its
// entries with it.
//
// Anyone can have picks made, one datagram each, and most of those clients
// never arrive, so what a pick books is bounded three ways. A node's entries
// of [BookSession] picks (an Usher probe's, whose ticket is good at that
// server alone) are at most its capacity, and those of [BookStock] picks (a
// stock STUN or TURN request, which may be anyone's) at most
// Config.StockShare of it, an eighth by default; past either bound a new
// entry replaces the oldest. Entries live Config.PendingTTL, which the
// caller sets to what a real client needs to reach its server and show in
// a report, about 2 s. And pending entries never make a node ineligible on
// their own (see Eligibility). A flood of stock requests thus leaves seven
// eighths of every node's capacity to ticketed clients, and a flood of any
// kind can skew which node is picked but never make the farm refuse.
//
// The package's simulation test shows the effect: ten equal nodes, 5,000
// clients in bursts of 100, and a view 500 ms old. With the ledger,
// least-loaded keeps the busiest node within 5% of the mean throughout
// (in practice exactly even); without it, each burst lands whole on one
// node and the busiest node reaches several times the mean.
//
// # Policies
//
//   - [LeastLoaded] (default): the eligible nodes whose load
//     (sessions+pending)/capacity is at most Config.Spread sessions above
//     the eligible nodes' mean take new sessions in turn (in ID order, the
//     cursor shared with RoundRobin). No node above that band gets one, so
//     the farm stays level, and a report that reveals many departures from
//     one node at once does not send every following session there
//     ("strict" least-loaded, Spread < 0, does: the lowest load, ties at
//     random).
//   - [P2C]: power of two choices; two distinct eligible nodes at random,
//     the less loaded wins.
//   - [RoundRobin]: eligible nodes in ID order; the cursor survives view changes.
//   - [Random]: uniform among eligible nodes.
//   - [Sticky]: rendezvous (highest random weight) hashing of the session ID
//     and node ID with a fixed, seedless hash, so every leader maps a session
//     to the same node, and a session moves only when its node stops being
//     eligible.
//
// # Warm-up
//
// A leader that has just taken over starts with an empty ledger: it cannot
// know which redirects its predecessor sent that the reports do not show
// yet, and the node that looks emptiest may be the one its predecessor was
// busy filling. Until every node has reported since the Assigner was
// created, LeastLoaded behaves as P2C, which spreads a burst even over a
// wrong view; and Accepted growth in reports older than the Assigner is
// taken as the predecessor's, not reconciled against the ledger. See
// [Assigner.Warm] for the exact rule and [Config] for the knobs.
//
// # Concurrency
//
// A [View] is immutable once built and may be shared freely. An [Assigner] is
// not safe for concurrent use: exactly one goroutine (the probe responder)
// owns it and calls all of its methods. Pick and Backups do not allocate in
// steady state.
package assign
