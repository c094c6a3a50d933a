// Package cluster is the membership and leadership layer of the Usher agent.
//
// Every server of a farm runs the same agent. Agents find each other from a
// seed list and gossip their load with hashicorp/memberlist; a few of them
// are raft voters (hashicorp/raft, durable log in raft-wal) and elect a
// leader; the leader, and only the leader, holds the balancer VIP and answers
// probes on it. The package imports nothing else of Usher's: the node package
// wires it to the probe responder and supplies the VIP implementation.
//
// # Membership and load reports
//
// Each node's load Report is a compact, versioned binary encoding of at
// most MaxReportSize bytes. One publisher goroutine republishes it every
// PublishInterval, changed or not, with Seq+1, for as long as its owner
// keeps reporting (see below). The alternative, publishing only on change,
// would make a quiet healthy node indistinguishable from a stuck one; with a
// heartbeat republish the age of a member's report (Member.ReportedAt, the
// local receipt time of a newer Seq) is a true liveness signal, which the
// leader uses to treat reports older than three publish intervals as stale.
//
// Only the voters need every report (the leader assigns from them, and any
// voter may lead next), so each report goes straight to each voter in one
// ~100-byte memberlist packet (publish.go, reportmsg.go), and the report in
// the node's gossiped memberlist metadata changes only when a field other
// than the load does, or every metaEvery intervals (30 s). Gossiping every report
// would cost each member O(N log N) messages a second; this costs a voter
// O(N) and every other member O(1). Members other than the voters see load
// figures up to metaEvery intervals old. A member outside the raft
// configuration learns the voters from the leader's state messages and
// keeps reporting to them while those pause; one that knows no voter yet
// sends its reports nowhere rather than gossiping each of them.
// SetReport only stores the latest report and never blocks. An owner that
// calls SetReport must keep calling it (the agent does, every publish
// interval): once it has been silent for two intervals the publisher stops,
// so a node whose agent is wedged goes stale while memberlist, which runs on
// goroutines of its own, would still answer for it.
//
// memberlist's event API reports joins, updates, deaths and leaves but not
// suspicion, so Member.Status is Alive until Dead or Left; report age covers
// the suspect window.
//
// A retry joiner (like Consul's retry_join) joins the seed list until at
// least one seed answers. Label keeps farms apart; EncryptKey turns on
// memberlist's keyring.
//
// # Raft
//
// Raft runs on its own TCP transport with raft-wal as log and stable store
// and a file snapshot store (two retained) under DataDir/raft. When a
// voter-eligible node sees at least BootstrapExpect alive voter-eligible
// members, none of which already has raft state, it bootstraps with the
// first BootstrapExpect of them sorted by name; every node computes the same
// set and only its members call BootstrapCluster. A node acts only once its
// chosen set has stayed the same for a few gossip rounds (bootstrap.go):
// agents started together see one another join over some tens of
// milliseconds, and a node deciding on its first view could bootstrap a
// second configuration beside the others'. The leader then runs an
// autopilot-lite reconcile loop (every second and on membership events): it
// keeps standbyCount (2) alive voter-eligible members beyond the voters in
// the configuration as non-voters ("standbys"), removes left members at
// once, fills the voter set up to BootstrapExpect from the standbys, and
// replaces a voter dead for three probe intervals by promoting a standby
// first and removing the dead voter after. Every other member stays out of
// raft: the leader replicates each lease renewal to every server of the
// configuration, which with every member in it cost more CPU at 16 agents
// than all else the agents did.
//
// The state machine holds only what the farm must agree on: the operator
// drain set, capacity overrides and the ticket key (32 random bytes proposed
// by the first leader). Load never goes through raft. A member outside the
// configuration gets what it needs of the state (the ticket key, its own
// drain and capacity override, and who the voters are) from the leader in
// a state message whenever it changes and every second (statemsg.go);
// State returns that on such a member.
//
// # Raft over mutual TLS
//
// Raft binds to the node's own address, never to an unspecified one. With
// Config.TLS set, every Raft connection is TLS 1.3 with a certificate at
// both ends (transport_tls.go). The accepting node hands a connection to
// Raft only once the peer has proved, within a handshake deadline, a
// certificate of the farm's CA that names this farm and a node this node
// admits: a server of its latest Raft configuration (on the leader that
// includes a server being added), any node of the farm while it has no
// configuration yet, or the leader and voters named by the leader's latest
// state message (so that a node whose configuration went stale while it
// was down still accepts the leader that adds it back). Everything else is
// closed before Raft reads a byte, counted (Stats.RaftRefused, which the
// agent exports as usher_raft_refused_total, and the go-metrics counter
// cluster.raft.rejected) and logged at Warn, at most once per five
// seconds. Handshakes in flight are bounded, so a flood of silent
// connections holds a bounded number of sockets for a bounded time. The
// dialing node checks the server's certificate the same way and, when its
// configuration names the server at that address, that the certificate
// names that server; so a farm started on a reused address, or a gossiped
// Raft address that points at another node, is refused. The certificate
// source is read at every handshake, so a reloaded certificate applies to
// the next connection.
//
// # Storage that fails loudly
//
// DataDir/raft holds the write-ahead log (raft-wal, which preallocates each
// 64 MiB segment when it opens it, so a data directory needs about 128 MiB
// free: the segment in use and the next), two snapshots and the log mark,
// LogMarkFile: the highest index and term this node stored, checksummed and
// replaced atomically. New refuses, with ErrStorageDamaged naming the file
// and the recovery, a log that ends short of the mark, forgot its term, has
// a gap or an entry it cannot read, or lost raft-wal's metadata database,
// before raft-wal would delete anything (storage.go). A torn final write,
// which a crash can leave, was never counted and recovers as before.
//
// A node that starts without raft state reports Bootstrapped only once its
// state is verified (its own bootstrap, a peers file, the leader's state
// message showing it outside the configuration, or, for a member of the
// initial bootstrap that the leader reached first, seatGrace without a
// wiped notice after the leader gave it a configuration naming it). The voters remember which
// voters reported raft state; a leader that sees one report none any more
// tells it, and that node shuts raft down and closes Failed with
// ErrWipedVoter (wiped.go). The leader follows a voter to a new raft address
// only with TLS and only when the node there has verified raft state.

