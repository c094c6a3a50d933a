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
// Overlaps check the "never two VIP holders" invariant on recorded holding
// intervals; Percentile (nearest rank) summarises latencies.
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
// mode. Every scenario starts a fresh farm, a prober that sends a fresh
// probe to the VIP every 5 ms from the client host, and client.Dial
// sessions from the client host, then injects its fault USHER_CHAOS_REPS
// times:
//
//   - leader-death: host death of the leader (link down, then SIGKILL; a
//     plain SIGKILL on loop), then a restart under the same name, address
//     and data directory. leader-kill: SIGKILL of the leader's process
//     alone, its host staying up (netns only).
//   - follower-kill: SIGKILL of a follower holding sessions, then restart.
//   - leader-pause: SIGSTOP of the leader until another node serves, then
//     SIGCONT: it wakes still believing it leads.
//   - leader-isolate: the leader cut off from its peers by blackhole routes
//     while the client still reaches it, then healed (netns only).
//   - majority-kill: two of three nodes killed: nobody may serve, the
//     survivor's sessions go on, the dead servers' clients fall back to
//     USHER-BACKUP; then the majority comes back.
//   - drain: a follower with sessions drained through the leader's API.
//   - rolling-restart: every node stopped (SIGTERM) and restarted in turn,
//     the leader last.
//   - quiet, quiet-loaded: no fault for USHER_CHAOS_QUIET (and
//     USHER_CHAOS_LOADED with the probe path offered 90% of its measured
//     capacity): any leader change fails.
//
// Invariants checked in every scenario: no two agents' VIP holding
// intervals (from their -vip-events files, ended at the kill for a killed
// holder) overlap; no probe is answered in an older term after a newer
// term has answered an earlier probe; no answer is larger than its probe
// and every answer is a redirect; no probe is assigned to a dead server
// later than exclusionBound after its death; no agent exits unless the test
// ended it. Scenarios add their own: sessions on servers the fault did not
// touch see no loss and no keepalive silence longer than one interval
// plus slack; a dead server's clients move within the declare-dead timeout
// (plus the failover gap for the leader); nobody serves without a quorum.
// goleak (TestMain) and Farm.Close check that nothing leaked.
//
// USHER_CHAOS_PROFILES (default "fast") and USHER_CHAOS_TOPOLOGIES (default
// both) pick the runs; with USHER_CHAOS_RESULTS set, each scenario writes
// <scenario>-<profile>-<topology>.json there and README.md is rebuilt as a
// table of every result in the directory. scripts/chaos.sh runs the long
// pass into e2e/results.
package e2e
