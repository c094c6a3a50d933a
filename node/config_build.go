package node

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/usherlb/usher/assign"
	"github.com/usherlb/usher/cluster"
	"github.com/usherlb/usher/internal/pki"
)

// Runtime is the configuration the agent runs on, built from a Config by
// Build: the keys as written (names, modes, counts, lists), and in Parsed
// the typed values derived from them, with the defaults that depend on
// other keys filled in and the secrets loaded from their files.
type Runtime struct {
	// Config is the schema the runtime configuration was built from.
	Config
	// Parsed holds the values Build derived from Config.
	Parsed Parsed
}

// Parsed holds the typed values Build derives from a Config: parsed
// addresses and durations, the defaults that depend on other keys, and the
// secrets, read from their files when named by one.
type Parsed struct {
	SessionAddr          netip.AddrPort
	AdvertiseSessionAddr netip.AddrPort // zero when not set
	VIP                  netip.AddrPort
	Policy               assign.Policy
	KeepaliveInterval    time.Duration
	DeadAfter            time.Duration
	SessionTTL           time.Duration // dead_after when session_ttl is not set
	TicketTTL            time.Duration
	VerifyTimeout        time.Duration
	OverloadRetryAfter   time.Duration
	TicketKey            []byte // nil when not set
	LogLevel             hclog.Level
	Bind                 netip.AddrPort
	Advertise            netip.AddrPort // derived from session_addr when bind is unspecified
	RaftBind             netip.AddrPort // derived from bind (and advertise) when not set
	EncryptKey           []byte         // nil when not set
	TLS                  *pki.Bundle    // nil without the tls block
	TURNAuth             *TURNAuth      // nil without the turn_auth block
	Timing               cluster.Timing // the profile with every override applied
	APIReadToken         string         // empty: reads need no token
	APIWriteToken        string         // empty: writes need no token (loopback only)
	APITLS               bool           // the API serves HTTPS (api_tls, or its default)
	Services             []Service      // the service blocks, in the file's order

	// apiLoopback says the HTTP API listens on a loopback address.
	apiLoopback bool
}

// problemList collects the problems found with a configuration, one
// *KeyError each, locating every key that came from a file.
type problemList struct {
	ranges map[string]hcl.Range
	errs   []*KeyError
}

// bad records a problem with key, whose value is written as value.
func (l *problemList) bad(key, value, problem string) {
	e := &KeyError{Key: key, Value: value, Problem: problem}
	if r, ok := l.ranges[key]; ok {
		e.Range = &r
	}
	l.errs = append(l.errs, e)
}

// has reports whether a problem with key was recorded.
func (l *problemList) has(key string) bool {
	for _, e := range l.errs {
		if e.Key == key {
			return true
		}
	}
	return false
}

