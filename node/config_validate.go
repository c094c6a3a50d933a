package node

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// maxProbeReadBuffer bounds probe_read_buffer: 256 MiB of queued probes is
// minutes of work, never a sensible queue.
const maxProbeReadBuffer = 256 << 20

// maxOverloadRetryAfter bounds overload_retry_after: the client library
// waits at most a minute after an overload answer (client.MaxRetryAfter),
// so a longer one would only mislead whoever reads the configuration.
const maxOverloadRetryAfter = time.Minute

// Validate checks a built configuration and returns every problem found,
// each a *KeyError naming the key and its value as written (joined with
// errors.Join). It only compares values: it parses nothing, fills in no
// default and reads no file (Build does, then calls it).
func (r *Runtime) Validate() error {
	l := &problemList{ranges: r.ranges}
	r.check(l.bad)
	return l.err()
}

// check reports every problem of r to bad, one group of keys after the
// other.
func (r *Runtime) check(bad func(key, value, problem string)) {
	r.checkAddrs(bad)
	r.checkAPI(bad)
	r.checkVIP(bad)
	r.checkLimits(bad)
	r.checkSourceLimits(bad)
	r.checkTimers(bad)
	r.checkCluster(bad)
	r.checkServices(bad)
}

// checkAddrs checks the node's name and addresses.
func (r *Runtime) checkAddrs(bad func(key, value, problem string)) {
	p := r.Parsed
	switch {
	case r.NodeName == "":
		bad("node_name", r.NodeName, "must not be empty")
	case strings.Contains(r.NodeName, "/"):
		bad("node_name", r.NodeName, "must not contain '/' (a drain of one service is NODE/SERVICE)")
	}
	if r.AdvertiseSessionAddr != "" && !specific(p.AdvertiseSessionAddr) {
		bad("advertise_session_addr", r.AdvertiseSessionAddr, "must name a specific address and port")
	}
	if p.VIP.IsValid() && p.VIP.Addr().IsUnspecified() {
		bad("vip", r.VIP, "must be a specific address")
	}
	if r.Advertise != "" && !specific(p.Advertise) {
		bad("advertise", r.Advertise, "must name a specific address and port")
	}
	if p.Bind.IsValid() && p.Bind.Addr().IsUnspecified() && !p.Advertise.IsValid() {
		bad("advertise", r.Advertise, "must be set when bind and session_addr are unspecified addresses")
	}
	if p.RaftBind.IsValid() && p.RaftBind.Addr().IsUnspecified() {
		v := r.RaftBind
		if v == "" {
			v = p.RaftBind.String()
		}
		bad("raft_bind", v, "must be this node's own address, not an unspecified one (Raft would listen on every interface)")
	}
}

// specific reports whether ap names one address and a port.
func specific(ap netip.AddrPort) bool {
	return ap.IsValid() && !ap.Addr().IsUnspecified() && ap.Port() != 0
}

// checkVIP checks how the node takes the balancer address, who answers
// probes and how it answers stock Binding requests.
func (r *Runtime) checkVIP(bad func(key, value, problem string)) {
	switch r.VIPMode {
	case "bind", "script", "netlink":
	default:
		bad("vip_mode", r.VIPMode, `is not one of "bind", "netlink", "script"`)
	}
	if r.VIPMode == "netlink" && r.Interface == "" {
		bad("interface", r.Interface, `must be set when vip_mode is "netlink"`)
	}
	if r.VIPMode == "script" && r.VIPAcquireScript == "" {
		bad("vip_acquire_script", r.VIPAcquireScript, `must be set when vip_mode is "script"`)
	}
	if r.VIPMode == "script" && r.VIPReleaseScript == "" {
		bad("vip_release_script", r.VIPReleaseScript, `must be set when vip_mode is "script"`)
	}
	if r.RespondFrom != "leader" && r.RespondFrom != "server" {
		bad("respond_from", r.RespondFrom, `is not "leader" or "server"`)
	}
	if r.StockBinding != "answer" && r.StockBinding != "redirect" {
		bad("stock_binding", r.StockBinding, `is not "answer" or "redirect"`)
	}
	if _, _, ok := r.balancerTCP(); !ok {
		bad("balancer_tcp", r.BalancerTCP, `is not "true", "false" or a port number`)
	}
	r.checkBalancerTLS(bad)
}

// balancerTCP parses balancer_tcp: whether the balancer address answers
// over TCP, and on which port (zero: the balancer port). ok is false when
// the value is none of "true", "false" or a port from 1 to 65535.
func (c *Config) balancerTCP() (on bool, port uint16, ok bool) {
	switch c.BalancerTCP {
	case "true":
		return true, 0, true
	case "false":
		return false, 0, true
	}
	n, err := strconv.ParseUint(c.BalancerTCP, 10, 16)
	if err != nil || n == 0 {
		return false, 0, false
	}
	return true, uint16(n), true
}