// # Gossip is bound to its sender
//
// With Config.TLS set, gossip is authenticated per node, not only by the
// shared key. Every report message, every node's metadata and every state
// message carries a signature by its sender's certificate key (sign.go);
// a receiver takes a report or metadata only if it verifies under a
// certificate naming the node it speaks for, and a state message only if
// it verifies under the leader it names (and that leader is the one, or a
// voter of, the member's last fresh state message). Nodes learn each
// other's certificates, checked by TLS.VerifyPeer, through rate-limited
// cert request and cert messages (certdir.go), and forget those of nodes
// that have left both the member table and the raft configuration;
// bootstrap waits for each
// member's first verified report so that every node decides on the same
// members. The ticket key in a state message is sealed to the recipient's
// certificate key (seal.go). A member's raft address is used, and its
// session address shown by Members, only once a TLS handshake to that raft
// address met a certificate naming the member, and the session address is
// on the raft address's IP or on an IP of the member's certificate
// (addrcheck.go). Only a node that may lead or bootstrap (checkScope)
// checks the others' addresses and fetches their certificates to verify
// their metadata; the others leave those members' reports and addresses
// unverified and unused, so a farm's start costs O(N) handshakes and
// certificate exchanges, not O(N²). Dropped messages are counted in
// Stats.GossipUnauthenticated. Without Config.TLS gossip is as before:
// trusted as far as memberlist's encryption key goes.
//
// # VIP ownership and fencing
//
// Invariant: at no instant do two nodes answer probes on the VIP.
//
// One goroutine owns the VIP. It follows raft's leadership signal and a
// one-second tick. On becoming leader it commits a raft barrier (so the FSM
// is current), calls VIP.Acquire(term) and only then sets the serving state;
// if the barrier has not committed within RaftLease/2 (a busy disk), it
// acquires on its heartbeats' evidence instead, as below.
// On losing leadership it clears the serving state first and then calls
// VIP.Release. It is the only caller of either, in every vip_mode
// (vipowner_test.go checks the whole module), and its serving state is the
// only record of the hold: Shutdown and Leave ask it to let go and wait
// for it. It holds the address only under a leader lease, a deadline on
// the Monotonic scale that raft's heartbeats keep moving forward:
//
//	on becoming leader in term T:
//	  start := Monotonic()
//	  raft.Barrier(...)                   // the FSM is current
//	  deadline = start + RaftLease         // then VIP.Acquire(T)
//	  or, if the barrier is still out after RaftLease/2:
//	  deadline = q + RaftLease, if later than now (q as below)
//	for every AppendEntries the leader sends in T (heartbeats included):
//	  sent := Monotonic()                  // before it is sent
//	  if the follower answers Success in T: latest[follower] = sent
//	deadline = max(deadline, q + RaftLease)
//	  where q is the latest instant that a majority of the voters of the
//	  latest configuration vouch for: the leader itself counts as now, each
//	  other voter as latest[voter] (lease.go, quorumSince)
//
// Serving reports true only while this node holds the VIP, raft still says
// it is leader in the held term, and Monotonic() < deadline. Serving reads
// atomics only, so the probe path can call it for every probe.
//
// No renewal writes anything. raft sends a heartbeat to every follower
// every RaftHeartbeat/10 to /5, and a follower answers it from memory on
// the transport's own goroutine (hashicorp/raft's heartbeat fast path),
// beside, not behind, any log write its main loop is busy with; the
// leader's heartbeat goroutines likewise do not wait for its disk. The
// barrier, a log entry stored on a majority, is committed once per term,
// where the FSM must be current, and a failover does not wait for it for
// more than RaftLease/2. So the lease survives a slow disk on any
// voter (issue 17's busy host: 16 MiB writes with fsync beside the agent)
// and Stats.StoreWrites stays still while it is renewed (lease_test.go).
//
// Why no other node can serve before the deadline. What each voter
// promises: a hashicorp/raft follower that accepts an AppendEntries from
// leader L at instant t records L as its leader and t as its last contact;
// while it knows a leader it rejects every vote request from any other
// candidate (unless L itself asked for a leadership transfer), and it
// forgets L, and may stand for election itself, only when its heartbeat
// timer finds no contact for RaftHeartbeat (the leader watch, watch.go,
// only makes that check run sooner; the rule is raft's). So such a follower
// grants no vote, its own included, before t + RaftHeartbeat. An answer
// with Success to a request sent at sent was produced after the request
// arrived, so t >= sent; each answer is matched to its own request (the
// transport closes a connection whose call failed, so no answer can be
// read for a later request), and a stale message cannot vouch for a later
// instant. Any election needs a majority of the voters, which shares a
// voter with the majority behind q: either a follower that accepted a
// request sent at or after q, which votes for no one before q +
// RaftHeartbeat, or this leader itself, which votes only after leaving the
// leader state, and Serving checks that state. Since RaftLease <
// RaftHeartbeat, no other node can be elected before this node's deadline
// q + RaftLease. The first deadline of a term rests on the barrier in the
// same way: its entry was created after start and is stored by a majority,
// each of which accepted it from this leader after start; or, when the
// barrier is slow, on the heartbeats of the term exactly as a renewal does
// (only answers to requests of term T count, so nothing from an earlier
// term vouches). A leader serving so before its barrier commits answers
// from an FSM that may lack the last entries the previous leader
// committed (a drain, a capacity change, a ticket key rotation made in
// the moments before the failover) until the barrier commits: the
// operator state the answers follow can be that much late, the fencing
// cannot.
//
// Configurations: the majority is taken over raft's latest configuration
// (read without waiting for raft's main loop), the one raft itself counts
// commitment and elections in; raft changes it one server at a time, and
// any majority of two successive configurations share a voter. Standbys
// (non-voters) are never counted: they promise nothing about elections.
//
// What a restarted voter does: it has forgotten the leader it followed and
// would grant votes at once, possibly inside a lease it vouched for just
// before it died. So New, finding existing raft state, waits one
// RaftHeartbeat before starting raft: any vote the restarted node grants
// comes at least RaftHeartbeat after anything it acknowledged. A node with
// no raft state has acknowledged nothing.
//
// Clock rates: the deadline is measured on the leader's monotonic clock
// and each follower's promise on its own, from instants in the same order
// (sent on the leader, then receipt on the follower). The margin
// RaftHeartbeat - RaftLease, half of RaftHeartbeat in every profile,
// covers a difference in clock rates far beyond any real oscillator's
// (which are within a few hundred parts per million) and the time a probe
// answer takes after its Serving check. No bound on message delay is
// needed: a slow answer only makes the lease it brings shorter, or
// useless.
//
// The argument does not use raft's own leader lease, which is set to
// (just under) RaftHeartbeat, the most raft allows: a leader stalled for
// less than that (a busy CPU, a slow disk) stops serving at its deadline
// but stays leader, and serves again with the next heartbeat a majority
// answers, instead of stepping down and costing every new session a
// failover gap. Stats.LeaseLapses counts those stalls.
//
// Consequences. A leader that is paused (SIGSTOP) wakes past its deadline
// and answers nothing until a majority answers a heartbeat sent after it
// woke, which cannot happen if another leader exists (those voters have
// moved to a higher term). A leader cut off from a majority stops serving
// at its deadline, before raft itself steps down (RaftHeartbeat after its
// last contact with a majority); it keeps the address until then. A node
// that sees a higher term while holding stops serving at once (Serving
// compares terms) and the owner releases. Before a graceful leave the
// leader releases the VIP first, and only then asks raft for the
// leadership transfer that bypasses the followers' known-leader rule. A
// single voter is a majority by itself: the owner renews its lease every
// RaftLease/3 from the acknowledgements at hand, which need none then.
//
// If VIP.Acquire fails, the leader retries once a second and, after three
// failures in a row, hands raft leadership to another voter, which may be
// able to hold the address.
//
// raft.VerifyLeader is deliberately not used for the lease: it can count a
// heartbeat response that was in flight before the call (a stale message
// after a pause) and it counts non-voters, so it does not prove that a
// majority of voters heard from the leader after a given instant; the
// lease transport keeps each answer's own send instant instead.
//
// All nodes must run the same timing profile: the argument compares one
// node's RaftLease with the others' RaftHeartbeat. Reports carry
// Timing.Fingerprint, and a member whose fingerprint differs from this
// node's is never bootstrapped with, added to raft or promoted (an error is
// logged). Config.OnVIP lets test harnesses record serving intervals on the
// Monotonic scale.
//
// # Timing profiles
//
//	profile  raft heartbeat/election  lease  commit  watch  probe  probe timeout  suspicion  gossip  publish
//	lan      1s / 1s                  500ms  50ms    off    1s     500ms          4          200ms   250ms
//	fast     300ms / 300ms            150ms  15ms    25ms   200ms  100ms          2          50ms    250ms
//	rapid    100ms / 100ms            50ms   5ms     10ms   100ms  50ms           2          30ms    250ms
//
// lan is the libraries' defaults. The leader watch of fast and rapid
// (Timing.RaftWatch, watch.go) makes a follower stand for election about
// one heartbeat timeout after its leader fell silent instead of one to
// two, the followers one after another in the order of their IDs. The lease rides on
// raft's heartbeats (every RaftHeartbeat/10 to /5 to each follower: 50 to
// 100 small messages a second per follower with rapid) and writes nothing
// to disk, so the profiles differ in network chatter and failover speed,
// not in disk load.
package cluster