// err joins the problems into one error, nil when there are none.
func (l *problemList) err() error {
	errs := make([]error, len(l.errs))
	for i, e := range l.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// Build turns the configuration as written into the Runtime the agent runs
// on: it parses every address, duration and named value, fills in the
// defaults that depend on other keys, loads the secrets and the tls block's
// files, and then checks the result with Runtime.Validate. It returns every
// problem found, each a *KeyError naming the key and its value (joined with
// errors.Join); a key that does not parse is not checked further.
func (c *Config) Build() (Runtime, error) {
	parse := &problemList{ranges: c.ranges}
	r := Runtime{Config: *c}
	r.Parsed = c.parseValues(parse.bad)
	c.parseTiming(&r.Parsed, parse.bad)
	c.loadSecrets(&r.Parsed, time.Now(), parse.bad)
	check := &problemList{ranges: c.ranges}
	r.check(check.bad)
	for _, e := range check.errs {
		if !parse.has(e.Key) {
			parse.errs = append(parse.errs, e)
		}
	}
	if err := parse.err(); err != nil {
		return Runtime{}, err
	}
	return r, nil
}

// parseValues parses the addresses, durations and named values other than
// the cluster's timers, and fills in the defaults that depend on other keys.
func (c *Config) parseValues(bad func(key, value, problem string)) Parsed {
	var p Parsed
	// An address without a port takes the key's usual one, as Consul's
	// -bind takes a bare address.
	addr := func(key, v string, optional bool, port uint16) netip.AddrPort {
		if v == "" && optional {
			return netip.AddrPort{}
		}
		ap, err := resolveAddrPort(withPort(v, port))
		if err != nil {
			bad(key, v, "is not an address, with or without a port")
		}
		return ap
	}
	p.SessionAddr = addr("session_addr", c.SessionAddr, false, DefaultSessionPort)
	p.AdvertiseSessionAddr = addr("advertise_session_addr", c.AdvertiseSessionAddr, true, p.SessionAddr.Port())
	p.VIP = addr("vip", c.VIP, false, DefaultVIPPort)
	p.Bind = addr("bind", c.Bind, false, DefaultGossipPort)
	p.Advertise = addr("advertise", c.Advertise, true, p.Bind.Port())
	p.Advertise = defaultAdvertise(p)
	p.RaftBind = c.raftBind(p, bad)
	p.KeepaliveInterval = parseDuration("keepalive_interval", c.KeepaliveInterval, bad)
	p.DeadAfter = parseDuration("dead_after", c.DeadAfter, bad)
	p.SessionTTL = p.DeadAfter
	if c.SessionTTL != "" {
		p.SessionTTL = parseDuration("session_ttl", c.SessionTTL, bad)
	}
	p.TicketTTL = parseDuration("ticket_ttl", c.TicketTTL, bad)
	p.VerifyTimeout = parseDuration("verify_timeout", c.VerifyTimeout, bad)
	p.OverloadRetryAfter = parseDuration("overload_retry_after", c.OverloadRetryAfter, bad)
	pol, err := assign.ParsePolicy(c.Policy)
	if err != nil {
		bad("policy", c.Policy, "is not one of least-loaded, p2c, round-robin, random, sticky")
	}
	p.Policy = pol
	p.LogLevel = hclog.LevelFromString(c.LogLevel)
	if p.LogLevel == hclog.NoLevel {
		bad("log_level", c.LogLevel, "is not one of trace, debug, info, warn, error")
	}
	c.parseAPI(&p, bad)
	c.parseServices(&p, bad)
	return p
}

// parseTiming sets p.Timing to the profile's timers with each override
// that is set applied.
func (c *Config) parseTiming(p *Parsed, bad func(key, value, problem string)) {
	timing, err := cluster.Profile(c.Profile)
	if err != nil {
		bad("profile", c.Profile, `is not one of "fast", "lan", "rapid"`)
	}
	for _, o := range []struct {
		key, v string
		d      *time.Duration
	}{
		{"raft_heartbeat_timeout", c.RaftHeartbeatTimeout, &timing.RaftHeartbeat},
		{"raft_election_timeout", c.RaftElectionTimeout, &timing.RaftElection},
		{"raft_lease_timeout", c.RaftLeaseTimeout, &timing.RaftLease},
		{"raft_leader_watch", c.RaftLeaderWatch, &timing.RaftWatch},
		{"gossip_probe_interval", c.GossipProbeInterval, &timing.ProbeInterval},
		{"gossip_probe_timeout", c.GossipProbeTimeout, &timing.ProbeTimeout},
		{"gossip_interval", c.GossipInterval, &timing.GossipInterval},
	} {
		if o.v != "" {
			*o.d = parseDuration(o.key, o.v, bad)
		}
	}
	if c.GossipSuspicionMult > 0 {
		timing.SuspicionMult = c.GossipSuspicionMult
	}
	p.Timing = timing
}

// loadSecrets reads the gossip and ticket keys, from their files when named
// by one, and the tls block's files, checked at now.
func (c *Config) loadSecrets(p *Parsed, now time.Time, bad func(key, value, problem string)) {
	p.TicketKey = c.ticketKey(bad)
	p.EncryptKey = c.encryptKey(bad)
	if c.TLS.enabled() {
		p.TLS = c.loadTLS(now, bad)
	}
	p.TURNAuth = c.TURNAuth.build(bad)
}

// parseDuration parses the duration v of key; it returns 0 when v is not
// a duration.
func parseDuration(key, v string, bad func(key, value, problem string)) time.Duration {
	d, err := time.ParseDuration(v)
	if err != nil {
		bad(key, v, "is not a duration")
		return 0
	}
	return d
}

// defaultAdvertise returns the gossip address other members use: advertise
// when set, else, when bind is an unspecified address, bind's port on the
// address the node's clients reach (advertise_session_addr, or
// session_addr); invalid when neither is specific.
func defaultAdvertise(p Parsed) netip.AddrPort {
	if p.Advertise.IsValid() || !p.Bind.IsValid() || !p.Bind.Addr().IsUnspecified() {
		return p.Advertise
	}
	real := p.AdvertiseSessionAddr
	if !real.IsValid() {
		real = p.SessionAddr
	}
	if !real.IsValid() || real.Addr().IsUnspecified() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(real.Addr(), p.Bind.Port())
}

// raftBind returns the Raft transport's address: raft_bind, or by default
// the port after bind's on bind's address or, when bind is an unspecified
// address, on the advertised gossip address. Validate refuses an
// unspecified one: Raft never listens on every interface.
func (c *Config) raftBind(p Parsed, bad func(key, value, problem string)) netip.AddrPort {
	if c.RaftBind != "" {
		port := p.Bind.Port() + 1
		if p.Bind.Port() == 0 || port == 0 {
			port = DefaultGossipPort + 1
		}
		ap, err := resolveAddrPort(withPort(c.RaftBind, port))
		if err != nil {
			bad("raft_bind", c.RaftBind, "is not an address, with or without a port")
		}
		return ap
	}
	if !p.Bind.IsValid() {
		return netip.AddrPort{}
	}
	host := p.Bind.Addr()
	if host.IsUnspecified() {
		host = p.Advertise.Addr() // invalid when advertise failed, reported above
	}
	port := p.Bind.Port()
	if port != 0 {
		port++
	}
	return netip.AddrPortFrom(host, port)
}

// The ports an address key takes when its value names none.
const (
	// DefaultGossipPort is bind's port (raft_bind's is the next one).
	DefaultGossipPort = 7946
	// DefaultSessionPort is session_addr's port.
	DefaultSessionPort = 3479
	// DefaultVIPPort is the balancer address's port (STUN's).
	DefaultVIPPort = 3478
)

// withPort returns the address s with port added when s names none: a bare
// IPv4 or IPv6 address (bracketed or not) or a host name. Anything else is
// returned as it is, for resolveAddrPort to judge.
func withPort(s string, port uint16) string {
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s
	}
	host := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if _, err := netip.ParseAddr(host); err == nil || (host != "" && !strings.Contains(host, ":")) {
		return net.JoinHostPort(host, strconv.Itoa(int(port)))
	}
	return s
}

// resolveAddrPort parses host:port, resolving a host name if needed. An
// empty host means the unspecified IPv4 address.
func resolveAddrPort(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if host == "" {
		return netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(pn)), nil
	}
	ua, err := net.ResolveUDPAddr("udp", net.JoinHostPort(host, port))
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}
