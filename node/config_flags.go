package node

import (
	"flag"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// configKey is one configuration key: its name, where its value lives, and
// its one-line help.
type configKey struct {
	name  string
	ptr   any // *string, *int, *bool, **bool (unset: nil), *[]string or *map[string]string into the Config
	usage string
}

// keyGroup is one of KeyGroups and its keys.
type keyGroup struct {
	name string
	keys []configKey
}

// keyGroups lists every configuration key by group, in the order of
// KeyGroups: the order help shows them. A key named block.attr is an
// attribute of a block of the file (tls.ca_file is ca_file in tls {}).
func (c *Config) keyGroups() []keyGroup {
	return []keyGroup{
		{"Node", c.nodeGroup()},
		{"Addresses", c.addressGroup()},
		{"Cluster", c.clusterGroup()},
		{"Security", c.securityGroup()},
		{"Sessions and balancing", c.sessionGroup()},
		{"Limits", c.limitGroup()},
		{"Balancer address", c.balancerGroup()},
		{"HTTP API", c.apiGroup()},
		{"TURN", c.turnGroup()},
		{"Timers", c.timerGroup()},
	}
}

// keys lists every configuration key, in help order. Both the file decoder
// and RegisterFlags are driven by it.
func (c *Config) keys() []configKey {
	var keys []configKey
	for _, g := range c.keyGroups() {
		keys = append(keys, g.keys...)
	}
	return keys
}

// nodeGroup lists the keys of the node itself: its name, state, capacity,
// vote and logs.
func (c *Config) nodeGroup() []configKey {
	return []configKey{
		{"node_name", &c.NodeName, "unique name of this node (default: host name)"},
		{"data_dir", &c.DataDir, "directory for the node's durable state"},
		{"voter", &c.Voter, "this node may be a Raft voter"},
		{"capacity", &c.Capacity, "most sessions this node takes"},
		{"log_level", &c.LogLevel, "log level: trace, debug, info, warn or error"},
		{"log_json", &c.LogJSON, "log JSON lines"},
	}
}

// addressGroup lists the keys of the node's addresses: gossip, Raft, the
// session endpoint, the balancer address and the HTTP API.
func (c *Config) addressGroup() []configKey {
	return []configKey{
		{"bind", &c.Bind, "gossip address (memberlist, UDP and TCP); without a port, 7946"},
		{"advertise", &c.Advertise, "gossip address other members use, if not bind; without a port, bind's"},
		{"raft_bind", &c.RaftBind, "Raft transport address, this node's own (default: bind's address, or advertise's when bind is 0.0.0.0, and bind's port + 1, also the port of an address given without one)"},
		{"session_addr", &c.SessionAddr, "address of the session endpoint: the node's real address; without a port, 3479"},
		{"advertise_session_addr", &c.AdvertiseSessionAddr, "address named in redirects, if not session_addr; without a port, session_addr's"},
		{"vip", &c.VIP, "balancer address (VIP) that probes are sent to; without a port, 3478"},
		{"http", &c.HTTP, "address of the HTTP API (empty disables it; other than loopback needs api_token)"},
	}
}

// clusterGroup lists the keys of how the node joins and leaves the farm and
// who answers probes.
func (c *Config) clusterGroup() []configKey {
	return []configKey{
		{"leave_on_terminate", &c.LeaveOnTerminate, "SIGTERM and SIGINT leave the farm before stopping (a voter gives up its seat); false: stop without leaving, a voter keeps its seat for its restart"},
		{"profile", &c.Profile, "cluster timer profile: fast, lan or rapid"},
		{"join", &c.Join, "address of a member to join, without a port its bind port (this node's); repeatable"},
		{"bootstrap_expect", &c.BootstrapExpect, "voters to wait for before the first election"},
		{"label", &c.Label, "cluster label"},
		{"respond_from", &c.RespondFrom, "who answers probes: leader, or server (the assigned node answers from its own address)"},
	}
}

// securityGroup lists the keys of the farm's secrets: the gossip key, Raft's
// mutual TLS, the ticket key, and the insecure override.
func (c *Config) securityGroup() []configKey {
	return []configKey{
		{"ticket_key", &c.TicketKey, "hex ticket key of 32 bytes; the leader makes it the farm's (default: the first leader generates one)"},
		{"ticket_key_file", &c.TicketKeyFile, "file holding ticket_key (mode 0600)"},
		{"encrypt_key", &c.EncryptKey, "base64 gossip encryption key"},
		{"encrypt_key_file", &c.EncryptKeyFile, "file holding encrypt_key (mode 0600)"},
		{"tls.ca_file", &c.TLS.CAFile, "farm CA certificate (PEM) for Raft's mutual TLS"},
		{"tls.cert_file", &c.TLS.CertFile, "this node's certificate (PEM) naming node_name and the farm (label)"},
		{"tls.key_file", &c.TLS.KeyFile, "this node's private key (PEM), mode 0600"},
		{"insecure", &c.Insecure, "allow bootstrap_expect above 1 without encrypt_key and tls (warns at every start)"},
	}
}

// sessionGroup lists the keys of how sessions are assigned and kept: policy,
// keepalives, tickets, backups and the verifier.
func (c *Config) sessionGroup() []configKey {
	return []configKey{
		{"policy", &c.Policy, "assignment policy: least-loaded, p2c, round-robin, random or sticky"},
		{"policy_spread", &c.PolicySpread, "least-loaded's band above the mean, in sessions (0: 10; -1: strictly the least loaded)"},
		{"keepalive_interval", &c.KeepaliveInterval, "keepalive interval given to clients"},
		{"dead_after", &c.DeadAfter, "silence after which a client declares its server dead"},
		{"session_ttl", &c.SessionTTL, "silence after which a session expires (default: dead_after)"},
		{"require_ticket", &c.RequireTicket, "refuse new sessions without a valid ticket (401); false lets anyone make sessions for free"},
		{"ticket_ttl", &c.TicketTTL, "lifetime of an issued ticket"},
		{"stock_amplification", &c.StockAmplification, "largest answer to a stock STUN/TURN request, as a multiple of its size"},
		{"backups", &c.Backups, "how many USHER-BACKUP servers a redirect names (0-4)"},
		{"verify_timeout", &c.VerifyTimeout, "how long a server a client reported lost may stay silent before the leader excludes it"},
		{"overload_retry_after", &c.OverloadRetryAfter, "how long the balancer's overload answer (508) tells a client to wait before it probes again"},
	}
}

// limitGroup lists the keys that bound sessions and the datagrams a source
// may have answered.
func (c *Config) limitGroup() []configKey {
	return []configKey{
		{"max_sessions", &c.MaxSessions, "most sessions the session endpoint counts; beyond it a new session is refused (508) (0: twice capacity)"},
		{"max_sessions_per_source", &c.MaxSessionsPerSource, "most sessions counted from one IPv4 address or IPv6 /56; beyond it a new session is refused (486) (0: capacity/10, at least 1)"},
		{"source_limit", &c.SourceLimit, "per-source-prefix rate limits on the balancer address and the session endpoint: on or off"},
		{"source_limit_rate", &c.SourceLimitRate, "datagrams (TCP/TLS: connections) per second one source prefix may have answered on the balancer address"},
		{"source_limit_burst", &c.SourceLimitBurst, "datagrams one source prefix may send the balancer address at once"},
		{"session_limit_rate", &c.SessionLimitRate, "datagrams per second one source prefix may have answered by the session endpoint (0: twice capacity per keepalive_interval)"},
		{"session_limit_burst", &c.SessionLimitBurst, "datagrams one source prefix may send the session endpoint at once (0: twice session_limit_rate)"},
		{"session_refusal_rate", &c.SessionRefusalRate, "error answers (401, 486, 508) per second the session endpoint sends from all sources together; beyond it such requests are dropped (0: unbounded)"},
		{"source_limit_ipv4_prefix", &c.SourceLimitIPv4Prefix, "prefix length IPv4 sources are limited by"},
		{"source_limit_ipv6_prefix", &c.SourceLimitIPv6Prefix, "prefix length IPv6 sources are limited by"},
	}
}

// balancerGroup lists the keys of how the balancer address is taken and
// answers: its mode, service, protocols and sockets.
func (c *Config) balancerGroup() []configKey {
	return []configKey{
		{"vip_mode", &c.VIPMode, "how the leader takes the VIP: bind, netlink or script"},
		{"interface", &c.Interface, "network interface for the VIP in netlink mode"},
		{"vip_acquire_script", &c.VIPAcquireScript, "script that takes the VIP in script mode"},
		{"vip_release_script", &c.VIPReleaseScript, "script that lets the VIP go in script mode"},
		{"vip_service", &c.VIPService, "the service block a stock STUN/TURN request to the balancer address is balanced over (default: the built-in session endpoint)"},
		{"stock_binding", &c.StockBinding, "how the balancer address answers a stock STUN Binding request: answer (a Binding success naming its source), or redirect (a 300, as a probe)"},
		{"balancer_tcp", &c.BalancerTCP, "answer STUN over TCP on the balancer address too: true (on its port), false, or the TCP port"},
		{"balancer_tls", &c.BalancerTLS, "answer STUN over TLS on this port of the balancer address too (turns:); 0: off"},
		{"balancer_tls_cert_file", &c.BalancerTLSCertFile, "certificate chain (PEM) balancer_tls presents: the one clients check for the balancer address's name"},
		{"balancer_tls_key_file", &c.BalancerTLSKeyFile, "private key (PEM) of balancer_tls_cert_file, mode 0600"},
		{"vip_events", &c.VIPEvents, "file to append a JSON line to at each take-over and release of the balancer address"},
		{"probe_sockets", &c.ProbeSockets, "SO_REUSEPORT sockets answering probes, each with its own goroutine (0: one per CPU)"},
		{"probe_batch", &c.ProbeBatch, "read and answer probes and keepalives in batches (recvmmsg/sendmmsg on Linux; false: one datagram per system call)"},
		{"probe_read_buffer", &c.ProbeReadBuffer, "receive buffer of every probe socket in bytes (0: the kernel's default)"},
	}
}

// apiGroup lists the keys of the HTTP API's tokens, host names and TLS.
func (c *Config) apiGroup() []configKey {
	return []configKey{
		{"api_token", &c.APIToken, "API token for reading sessions and, without api_write_token, for writes (at least 16 characters)"},
		{"api_token_file", &c.APITokenFile, "file holding api_token (mode 0600)"},
		{"api_write_token", &c.APIWriteToken, "API token every write (drain, leave) needs"},
		{"api_write_token_file", &c.APIWriteTokenFile, "file holding api_write_token (mode 0600)"},
		{"api_hosts", &c.APIHosts, "further host name the API answers to in the Host header; repeatable"},
		{"api_tls", &c.APITLS, "serve the API over HTTPS with the tls block's certificate (default: on when the tls block is set and http is not loopback; the same on every node)"},
	}
}

// turnGroup lists the keys of the strict mode for stock TURN Allocate
// requests (turn_auth).
func (c *Config) turnGroup() []configKey {
	return []configKey{
		{"turn_auth.realm", &c.TURNAuth.Realm, "strict mode: REALM a stock TURN Allocate must authenticate in before it is redirected"},
		{"turn_auth.secret", &c.TURNAuth.Secret, "strict mode: TURN REST shared secret (coturn's static-auth-secret)"},
		{"turn_auth.secret_file", &c.TURNAuth.SecretFile, "file holding turn_auth.secret (mode 0600)"},
		{"turn_auth.users", &c.TURNAuth.Users, "strict mode: static long-term user, name=password; repeatable"},
	}
}

// timerGroup lists the keys that override the profile's Raft and memberlist
// timers.
func (c *Config) timerGroup() []configKey {
	return []configKey{
		{"raft_heartbeat_timeout", &c.RaftHeartbeatTimeout, "override the profile's Raft heartbeat timeout"},
		{"raft_election_timeout", &c.RaftElectionTimeout, "override the profile's Raft election timeout"},
		{"raft_lease_timeout", &c.RaftLeaseTimeout, "override the profile's Raft leader lease (must stay below the heartbeat timeout)"},
		{"raft_leader_watch", &c.RaftLeaderWatch, "override how often a voting follower checks its leader's silence itself (0s: leave it to Raft's randomized timer)"},
		{"gossip_probe_interval", &c.GossipProbeInterval, "override the profile's memberlist probe interval"},
		{"gossip_probe_timeout", &c.GossipProbeTimeout, "override the profile's memberlist probe timeout"},
		{"gossip_suspicion_mult", &c.GossipSuspicionMult, "override the profile's memberlist suspicion multiplier (0: the profile's)"},
		{"gossip_interval", &c.GossipInterval, "override the profile's memberlist gossip interval"},
	}
}

// RegisterFlags adds one flag per configuration key to fs, named after the
// key with dashes for underscores (session_addr is -session-addr). Parse fs
// after loading the file: a flag that is set overrides the file's value. The
// repeatable -join flag replaces the file's list with the flags' values.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	for _, k := range c.keys() {
		var v flag.Value
		switch p := k.ptr.(type) {
		case *string:
			v = &stringFlag{c: c, key: k.name, p: p}
		case *int:
			v = &intFlag{c: c, key: k.name, p: p}
		case *bool:
			v = &boolFlag{c: c, key: k.name, p: p}
		case **bool:
			v = &optBoolFlag{c: c, key: k.name, p: p}
		case *[]string:
			v = &listFlag{c: c, key: k.name, p: p}
		case *map[string]string:
			v = &mapFlag{c: c, key: k.name, p: p}
		default:
			panic("node: config key " + k.name + " has an unsupported type")
		}
		fs.Var(v, flagName(k.name), k.usage)
		if alias, ok := flagAliases[k.name]; ok {
			fs.Var(v, alias, "short for -"+flagName(k.name))
		}
	}
	fs.Var(&serviceFlag{c: c}, "service", serviceFlagUsage)
}

