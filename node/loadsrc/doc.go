// Package loadsrc reads the load of the services a node offers (issue 14):
// each service "NAME" { load { ... } } block is a [Spec], and the figure its
// source gives is what the agent reports to the leader, which sends new
// clients to the least-loaded node.
//
// The sources ([Spec].Source):
//
//   - sessions: the built-in endpoint's session table ([Env].Sessions).
//   - push: the application reports its load itself through the agent's
//     PUT /v1/services/NAME/load, which calls [Push.Set]; the client side
//     is package client/loadpush.
//   - prometheus: one metric of a text exposition endpoint, the samples
//     matching the labels summed.
//   - command: a program's first output token; no shell unless asked.
//   - sockets: the kernel's sockets of a port or port range, by sock_diag
//     netlink (Linux only). For coturn, count its relay sockets:
//     protocol = "udp", port_range = its min-port..max-port, state =
//     "bound"; see docs/load-sources.md for why.
//
// Every polled source runs in a [Tracker]: a reading at once and then one
// per interval, each bounded by the timeout. A figure is not OK, and must
// not be balanced on, once failures readings in a row have failed or once
// it is older than 3 × interval; [Status].Reason then says why in a short
// phrase. A [Push] goes stale the same way when no report comes for
// 3 × interval. The state machine behind both is pure (state.go) and
// tested with explicit times.
//
// Of Usher's packages it imports only internal/runcmd (which runs the
// command source), so that the agent, the configuration and tests can all
// use it.
package loadsrc
