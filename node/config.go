package node

import (
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/usherlb/usher/internal/srclimit"
)

// Config is the agent's configuration as users write it: the schema of the
// configuration file and of the flags. Every field tagged hcl is a key of the
// file and also a command-line flag (see RegisterFlags), with underscores
// turned into dashes. Durations and addresses are strings ("1s", "250ms",
// "10.0.0.1:3479") in both, and secrets may be named by file; Build turns a
// Config into the Runtime the agent runs on (config_build.go).
//
// The cluster keys (bind, advertise, raft_bind, join, bootstrap_expect,
// voter, profile and its per-key overrides, label, encrypt_key,
// respond_from) configure gossip and Raft; a single node is a cluster of one
// (bootstrap_expect 1, nothing to join).
type Config struct {
	// NodeName is the node's unique name in the farm; defaults to the host
	// name.
	NodeName string `hcl:"node_name,optional"`
	// DataDir holds the node's durable state (Raft's log, when clustered).
	DataDir string `hcl:"data_dir,optional"`
	// Bind is the gossip address (memberlist, UDP and TCP). Like every
	// address key it may omit the port, which is then the key's usual one
	// (DefaultGossipPort here; see withPort).
	Bind string `hcl:"bind,optional"`
	// Advertise is the gossip address other members use, if not Bind.
	Advertise string `hcl:"advertise,optional"`
	// RaftBind is the Raft transport's TCP address, one of this node's
	// own (never 0.0.0.0 or ::); empty means the port after Bind's, on
	// Bind's address or, when that is unspecified, on the advertised one.
	RaftBind string `hcl:"raft_bind,optional"`
	// Voter says the node may be one of the Raft voters.
	Voter bool `hcl:"voter,optional"`
	// LeaveOnTerminate makes SIGTERM and SIGINT (Agent.Close) leave the
	// farm before the agent stops: a voter gives up its seat. Without it
	// the agent stops without leaving, and a voter keeps its seat for its
	// restart.
	LeaveOnTerminate bool `hcl:"leave_on_terminate,optional"`
	// SessionAddr is the address the session endpoint listens on: the
	// node's real address, which clients are redirected to.
	SessionAddr string `hcl:"session_addr,optional"`
	// AdvertiseSessionAddr, when set, is the address named in redirects
	// instead of SessionAddr (for a node behind NAT or bound to 0.0.0.0).
	AdvertiseSessionAddr string `hcl:"advertise_session_addr,optional"`
	// VIP is the well-known balancer address probes are sent to.
	VIP string `hcl:"vip,optional"`
	// VIPMode says how the node takes the VIP when it leads: "bind" (the
	// address is already routed to the host; just bind it), "netlink" (add
	// it to Interface and announce it) or "script".
	VIPMode string `hcl:"vip_mode,optional"`
	// Interface is the network interface the VIP is added to in netlink
	// mode.
	Interface string `hcl:"interface,optional"`
	// VIPAcquireScript and VIPReleaseScript are run in script mode.
	VIPAcquireScript string `hcl:"vip_acquire_script,optional"`
	VIPReleaseScript string `hcl:"vip_release_script,optional"`
	// HTTP is the address of the HTTP API; empty disables it. An address
	// other than loopback needs an API token.
	HTTP string `hcl:"http,optional"`
	// APIToken is the API's read token: it lets a request read the session
	// table, and, without APIWriteToken, also write. APITokenFile names a
	// file (mode 0600 or stricter) holding it instead.
	APIToken     string `hcl:"api_token,optional"`
	APITokenFile string `hcl:"api_token_file,optional"`
	// APIWriteToken, when set, is the token every write (drain, undrain,
	// leave) needs; APIWriteTokenFile names a file holding it instead.
	APIWriteToken     string `hcl:"api_write_token,optional"`
	APIWriteTokenFile string `hcl:"api_write_token_file,optional"`
	// APIHosts lists further names the API answers to in the Host header
	// (its own addresses and, on loopback, localhost are always allowed).
	APIHosts []string `hcl:"api_hosts,optional"`
	// APITLS serves the API over HTTPS with the tls block's certificate
	// and key (reloaded with them on SIGHUP). Unset (nil), it is on when
	// the tls block is set and http is not a loopback address, and off
	// otherwise; true without the tls block is an error. Every node of a
	// farm must serve its API the same way: a follower forwards a drain to
	// the leader over HTTPS exactly when its own API is HTTPS.
	APITLS *bool `hcl:"api_tls,optional"`
	// Capacity is the most sessions the node takes.
	Capacity int `hcl:"capacity,optional"`
	// Policy is the assignment policy: least-loaded, p2c, round-robin,
	// random or sticky.
	Policy string `hcl:"policy,optional"`
	// PolicySpread is least-loaded's band, in sessions: new sessions go
	// round robin to the nodes loaded at most this many sessions above the
	// mean, which keeps a burst from herding onto the one node whose
	// report lags. 0 is the default (10); -1 makes least-loaded strict. A
	// farm of small capacities wants a narrow band.
	PolicySpread int `hcl:"policy_spread,optional"`
	// KeepaliveInterval is how often clients send keepalives (USHER-TIMERS).
	KeepaliveInterval string `hcl:"keepalive_interval,optional"`
	// DeadAfter is how long a client waits for keepalive answers before it
	// declares its server dead (USHER-TIMERS).
	DeadAfter string `hcl:"dead_after,optional"`
	// SessionTTL is how long a session lives without a keepalive; empty
	// means DeadAfter.
	SessionTTL string `hcl:"session_ttl,optional"`
	// RequireTicket makes the session endpoint refuse, with a 401 error
	// answer, a new session that presents no valid ticket. On by default:
	// without it anyone can make sessions, the node's load, for free.
	RequireTicket bool `hcl:"require_ticket,optional"`
	// MaxSessions bounds the sessions the session endpoint counts; a new
	// session beyond it is refused (508). 0 means twice Capacity.
	MaxSessions int `hcl:"max_sessions,optional"`
	// MaxSessionsPerSource bounds the sessions counted from one source, an
	// IPv4 address or an IPv6 /56; a new session beyond it is refused
	// (486). 0 means a tenth of Capacity (at least 1).
	MaxSessionsPerSource int `hcl:"max_sessions_per_source,optional"`
	// TicketTTL is how long an issued ticket stays valid.
	TicketTTL string `hcl:"ticket_ttl,optional"`
	// TicketKey is the hex-encoded ticket key: 32 bytes, 64 hex digits,
	// used as they are, so that a service that issues its own tickets
	// (wire.NewTicketer) with the same key is understood. The leader makes
	// its configured key the farm's, replacing a different one; empty
	// leaves the farm's key to the leaders (the first one generates it).
	// TicketKeyFile names a file (mode 0600 or stricter) holding it
	// instead.
	TicketKey     string `hcl:"ticket_key,optional"`
	TicketKeyFile string `hcl:"ticket_key_file,optional"`
	// StockAmplification bounds an answer to a stock STUN or TURN request
	// to this many times the request's size.
	StockAmplification int `hcl:"stock_amplification,optional"`
	// Backups is how many USHER-BACKUP servers a redirect names.
	Backups int `hcl:"backups,optional"`
	// LogLevel is trace, debug, info, warn or error.
	LogLevel string `hcl:"log_level,optional"`
	// LogJSON logs one JSON object per line.
	LogJSON bool `hcl:"log_json,optional"`
	// Profile tunes the cluster's timers: fast, lan or rapid (cluster only).
	Profile string `hcl:"profile,optional"`
	// Join lists the members to join at start (cluster only).
	Join []string `hcl:"join,optional"`
	// BootstrapExpect is how many voters to wait for before the first
	// election (cluster only).
	BootstrapExpect int `hcl:"bootstrap_expect,optional"`
	// Label keeps clusters on one network apart (cluster only).
	Label string `hcl:"label,optional"`
	// EncryptKey is the base64 gossip key (cluster only). EncryptKeyFile
	// names a file (mode 0600 or stricter) holding it instead.
	EncryptKey     string `hcl:"encrypt_key,optional"`
	EncryptKeyFile string `hcl:"encrypt_key_file,optional"`
	// TLS is the tls block: the CA, certificate and key files of Raft's
	// mutual TLS (keys tls.ca_file, tls.cert_file, tls.key_file; flags
	// -tls-ca-file, -tls-cert-file, -tls-key-file).
	TLS TLSConfig `hcl:"tls,block"`
	// TURNAuth is the turn_auth block: strict mode, in which a stock TURN
	// Allocate must present long-term credentials before it is redirected
	// and the redirect is signed (keys turn_auth.realm, turn_auth.secret,
	// turn_auth.secret_file, turn_auth.users; see TURNAuthConfig).
	TURNAuth TURNAuthConfig `hcl:"turn_auth,block"`
	// Insecure lets a farm of several voters (bootstrap_expect above 1) run
	// without encrypt_key or the tls block, open to any host that reaches
	// its gossip and Raft ports; the agent then warns at every start.
	Insecure bool `hcl:"insecure,optional"`
	// RespondFrom says who sends a probe's answer: "leader", or "server"
	// (the leader hands the probe to the assigned node, which answers from
	// its own real address).
	RespondFrom string `hcl:"respond_from,optional"`
	// StockBinding says how the balancer address answers a stock STUN
	// Binding request (one without USHER-SESSION): "answer", as any STUN
	// server does, with a Binding success naming the request's source (what
	// a browser asks its STUN or TURN server for, to learn its
	// server-reflexive candidate), or "redirect", with the 300 an Usher
	// probe gets, which takes a pick.
	StockBinding string `hcl:"stock_binding,optional"`
	// VIPService names the service a stock STUN or TURN request (one
	// without USHER-SESSION) to the balancer address is balanced over: a
	// service block's name, or "default" (the default) for the built-in
	// session endpoint. An Usher probe names its service in USHER-SERVICE.
	VIPService string `hcl:"vip_service,optional"`
	// Services are the service blocks (see ServiceConfig), in the file's
	// order. They are labelled and repeatable, so they are decoded apart
	// from the keys (see decodeService) and have no flags.
	Services []ServiceConfig
	// BalancerTCP says whether the balancer address also answers STUN
	// requests over TCP, for clients whose UDP is blocked (a browser's
	// turn:VIP:3478?transport=tcp): "true" (on the balancer port), "false",
	// or the port number to listen on instead. Unquoted true, false and
	// numbers are accepted in the file.
	BalancerTCP string `hcl:"balancer_tcp,optional"`
	// BalancerTLS, when not zero, is the port on which the balancer
	// address also answers STUN over TLS (a browser's turns:VIP:5349),
	// presenting the certificate in BalancerTLSCertFile with the key in
	// BalancerTLSKeyFile (PEM): the certificate clients check for the
	// balancer address's DNS name. The files are read again at a
	// handshake after either changed. Off (zero) by default.
	BalancerTLS         int    `hcl:"balancer_tls,optional"`
	BalancerTLSCertFile string `hcl:"balancer_tls_cert_file,optional"`
	BalancerTLSKeyFile  string `hcl:"balancer_tls_key_file,optional"`
	// VIPEvents, if set, is a file the agent appends a JSON line to each
	// time it takes or lets go of the balancer address, timed on the host's
	// monotonic clock (for test harnesses and audits).
	VIPEvents string `hcl:"vip_events,optional"`
	// ProbeSockets is how many SO_REUSEPORT sockets answer probes on the
	// balancer address, each with its own goroutine (0, the default: one
	// per CPU).
	ProbeSockets int `hcl:"probe_sockets,optional"`
	// ProbeBatch reads and answers probes in batches (recvmmsg/sendmmsg on
	// Linux; elsewhere one datagram per call), never waiting to fill one.
	// It is on by default: usher-bench part 1 finds it the faster mode.
	ProbeBatch bool `hcl:"probe_batch,optional"`
	// ProbeReadBuffer is the receive buffer of every probe socket, in
	// bytes (0: the kernel's default, about 200 KiB). A larger one absorbs
	// bursts of probes (the clients of a server that died all probe again
	// within a keepalive interval) that the default would partly drop, at
	// the price of a longer queue under sustained overload. With
	// CAP_NET_ADMIN it may exceed net.core.rmem_max; without, the kernel
	// caps it there.
	ProbeReadBuffer int `hcl:"probe_read_buffer,optional"`
	// SourceLimit turns the per-source-prefix rate limits on the balancer
	// address and the session endpoint on ("on") or off ("off").
	SourceLimit string `hcl:"source_limit,optional"`
	// SourceLimitRate and SourceLimitBurst are how many datagrams per
	// second, and at once, one source prefix may have answered on the
	// balancer address (over TCP and TLS: connections).
	SourceLimitRate  int `hcl:"source_limit_rate,optional"`
	SourceLimitBurst int `hcl:"source_limit_burst,optional"`
	// SessionLimitRate and SessionLimitBurst are the same on the session
	// endpoint; zero means twice capacity per keepalive_interval, and
	// twice the rate.
	SessionLimitRate  int `hcl:"session_limit_rate,optional"`
	SessionLimitBurst int `hcl:"session_limit_burst,optional"`
	// SessionRefusalRate bounds the error answers (401, 486, 508) each
	// session endpoint sends per second, from all sources together; a
	// request beyond it is dropped. Zero is unbounded.
	SessionRefusalRate int `hcl:"session_refusal_rate,optional"`
	// SourceLimitIPv4Prefix and SourceLimitIPv6Prefix are the prefix
	// lengths sources are grouped by.
	SourceLimitIPv4Prefix int `hcl:"source_limit_ipv4_prefix,optional"`
	SourceLimitIPv6Prefix int `hcl:"source_limit_ipv6_prefix,optional"`
	// VerifyTimeout is how long the leader waits for a server that a client
	// reported lost to answer before it excludes that server.
	VerifyTimeout string `hcl:"verify_timeout,optional"`
	// OverloadRetryAfter is the USHER-RETRY-AFTER of the balancer's
	// overload answer (508, when no server can take a new session): how
	// long the client library waits before it probes again (at least its
	// own back-off, at most a minute, jittered upwards).
	OverloadRetryAfter string `hcl:"overload_retry_after,optional"`
	// The timing overrides: each replaces one value of Profile when set.
	RaftHeartbeatTimeout string `hcl:"raft_heartbeat_timeout,optional"`
	RaftElectionTimeout  string `hcl:"raft_election_timeout,optional"`
	RaftLeaseTimeout     string `hcl:"raft_lease_timeout,optional"`
	RaftLeaderWatch      string `hcl:"raft_leader_watch,optional"`
	GossipProbeInterval  string `hcl:"gossip_probe_interval,optional"`
	GossipProbeTimeout   string `hcl:"gossip_probe_timeout,optional"`
	GossipSuspicionMult  int    `hcl:"gossip_suspicion_mult,optional"`
	GossipInterval       string `hcl:"gossip_interval,optional"`

	// ranges locates each key that came from a file, for error messages;
	// a flag that overrides a key removes its entry.
	ranges map[string]hcl.Range
}