// flagAliases are short flag names for the keys an operator types most.
var flagAliases = map[string]string{"node_name": "node"}

// flagName is the flag for a configuration key: tls.ca_file is -tls-ca-file.
func flagName(key string) string { return strings.NewReplacer("_", "-", ".", "-").Replace(key) }

// override records that key no longer comes from the file.
func (c *Config) override(key string) { delete(c.ranges, key) }

type stringFlag struct {
	c   *Config
	key string
	p   *string
}

func (f *stringFlag) String() string {
	if f.p == nil {
		return ""
	}
	return *f.p
}

func (f *stringFlag) Set(s string) error {
	*f.p = s
	f.c.override(f.key)
	return nil
}

type intFlag struct {
	c   *Config
	key string
	p   *int
}

func (f *intFlag) String() string {
	if f.p == nil {
		return "0"
	}
	return strconv.Itoa(*f.p)
}

func (f *intFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return err
	}
	*f.p = n
	f.c.override(f.key)
	return nil
}

type boolFlag struct {
	c   *Config
	key string
	p   *bool
}

func (f *boolFlag) String() string {
	if f.p == nil {
		return "false"
	}
	return strconv.FormatBool(*f.p)
}

func (f *boolFlag) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*f.p = v
	f.c.override(f.key)
	return nil
}

