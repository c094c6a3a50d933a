// Package farm launches a local farm of Usher agents as processes of a
// given binary, on loopback: it picks free ports, writes the farm's
// credentials (CA, node certificates, gossip key) into a scratch
// directory, starts the agents with their output in log files, asks their
// HTTP APIs, and stops them by PID.
//
// `usher demo` (internal/demo/farm.go) and the scale part of the benchmark
// (cmd/usher-bench/bench_scale.go) run their farms with it. The agents run
// in vip_mode bind with profile fast; callers add flags of their own.
package farm
