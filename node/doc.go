// Package node is the Usher agent: everything one machine of the farm runs.
//
// An [Agent] wires together:
//
//   - the session [Endpoint], a UDP socket on the node's real address. It
//     answers keepalives (STUN Binding requests carrying USHER-SESSION) with
//     XOR-MAPPED-ADDRESS and, while the node drains, USHER-DRAIN; it keeps
//     the session table, whose size is the node's load; and with
//     require_ticket it refuses a session without a valid ticket (a MAC
//     over the session, the client's and the server's addresses and an
//     expiry) with a 401. A stock Binding request gets a plain success: the
//     endpoint is an ordinary STUN server too.
//   - the probe [Responder], a UDP socket on the balancer address (the VIP).
//     It redirects each probe with a 300 Try Alternate naming the server
//     its assign.Assigner picks among those of the probe's address family
//     (an IPv6 client is never sent to an IPv4 server), with a ticket, the keepalive timers, the
//     leadership term and backups as room permits; a stock TURN Allocate
//     gets the minimal redirect. A stock Binding request (no USHER-SESSION)
//     gets what any STUN server sends, a Binding success naming its source,
//     and takes no pick (stock_binding = "answer", the default): a browser
//     asks its STUN or TURN server URL for its server-reflexive candidate
//     that way and ignores a 300. stock_binding = "redirect" redirects it
//     as a probe instead.
//   - the cluster (package cluster): gossip membership, Raft leadership and
//     the one goroutine that takes and lets go of the balancer address. A
//     single node is a cluster of one (bootstrap_expect 1). The agent reports
//     its load to the cluster every 250 ms; the cluster says, lock-free, whether
//     this node may answer probes now and in which term.
//   - the load view: every 250 ms, and whenever membership changes, the
//     gossiped members, with the farm's agreed drains and
//     capacity overrides, become an immutable assign.View published through an
//     atomic pointer. Members that are not alive, or that a client reported
//     lost and the leader's own check found silent, are marked suspect.
//   - the lost-server verifier: a probe naming USHER-LOST-SERVER makes the
//     leader check that server's session endpoint itself; only a server that
//     stays silent for verify_timeout is excluded.
//   - the holder of the balancer address (package node/vip), by vip_mode,
//     behind the cluster's VIP interface: "bind" binds the balancer address
//     (it must already be routed to the host, as 127.0.0.0/8 is on Linux);
//     "netlink" adds it to an interface and announces it; "script" runs the
//     operator's commands. In every mode it starts the responder on the
//     address when it takes it and stops it when it lets go, and only the
//     cluster's VIP owner goroutine makes it do either: the agent ends its
//     hold by shutting the cluster down.
//   - metrics (a Prometheus registry per agent, served at /metrics: the
//     agent's own figures read at each scrape, and a curated set of the
//     cluster's, Raft's and memberlist's go-metrics, bridged from
//     go-metrics' process-wide instance) and the HTTP API (/v1/status,
//     /v1/members, /v1/view, /v1/sessions, /v1/drain, /v1/leave, /v1/reload, /v1/health).
//
// With respond_from = "server" the leader does not answer a probe itself: it
// seals the finished answer in a handoff (wire.Handoff, MACed with the farm's
// key) to the assigned server's session endpoint, which sends it to the
// client from its own address, proving it is alive and reachable. That is
// for Usher probes only: a stock client drops an answer from an address it
// never sent to, so the leader answers stock requests itself.
//
// # Goroutines and ownership
//
// The endpoint runs one goroutine that reads, decides and answers every
// datagram and owns its decoder, encoder and ticketer, plus a sweeper that
// expires silent sessions; the session table is shared with readers under a
// mutex, its counts in atomics. The responder runs one goroutine per socket
// it serves (Serve starts it, Stop ends it, and it may serve again later on a
// new socket, as the VIP comes and goes); that goroutine alone owns the
// Assigner, decoder, encoder and ticketer, so the probe path takes no lock
// and, in steady state, allocates nothing. Both packet paths read and
// write through package internal/udpio: the responder through its raw
// back-ends on Linux (recvfrom and sendto, or recvmmsg and sendmmsg with
// Batch), the endpoint through the net package. It learns of new views by
// comparing the atomic pointer with the one it installed last, and asks a
// [ServingFunc] (the cluster's, reading only atomics) before every answer
// whether the node may answer. The agent runs the view loop, the verifier
// and the HTTP server. Close leaves the cluster, stops every goroutine and
// closes every socket.
//
// # Size rule and drops
//
// Every answer goes to the request's source address only, and is never
// larger than wire.Limit allows: the request's own size for Usher's
// messages, stock_amplification times it for stock STUN and TURN requests.
// A datagram that cannot be answered within those rules, or is malformed,
// is dropped and counted by reason (not_stun, not_request, method,
// attribute, fingerprint, too_large, no_server, not_leader,
// unknown_service, handoff_invalid, handoff_stale, handoff_replay); the
// packet paths count with atomics, and each scrape of /metrics reads the
// counts. A request no server can take
// is not dropped but refused (508, or 500 to a stock Binding, with
// USHER-RETRY-AFTER for an Usher probe; probes_overloaded), and one with
// unknown comprehension-required attributes gets 420 (see
// responder_refuse.go); no_server counts only the refusals that did not fit.
//
// # Configuration
//
// [Config] is the schema users write: every key of the HCL configuration
// file (config.go; the file is read in config_hcl.go), each also a flag
// (config_flags.go, see [Config.RegisterFlags]). [Config.Build]
// (config_build.go) turns it into the [Runtime] the agent runs on: parsed
// addresses and durations, the defaults that depend on other keys, and the
// secrets read from their files (config_secrets.go, config_api.go). It then
// calls [Runtime.Validate] (config_validate.go), which only compares the
// built values. Every problem names the key, its value and, for values
// from a file, file:line:column. The tls block (tls.go) names the CA,
// certificate and key files of Raft's mutual TLS; Build checks them
// against node_name and label, and [Agent.ReloadTLS] puts renewed files
// into use without a restart. A farm of several voters needs encrypt_key
// and the tls block unless insecure = true. A probe naming an USHER-SERVICE
// other than "default" is dropped (unknown_service): one service per agent.
//
// # Files
//
// The probe responder:
//
//   - responder.go: [ResponderConfig], [Responder] and its life (Listen,
//     Serve, Stop, the SO_REUSEPORT siblings), its counts.
//   - responder_decide.go: the per-probe decision, prober.respond: a
//     datagram, its source and the time in; an answer and where it goes,
//     or why there is none, out. It does no I/O.
//   - responder_serve.go: the one serving loop, the same for every
//     back-end of package internal/udpio: read a batch, decide each
//     datagram, write the answers, count.
//
// The session endpoint:
//
//   - endpoint.go: [EndpointConfig], [Endpoint], its read loop and its
//     decisions (keepalives, stock Binding requests, relayed handoffs).
//   - endpoint_sessions.go: the session table, the node's load.
//   - endpoint_replay.go: the handoffs already relayed, never relayed
//     twice.
//
// Shared by both: drops.go (drop reasons and their lock-free counts) and
// ticketkey.go (the farm key tickets and handoffs are made with). The
// rest is the agent: agent.go wires it all, farm.go builds the load view,
// verify.go checks lost servers, config*.go and tls.go hold the
// configuration, api*.go the HTTP API and metrics.go the metrics. The VIP
// holders and their event log are package node/vip.
package node