func (f *boolFlag) IsBoolFlag() bool { return true }

// optBoolFlag is the flag of a key whose unset value (nil) means a
// default decided from other keys.
type optBoolFlag struct {
	c   *Config
	key string
	p   **bool
}

func (f *optBoolFlag) String() string {
	if f.p == nil || *f.p == nil {
		return ""
	}
	return strconv.FormatBool(**f.p)
}

func (f *optBoolFlag) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*f.p = &v
	f.c.override(f.key)
	return nil
}

func (f *optBoolFlag) IsBoolFlag() bool { return true }

type listFlag struct {
	c    *Config
	key  string
	p    *[]string
	seen bool
}

func (f *listFlag) String() string {
	if f.p == nil {
		return ""
	}
	return strings.Join(*f.p, ",")
}

func (f *listFlag) Set(s string) error {
	if !f.seen {
		*f.p = nil
		f.seen = true
		f.c.override(f.key)
	}
	*f.p = append(*f.p, s)
	return nil
}

// mapFlag is the flag of a map key: each use adds one name=value pair, and
// the first replaces the file's map.
type mapFlag struct {
	c    *Config
	key  string
	p    *map[string]string
	seen bool
}

func (f *mapFlag) String() string {
	if f.p == nil {
		return ""
	}
	names := slices.Sorted(maps.Keys(*f.p))
	return strings.Join(names, ",") // names only: the values may be secrets
}

func (f *mapFlag) Set(s string) error {
	name, v, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("%q is not name=value", s)
	}
	if !f.seen || *f.p == nil {
		*f.p = map[string]string{}
		f.seen = true
		f.c.override(f.key)
	}
	(*f.p)[name] = v
	return nil
}
