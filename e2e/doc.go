// Package e2e is the test farm for Usher's end-to-end and chaos tests: it
// runs real processes (the built usher binary, or anything else) on
// simulated hosts, breaks those hosts and their links, and provides the
// small pure helpers the invariant checks need. The package holds the
// harness; the scenarios are its tests.
//
// # Hosts
//
// A Farm (NewFarm) is a set of Linux network namespaces: N servers and one
// client, each with a single interface "eth0" (one end of a veth pair),
// all plugged into one bridge. The bridge lives in a namespace of its own,
// so nothing is created in the root namespace except the namespace files
// under /run/netns, and the farm's traffic never leaves its namespaces.
// Building a farm needs root and iproute2's ip; without them NewFarm skips
// the test and says why. LoopFarm (NewLoopFarm) is the unprivileged
// variant: its hosts share the root namespace and differ only by loopback
// address, so processes and protocols can be tested anywhere, but links
// cannot be cut.
//
// A Host runs commands (Command, Start) and test code (Do) inside its
// namespace. Do switches one locked OS thread into the namespace, so a
// socket the test opens there, say a client dialling "from the client
// host", stays in that namespace afterwards. Faults:
//
//   - Host.LinkDown / LinkUp take the host's switch port down and up: a
//     dead host or pulled cable, with packets silently lost both ways.
//   - Host.Isolate / Heal partition a host from chosen peers (all other
//     servers by default) while the client still reaches it: blackhole
//     routes in the host's namespace drop what it sends, and strict
//     reverse-path filtering (enabled in every farm namespace) drops what
//     the peers send it.
//   - Proc.Kill, Stop, Cont and Term crash, pause, resume and stop a
//     process.
//
// # Addressing
//
// Everything comes from 198.18.0.0/15, the block set aside for network
// benchmarks. Farm number i of a test process (counting from 0) gets
// 198.18.(i mod 256).0/24:
//
//	.11, .12, ...   servers h1, h2, ... (at most MaxServers)
//	.100            the VIP; the harness never assigns it, agents do
//	.200            the client
//
// Each farm is a closed world, so farms of different processes may reuse
// a /24 safely. A LoopFarm uses 127.18.(i mod 256).0/24 with the same host
// numbers.
//
// Names: namespaces are "ushe2e-<pid mod 100000>-<i>-<host>" with host
// "br" (the bridge), "h1"... or "cl" (the client). Inside the bridge
// namespace the bridge is "ue2e-br" and each host's port "ue2e-<host>";
// inside a host namespace the interface is "eth0". Interface names thus
// stay within the kernel's 15 characters.
//
// # Time and statistics
//
// Namespaces do not virtualise clocks, so Monotonic (CLOCK_MONOTONIC) read
// in the test agrees with timestamps agents log on any host. Interval and
// Overlaps check the "never two VIP holders" invariant on the holding
// intervals the agents record; Sighting, StaleServing, SharedTerms and
// Served check it on what observers outside the agents saw; Percentile
// (nearest rank) summarises latencies.
//
// # Cleanup guarantees
//
//   - Every process Start launches runs in its own process group and is
//     SIGKILLed by a t.Cleanup if still running; Farm.Close and
//     LoopFarm.Close kill any stragglers. Processes also carry a
//     parent-death signal, so they die with the test process even when it
//     is SIGKILLed or times out.
//   - NewFarm registers Farm.Close with t.Cleanup, which runs whether the
//     test passes, fails or panics. Close deletes every namespace (which
//     deletes the veth pairs and the bridge inside them), then verifies
//     with `ip netns list` that none is left; it is idempotent.
//   - CatchInterrupts, called from TestMain, turns SIGINT and SIGTERM into
//     a full teardown before the process exits.
//   - What a hard kill leaves behind is swept by the next run: the first
//     NewFarm of a process (or SweepStale) deletes every namespace named
//     with Prefix whose owning PID, encoded in the name, no longer exists.
//     Nothing without the prefix is ever touched.
//
// # Chaos suite
//
// TestChaos runs the built usher agent (built once per test process from
// ./cmd/usher, or $USHER_BIN) as a three-node Raft farm on each topology:
// "netns", a Farm with the VIP in netlink mode (the address really moves,
// announced by gratuitous ARP), and "loop", a LoopFarm with the VIP in bind
// mode. The launcher is internal/farm's, which `usher demo` and the
// benchmark use too: it builds each agent's command line (AgentSpec, with
// the suite's own flags added), makes the farm's credentials with the
// binary's own `usher tls` and `usher keygen` commands (Credentials with
// CLI), asks the agents' APIs over clients that dial from each agent's
// host (API), and starts the agents through Host and Proc
// (farm.Proc.StartCmd).
//
// Every scenario starts a fresh farm and three observers on it: a
// prober that sends a fresh padded probe to the VIP every 5 ms from the
// client host; a size prober that sends, from the client host, bare and
// small Usher probes and stock STUN Binding and TURN Allocate requests to
// the VIP, and stock Binding requests and bare keepalives to every
// agent's session endpoint; and a status poller that queries every agent's
// GET /v1/status every 5 ms from the agent's own host. It dials client.Dial
// sessions from the client host, then injects its fault USHER_CHAOS_REPS
// times (the repetitions actually run are what the results report):
//
//   - leader-death: host death of the leader (link down, then SIGKILL; a
//     plain SIGKILL on loop), then a restart under the same name, address
//     and data directory. leader-kill: SIGKILL of the leader's process
//     alone, its host staying up (netns only). The dead leader's sessions
//     must move within the declare-dead timeout plus twice the failover
//     gap plus slack.
//   - follower-kill: SIGKILL of a follower holding sessions, then restart;
//     its sessions must move within the declare-dead timeout plus slack.
//   - leader-pause: SIGSTOP of the leader until another node serves, then
//     SIGCONT: it wakes still believing it leads.
//   - leader-isolate: the leader cut off from its peers by blackhole routes
//     while the client still reaches it, then healed (netns only); nobody
//     may be seen serving its term once its lease is over
//     (served-past-lease), whatever it recorded.
//   - majority-kill: two of three nodes killed: nobody may be seen serving
//     once the old leader's lease is over, the survivor's sessions go on
//     undisturbed, and every session of a dead server falls back to the
//     survivor through USHER-BACKUP within the declare-dead timeout plus
//     one unanswered probe round, and keeps working there; then the
//     majority comes back and the VIP must answer.
//   - drain: a follower with sessions drained through the leader's API;
//     its sessions must move and no probe may be assigned to it.
//   - rolling-restart: every node stopped (SIGTERM) and restarted in turn,
//     the leader last, in USHER_CHAOS_REPS/10 passes (at least one); the
//     stopped node's sessions must move within the declare-dead timeout
//     plus twice the failover gap plus slack of its exit.
//   - service-death: every agent offers service "media" (load source
//     sessions; a stun check every 250 ms, 200 ms timeout, critical after
//     2 failures) backed by a service server on its host, the test binary
//     re-executed to answer STUN Bindings; a probe for the service goes to
//     the VIP every 5 ms. Each host's server in turn, the leader's among
//     them, is SIGKILLed while its agent lives: the last redirect naming
//     it must arrive within 1.5 s of the kill (named-after-death; issue
//     14's bound), the server then restarts and must be named again
//     (not-named-again), and sessions of the default service must not
//     notice.
//   - quiet, quiet-loaded: no fault for USHER_CHAOS_QUIET (and
//     USHER_CHAOS_LOADED with the probe path offered 90% of its measured
//     capacity): any leader change fails, and so does any session
//     disturbed.
//   - busy-host (netns only): the servers run USHER_CHAOS_BUSY_HOGS CPU
//     hogs (default 4) and USHER_CHAOS_BUSY_WRITERS writers (default 2;
//     each writes 16 MiB beside the agents' data directories, fsyncs,
//     truncates and starts again), counted for the whole machine and
//     spread over the server hosts: each is the test binary run again as
//     TestHelperNeighbour, a process of its own killed by PID when the
//     scenario ends. The agents run at the packaged unit's nice -5, as
//     a host that installed the package runs them. With the neighbours
//     running it watches the VIP for USHER_CHAOS_BUSY (default 5s), from
//     a watch process on the client host (the test binary run again as
//     TestHelperWatch: one thread at nice -5, the collector off, its
//     memory locked): the
//     share of probes answered, the longest time without an answer,
//     leader changes (any fails); then it
//     kills the leader's host as leader-death does, the neighbours still
//     running, and records the failover gaps. From a one-minute watch on,
//     fast and rapid must answer 99.9% of the probes with no gap over
//     50 ms, and rapid's failover must keep p50 <= 250 ms and p99 <=
//     400 ms (issue 17). The results carry a "busy" block, and README.md
//     a "Busy hosts" table beside the keepalived-busy runs of
//     TestKeepalivedFailover (USHER_BENCH_KEEPALIVED=1), which put the
//     same neighbours beside keepalived.
//   - flood (netns only; issue 15): three agents, started at the packaged
//     unit's nice -5, and a fourth host, h4, the attacker, running none;
//     the servers route 198.19.0.0/16, the spoofed sources, out of an
//     uplink device of their own that drops what it is given (a veth
//     whose peer is down), so answering a victim costs a server its send
//     and not the victim's receive as well.
//     Legitimate clients (the client library, Retries 3) open 200 sessions/s
//     from the client host, each keeping its server for a second, for
//     USHER_CHAOS_FLOOD (default 3s) with no attack (the baseline), then
//     as long beside each attack in turn: stock STUN Bindings, stock TURN
//     Allocates, padded and bare Usher probes, each from one source, then
//     all four from 1000 spoofed sources, at the saturation rate (the probe
//     path's closed-loop capacity measured first, capped at
//     USHER_CHAOS_FLOOD_CAP, default 20000/s); ticketless keepalives at every
//     session endpoint at that rate; USHER-LOST-SERVER hints naming
//     non-members at 1000/s. The attacks come from a raw socket
//     (IPPROTO_RAW) in h4's namespace whose sources are all in
//     198.19.0.0/16, in a process of their own (the test binary run again
//     as TestHelperFlood) at normal priority. Each window records the legitimate probes answered
//     and sessions set up, setup p50/p99, the leader's CPU
//     (/proc/<pid>/stat) and how every drop, refusal, limit or lost-server
//     counter of /metrics grew, beside the agents' kernels' UDP buffer
//     errors (/proc/<pid>/net/snmp). Acceptance: 99% of the probes answered
//     and setup p99 within twice the baseline's; recorded per attack,
//     enforced from a one-minute window on (`make flood`). The results
//     carry a "flood" block, which usher-bench renders as BENCHMARKS.md's
//     part 6.
//
// Invariants checked in every scenario (chaosCluster.verify), each from a
// named source:
//
//   - vip-overlap: no two agents' VIP holding intervals overlap, as the
//     agents recorded them in their -vip-events files (ended at the kill
//     for a killed holder). This trusts the holders: an agent records its
//     release at its lease deadline at the latest, so one that serves past
//     its lease does not show here.
//   - term-interleave, term-shared: from evidence the agents do not write
//     (Sighting: the VIP's answers and the status polls, each timed by the
//     observer before it asked and when the answer arrived), no node is
//     seen serving an older term after a newer term was seen serving
//     (StaleServing), and no two nodes are seen serving one term
//     (SharedTerms).
//   - amplification, not-redirect, not-binding-success, size-unanswered:
//     every answer the client host receives keeps the size rule (an Usher
//     request's answer no larger than the request, a stock request's at
//     most three times it), every answer at the VIP is a 300 redirect of
//     its request's method but a stock Binding's, which is a Binding
//     success, and every kind of request was answered at least once.
//   - dead-assignment: no probe is assigned to a server later than
//     exclusionBound after its death.
//   - unexpected-exit: no agent exits unless the test ended it.
//
// Scenarios add their own, named above; sessions on servers the fault did
// not touch must see no loss and no keepalive silence longer than one
// interval plus slack (session-disturbed). goleak (TestMain) and
// Farm.Close check that nothing leaked.
//
// USHER_CHAOS_PROFILES (default "fast") and USHER_CHAOS_TOPOLOGIES (default
// both) pick the runs; with USHER_CHAOS_RESULTS set, each scenario writes
// <scenario>-<profile>-<topology>.json there and README.md is rebuilt as a
// table of every result in the directory. scripts/chaos.sh runs the long
// pass into e2e/results.
//
// # Hostile-peer suite
//
// TestHostile (hostile_test.go, its tools in attacker_test.go) runs one
// three-voter farm on a namespace farm of five hosts with the secure
// defaults (Raft over mutual TLS, a gossip key, an API token) and
// respond_from = "server". h4 is the attacker: it holds no certificate,
// key or token. h5 is the insider: it holds the gossip key only. The
// bridge's namespace stands for an attacker on the switch's path. A
// prober sends a padded probe to the VIP every 5 ms from the client host,
// and three sessions keep alive. Each attack runs for USHER_ATTACK_SECONDS
// (default 10): API writes and the session table without a token and with
// a foreign Host header; a Raft RequestVote of term 2^64-1 with the
// leadership-transfer flag; AppendEntries claiming leadership; a vote
// flood; a TCP connection flood on the Raft ports; forged gossip reports
// (a voter's session address pointing at the attacker) and state messages
// (drain, capacity 1, a new ticket key) without the key; captured handoffs
// replayed verbatim from the switch; a foreign farm (its own CA and key)
// started on a drained and stopped voter's address, name and ports; and
// the forged gossip again from the insider, with the key but no
// certificate (dropped: gossip is signed by its sender). After each window it checks that at
// least 99% of the probes sent in it were answered, each by a redirect to
// a farm server and none twice; that every agent's leader, term, voters,
// drain, view (names, addresses, drains, capacities) and members are as
// before; that no session lost its server or went unanswered for the
// declare-dead time; and that the attack reached its
// target and was refused there (the Raft refusal counter, the agents' logs
// of dropped gossip, 401/403 answers, the replay drop counter, the foreign
// agent's refusals), so an attack that sends nothing fails. With
// USHER_ATTACK_RECORD=1 the figures go to e2e/results/security.json;
// `make security` runs the 60-second version.
//
// # Damaged storage
//
// TestDamagedStorage (storage_test.go) runs a three-voter loop farm with
// Raft over mutual TLS and a gossip key, commits drains beyond the
// bootstrap, stops a follower that vouches for its raft state, damages
// its data directory and starts it again on it: truncated-wal cuts the
// newest raft-wal segment to half its data after a SIGTERM, wiped-voter
// empties the directory after a SIGKILL (a SIGTERM would leave the farm,
// and the leader would drop the voter). The agent must exit with status 1
// within 60 s naming cluster.ErrStorageDamaged or cluster.ErrWipedVoter
// and the recovery, while the other two keep a leader and answer at least
// 99% of the probes sent to the VIP.
//
// # TURN with real software
//
// TestTURN (turn_test.go, its tools in coturn_test.go and browser_test.go)
// runs Debian's coturn behind an usher farm: a namespace farm of three
// servers, each running turnserver on its own address, port 3478, UDP and
// TCP (long-term credentials from a shared TURN REST secret, no TLS, no
// CLI, a hundred relay ports of its own from 49200), and an agent that
// offers it as service "turn", checked by a STUN Binding every 250 ms,
// with vip_service = "turn". coturn is installed with apt-get when
// missing; without root the test skips. From the client host:
//
//   - redirect: turnutils_uclient over UDP and over TCP (-t) through the
//     balancer address follows the 300, allocates on a coturn and relays
//     without loss.
//   - browser: headless chromium and firefox-esr, installed on demand
//     (skipped, saying why, when that fails, or with USHER_E2E_BROWSER=0),
//     open a page the test serves from the client host; its two
//     RTCPeerConnections, given the balancer address as stun: and turn:
//     over UDP, then turn: over TCP, with iceTransportPolicy "relay", must
//     open a data channel over a relay allocated on a coturn, and the page
//     POSTs what it saw to the test.
//   - load: 30 allocations are made straight on one coturn; once every
//     agent's view shows them (each agent counts its coturn's relay
//     sockets, the sockets load source), 60 TURN clients come through the
//     balancer and allocate where they are sent: allocations per coturn
//     must end with max/mean at most 1.1.
//   - coturn-death: a follower host's coturn is SIGKILLed while its agent
//     lives; stock Allocates sent every 50 ms must stop naming it within
//     1.5 s, and a uclient session on another coturn must lose nothing.
//     The coturn then restarts and must be named again.
//   - browser-leader-death (browser_death_test.go): both browsers load a
//     page that waits at a gate; the leader agent is SIGKILLed and the
//     gate opened, so the pages' UDP and TCP cases (at once) start
//     gathering while the balancer address has no live holder. The UDP
//     case must succeed by the browsers' own retransmissions; a TCP
//     connection refused in the gap is not retried by either browser, so
//     the page gathers again 500 ms later, which must succeed. The agent
//     then restarts.
//   - browser-host-death: the same with the leader's whole host dead
//     (link down, then the agent killed), its coturn with it: the new
//     leader must send no browser to the dead coturn although its last
//     report is still fresh.
//   - leader-death: the leader agent is SIGKILLed while four uclient
//     clients (UDP and TCP) start around the kill; each must succeed,
//     retrying, within 15 s.
package e2e
