// Package client is what a remote computer runs to use a service balanced by
// Usher (claims 35-40 of the design): it probes the well-known balancer
// address, follows the redirect to its assigned server, keeps the session
// alive there, and when the server goes silent, re-probes naming the server
// it lost.
//
// # A session's life
//
// Dial binds one UDP socket and sends a probe (a STUN Binding request built
// by package wire, padded to wire.ProbeSize so the answer may be as large) to
// the balancer address. The answer, a 300 Try Alternate, is matched by
// transaction ID alone, so it is accepted from the balancer address or from
// any other source (the assigned server may answer for the balancer). Its
// ALTERNATE-SERVER becomes the session's server; its USHER-TICKET,
// USHER-TIMERS, USHER-TERM and USHER-BACKUP values are kept. Dial returns
// once assigned.
//
// From then on the session sends the server a keepalive (padded to
// wire.KeepaliveSize, carrying the session ID and the ticket) every
// keepalive interval. An answer refreshes the server's liveness and reports
// the session's public address (Mapped). If no keepalive is answered for the
// declare-dead timeout, the session emits Lost and re-probes the balancer
// naming the lost server in USHER-LOST-SERVER, so that the leader can verify
// and exclude it; the accepted redirect emits Reassigned. An answer carrying
// USHER-DRAIN emits Draining and starts a re-probe at once, while keepalives
// to the draining server go on until the session has moved. A 401 answer to
// a keepalive (the server does not accept the session's ticket) is treated
// as a loss, without naming the server, which is alive.
//
// The session ID is 8 random bytes chosen once by Dial and sent on every
// probe and keepalive, re-probes included, so the balancer can recognise a
// returning session.
//
// # Probing without a session
//
// A Prober (or the one-off Probe) asks the balancer for an assignment and
// returns the redirect (server, backups, term, round-trip time) without
// opening a session: monitoring tools and `usher probe` use it. Its probes
// are retransmitted like a session's and name one session ID per Prober.
//
// # Timers
//
// Every timer is jittered by Options.Jitter (default ±20%) so that many
// clients that lost the same server do not re-probe in lock step.
//
//   - Probe retransmission: a probe is sent up to Options.Retries times
//     (default 5) with the same transaction ID, waiting RTO (default 250ms)
//     after the first transmission and doubling the wait after each one
//     (250ms, 500ms, 1s, 2s, 4s: a round lasts about 7.75s by default).
//   - Keepalive interval and declare-dead timeout: from the assignment's
//     USHER-TIMERS, or Options.KeepaliveInterval (1s) and Options.DeadAfter
//     (3s). A server that died is thus replaced within the declare-dead
//     timeout plus one probe round trip.
//   - Re-probe back-off: after a round that ends without an assignment, the
//     next round starts after ReprobeBackoff (500ms) doubled per consecutive
//     failed round, capped at 10s. Re-probing never gives up; only Close
//     ends it.
//   - Loop guard: a server lost (or seen draining) within Options.LoopGuard
//     (5m) is not accepted again while another server is known (a backup
//     named in an answer, or a server heard of within the window); the
//     round counts as failed and the next names it again. When it is the
//     only server known, it is accepted.
//
// # Failures of the balancer
//
// A term fences stale leaders: an answer whose USHER-TERM is lower than the
// newest term seen is dropped (answers without a term are not compared).
// When a whole re-probe round goes unanswered, the session sends a
// keepalive straight to each USHER-BACKUP server of the last answer; the
// first that answers becomes the server (BackupUsed), and the balancer is
// probed again in later rounds meanwhile. Backups on the loop guard's list
// are skipped, unless every other backup is too: after a second outage the
// server lost in the first may be the one still alive. Dial's first round has no backups
// to fall back on, so it fails with ErrNoAnswer.
//
// # A full farm
//
// When no server can take the session the balancer answers a probe with a
// server error (508 Insufficient Capacity with USHER-RETRY-AFTER from
// Usher; any 5xx counts). That is not a lost answer: the round ends at once,
// without retransmissions, the backups are tried as after a silent round,
// and the next round starts after the retry-after or the re-probe back-off,
// whichever is longer, at most MaxRetryAfter, jittered upwards only (so
// never before the balancer asked). The session emits Overloaded with that
// wait. Dial's first round fails with an *OverloadError instead, which
// matches ErrOverloaded and ErrRefused, so the application knows the farm
// is full and when to try again.
//
// # Concurrency
//
// A Session owns exactly two goroutines: one reads and decodes datagrams,
// the other runs the state machine, which alone sends. Events are delivered
// on a buffered channel and dropped (and counted) rather than ever blocking
// the state machine. Malformed datagrams are dropped and counted. Close
// stops both goroutines, closes the socket, then closes the event channel.
package client