// DefaultConfig returns the configuration a key takes when neither the file
// nor a flag sets it.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		NodeName:           host,
		DataDir:            "",
		Bind:               "0.0.0.0:7946",
		SessionAddr:        "127.0.0.1:3479",
		VIP:                "127.0.0.100:3478",
		VIPMode:            "bind",
		HTTP:               "127.0.0.1:7480",
		Capacity:           1000,
		Policy:             "least-loaded",
		KeepaliveInterval:  "1s",
		DeadAfter:          "3s",
		TicketTTL:          "1h",
		RequireTicket:      true,
		StockAmplification: 3,
		Backups:            2,
		LogLevel:           "info",
		Profile:            "lan",
		BootstrapExpect:    1,
		Voter:              true,
		LeaveOnTerminate:   true,
		VerifyTimeout:      "500ms",
		OverloadRetryAfter: "2s",
		ProbeBatch:         true,
		RespondFrom:        "leader",
		StockBinding:       "answer",
		BalancerTCP:        "true",
		// See defaultSourceLimitRate.
		SourceLimit:           "on",
		SourceLimitRate:       defaultSourceLimitRate,
		SourceLimitBurst:      defaultSourceLimitBurst,
		SessionRefusalRate:    defaultSessionRefusalRate,
		SourceLimitIPv4Prefix: srclimit.DefaultIPv4Bits,
		SourceLimitIPv6Prefix: srclimit.DefaultIPv6Bits,
	}
}

