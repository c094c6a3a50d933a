// Package health runs a service's health checks, the way Consul does, so
// that the leader sends new clients only to nodes whose services answer.
//
// Each service a node offers (a coturn TURN relay, a game server) has any
// number of checks, configured as labelled HCL blocks that [Spec] decodes:
//
//	check "coturn" {
//	  type     = "stun"
//	  address  = "127.0.0.1:3478"
//	  interval = "250ms"
//	  timeout  = "200ms"
//	}
//
// A check is one of five kinds: "stun" (a Binding request; a success or a
// 401 error response, which is what a TURN server that wants credentials
// answers, passes), "udp" (a datagram that must be answered), "tcp" (a
// connection), "http" (a GET answered 2xx) and "command" (a program that
// exits 0). [Spec.Build] validates a Spec and parses its durations once.
//
// A [Checker] runs one service's checks, one goroutine each: the first run
// at once, then every interval less a little jitter, so a check never runs
// later than its interval says. Each check turns critical after
// failures_before_critical failures in a row and passing again after
// successes_before_passing successes in a row (the pure state machine in
// threshold.go). The service passes only while every check passes, and it
// starts critical: a node that restarts takes no sessions before its server
// has answered once. Options.OnChange fires on every flip so the agent can
// republish its load report at once.
//
// Detection is bounded by construction: a check that was passing when its
// target died fails its next run, at most one interval later, and its
// second within two intervals plus the timeout, so with interval 250ms,
// timeout 200ms and failures_before_critical 2 the service is critical at
// most 700ms after the target died.
package health
