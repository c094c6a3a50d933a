// Package farm launches farms of Usher agents as processes of a given
// binary. It builds an agent's command line (AgentSpec), makes a farm's
// credentials (CA, node certificates, gossip key: Credentials, with
// package pki in process or with the binary's own `usher tls` and
// `usher keygen` commands), starts processes with their output in log
// files and tracks their exit (Proc, which also starts a command the
// caller built), asks the agents' HTTP APIs (API), and, for a farm on
// loopback, picks free ports and stops the agents by PID (Farm).
//
// `usher demo` (internal/demo/farm.go) and the scale part of the benchmark
// (cmd/usher-bench/bench_scale.go) run a Farm: vip_mode bind, profile
// fast, flags of their own added. The e2e chaos suite
// (e2e/chaos_agents_test.go) builds its agents' command lines with
// AgentSpec, their credentials with Credentials and CLI, asks their APIs
// with API over clients that dial from the agents' network namespaces,
// and starts them with Proc.StartCmd through e2e's own Host and Proc,
// which add the namespace and process-group handling.
package farm