// checkLimits checks the counts and sizes.
func (r *Runtime) checkLimits(bad func(key, value, problem string)) {
	if r.Capacity < 1 {
		bad("capacity", strconv.Itoa(r.Capacity), "must be at least 1")
	}
	if r.PolicySpread < -1 {
		bad("policy_spread", strconv.Itoa(r.PolicySpread), "must be -1 (strict), 0 (the default band) or more")
	}
	if r.MaxSessions < 0 {
		bad("max_sessions", strconv.Itoa(r.MaxSessions), "must be 0 (twice capacity) or more")
	}
	if r.MaxSessionsPerSource < 0 {
		bad("max_sessions_per_source", strconv.Itoa(r.MaxSessionsPerSource), "must be 0 (a tenth of capacity) or more")
	}
	if r.StockAmplification < 1 {
		bad("stock_amplification", strconv.Itoa(r.StockAmplification), "must be at least 1")
	}
	if r.ProbeSockets < 0 || r.ProbeSockets > 64 {
		bad("probe_sockets", strconv.Itoa(r.ProbeSockets), "must be between 0 (one per CPU) and 64")
	}
	if r.ProbeReadBuffer < 0 || r.ProbeReadBuffer > maxProbeReadBuffer {
		bad("probe_read_buffer", strconv.Itoa(r.ProbeReadBuffer), fmt.Sprintf("must be between 0 (the kernel's default) and %d bytes", maxProbeReadBuffer))
	}
	if r.Backups < 0 || r.Backups > 4 {
		bad("backups", strconv.Itoa(r.Backups), "must be between 0 and 4")
	}
	if r.GossipSuspicionMult < 0 {
		bad("gossip_suspicion_mult", strconv.Itoa(r.GossipSuspicionMult), "must not be negative")
	}
}

// checkTimers checks the durations: each one set is positive, and those
// that bound one another are in order.
func (r *Runtime) checkTimers(bad func(key, value, problem string)) {
	p, t := r.Parsed, r.Parsed.Timing
	for _, d := range []struct {
		key, v string
		d      time.Duration
	}{
		{"keepalive_interval", r.KeepaliveInterval, p.KeepaliveInterval},
		{"dead_after", r.DeadAfter, p.DeadAfter},
		{"session_ttl", r.SessionTTL, p.SessionTTL},
		{"ticket_ttl", r.TicketTTL, p.TicketTTL},
		{"verify_timeout", r.VerifyTimeout, p.VerifyTimeout},
		{"overload_retry_after", r.OverloadRetryAfter, p.OverloadRetryAfter},
		{"raft_heartbeat_timeout", r.RaftHeartbeatTimeout, t.RaftHeartbeat},
		{"raft_election_timeout", r.RaftElectionTimeout, t.RaftElection},
		{"raft_lease_timeout", r.RaftLeaseTimeout, t.RaftLease},
		{"gossip_probe_interval", r.GossipProbeInterval, t.ProbeInterval},
		{"gossip_probe_timeout", r.GossipProbeTimeout, t.ProbeTimeout},
		{"gossip_interval", r.GossipInterval, t.GossipInterval},
	} {
		if d.v != "" && d.d <= 0 {
			bad(d.key, d.v, "must be positive")
		}
	}
	if p.OverloadRetryAfter > maxOverloadRetryAfter || p.OverloadRetryAfter > 0 && p.OverloadRetryAfter < time.Millisecond {
		bad("overload_retry_after", r.OverloadRetryAfter, fmt.Sprintf("must be between 1ms and %v (the client library waits at most that long)", maxOverloadRetryAfter))
	}
	if p.KeepaliveInterval > 0 && p.DeadAfter > 0 && p.DeadAfter < p.KeepaliveInterval {
		bad("dead_after", r.DeadAfter, "must not be shorter than keepalive_interval")
	}
	if p.TicketTTL > 0 && p.TicketTTL < time.Second {
		bad("ticket_ttl", r.TicketTTL, "must be at least 1s")
	}
	if r.RaftLeaderWatch != "" && t.RaftHeartbeat > 0 && (t.RaftWatch < 0 || t.RaftWatch > t.RaftHeartbeat/2) {
		bad("raft_leader_watch", r.RaftLeaderWatch, fmt.Sprintf("must be 0s (off) or at most half of raft_heartbeat_timeout %s", t.RaftHeartbeat))
	}
	if t.RaftHeartbeat > 0 && t.RaftLease >= t.RaftHeartbeat {
		bad("raft_lease_timeout", t.RaftLease.String(), fmt.Sprintf("must be shorter than raft_heartbeat_timeout %s: the gap is what keeps two leaders from answering at once", t.RaftHeartbeat))
	}
	if t.RaftElection < t.RaftHeartbeat {
		bad("raft_election_timeout", t.RaftElection.String(), fmt.Sprintf("must not be shorter than raft_heartbeat_timeout %s", t.RaftHeartbeat))
	}
	if t.ProbeInterval > 0 && t.ProbeTimeout > t.ProbeInterval {
		bad("gossip_probe_timeout", t.ProbeTimeout.String(), fmt.Sprintf("must not be longer than gossip_probe_interval %s", t.ProbeInterval))
	}
}

// checkCluster checks the keys of the farm: its size, its members, and
// what protects its gossip and Raft.
func (r *Runtime) checkCluster(bad func(key, value, problem string)) {
	switch r.BootstrapExpect {
	case 1, 3, 5:
	default:
		bad("bootstrap_expect", strconv.Itoa(r.BootstrapExpect), "is not 1, 3 or 5")
	}
	if r.BootstrapExpect > 1 && r.DataDir == "" {
		bad("data_dir", r.DataDir, "must be set when bootstrap_expect is above 1 (Raft's vote must survive a restart)")
	}
	for _, j := range r.Join {
		if j == "" {
			bad("join", j, "must not hold an empty address")
		}
	}
	if r.BootstrapExpect <= 1 || r.Insecure {
		return
	}
	if r.Parsed.EncryptKey == nil && r.EncryptKeyFile == "" {
		bad("encrypt_key", "", "must be set (or encrypt_key_file) when bootstrap_expect is above 1, or any host that reaches the gossip port can forge members (`usher keygen` makes one); insecure = true runs without")
	}
	if !r.TLS.enabled() {
		bad("tls", "", "must be set (ca_file, cert_file, key_file) when bootstrap_expect is above 1, or any host that reaches the Raft port can steer or brick the farm (`usher tls -h`); insecure = true runs without")
	}
}