// DevConfig returns the configuration of `usher agent -dev`: one node that
// leads itself, the balancer address 127.0.0.100:3478 and the session
// endpoint on 127.0.0.1:3479.
func DevConfig() Config {
	c := DefaultConfig()
	if c.NodeName == "" {
		c.NodeName = "dev"
	}
	c.Bind = "127.0.0.1:7946"
	c.SessionAddr = "127.0.0.1:3479"
	c.VIP = "127.0.0.100:3478"
	c.VIPMode = "bind"
	c.Profile = "fast"
	c.BootstrapExpect = 1
	return c
}

// KeyError is a configuration error about one key. When the key's value came
// from a file, Range locates it.
type KeyError struct {
	// Key is the configuration key, such as "dead_after".
	Key string
	// Value is the offending value as written.
	Value string
	// Problem says what is wrong, such as "is not a duration".
	Problem string
	// Range locates the attribute in its file; nil for defaults and flags.
	Range *hcl.Range
}

// Error returns "file:line:col: key: "value" problem", the location left
// out when the value did not come from a file.
func (e *KeyError) Error() string {
	var b strings.Builder
	if e.Range != nil {
		fmt.Fprintf(&b, "%s:%d:%d: ", e.Range.Filename, e.Range.Start.Line, e.Range.Start.Column)
	}
	fmt.Fprintf(&b, "%s: %q %s", e.Key, e.Value, e.Problem)
	return b.String()
}
