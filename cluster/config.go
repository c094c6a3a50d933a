package cluster

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Config configures one cluster agent. Zero values of optional fields take
// the defaults documented on each field.
type Config struct {
	// NodeName is this node's unique name: memberlist name and raft server ID.
	NodeName string
	// BindAddr is the memberlist bind address (UDP and TCP). Port 0 picks a
	// free port (tests); GossipAddr reports the one chosen.
	BindAddr netip.AddrPort
	// AdvertiseAddr is the gossip address other members use; zero means
	// BindAddr. Required when BindAddr is an unspecified address.
	AdvertiseAddr netip.AddrPort
	// RaftBindAddr is the raft TCP transport's bind address: this node's
	// own address, never an unspecified one (Raft listens on one
	// interface, not on all). Port 0 picks a free port (tests); RaftAddr
	// reports the one chosen.
	RaftBindAddr netip.AddrPort
	// RaftAdvertiseAddr is the raft address other voters dial; zero means
	// RaftBindAddr.
	RaftAdvertiseAddr netip.AddrPort
	// TLS, when set, carries every Raft connection over mutual TLS 1.3
	// with this material: a peer must prove a certificate of the farm's
	// CA naming a node of the Raft configuration, or the connection is
	// closed before Raft reads a byte (see transport_tls.go). Nil means
	// plain TCP, which anyone who reaches the Raft port can steer.
	TLS TLS
	// Join is the seed list of host:port gossip addresses.
	Join []string
	// RetryJoinInterval is the pause between join attempts; default 1s.
	// The joiner retries until at least one seed answers, or Shutdown.
	RetryJoinInterval time.Duration
	// Label is the memberlist label: clusters with different labels never merge.
	Label string
	// EncryptKey is an optional 16, 24 or 32-byte AES key for gossip.
	EncryptKey []byte
	// TicketKey, when set, is the farm's ticket key as this node is
	// configured with it: TicketKeySize bytes. A leader with a configured
	// key makes it the farm's (State.TicketKey), replacing a different one;
	// a leader without generates one when the farm has none. Nil leaves
	// the farm's key to the leaders.
	TicketKey []byte
	// DataDir holds raft's write-ahead log and snapshots (DataDir/raft).
	DataDir string
	// BootstrapExpect is the number of raft voters: 1 (single-node dev), 3 or 5.
	BootstrapExpect int
	// Voter says this node may be a raft voter.
	Voter bool
	// Timing holds the timing knobs; the zero value means Profile("lan").
	Timing Timing
	// Logger is the parent logger; nil means hclog.Default().
	Logger hclog.Logger
	// VIP is the balancer address holder; nil means no VIP (tests). Serving
	// still follows leadership and the lease without one.
	VIP VIP
	// OnVIP, if set, is called by the VIP-owner goroutine right after this
	// node starts serving (acquired true) and right after it stops (acquired
	// false). at is the Monotonic instant serving started or ended: for a
	// release it is the earlier of now and the lease deadline, since Serving
	// was already false from the deadline on. Harnesses record these
	// intervals to check that no two nodes ever serve at once. It must not block.
	OnVIP func(acquired bool, term uint64, at time.Duration)
}

// Test hooks: only test files set them. New reads them once, so a cluster
// keeps what they were when it started.
var (
	// testHookWrapStream, if not nil, wraps the raft stream layer of the
	// node named name (tests cut nodes off or slow their links).
	testHookWrapStream func(name string, s raft.StreamLayer) raft.StreamLayer
	// testHookWALSegmentSize, if not 0, replaces raft-wal's 64 MiB segment
	// size (tests seal segments after a few entries).
	testHookWALSegmentSize int
	// testHookWrapLog, if not nil, wraps the raft log store (not the
	// stable store) of the node named name (tests slow its writes).
	testHookWrapLog func(name string, l raft.LogStore) raft.LogStore
	// testHookWrapLeaseAck, if not nil, wraps the function through which
	// the node named name records the AppendEntries its peers accepted
	// (tests withhold a new leader's evidence for its lease).
	testHookWrapLeaseAck func(name string, ack func(id raft.ServerID, term uint64, sent time.Duration)) func(id raft.ServerID, term uint64, sent time.Duration)
)

// DefaultRetryJoinInterval is the default Config.RetryJoinInterval.
const DefaultRetryJoinInterval = time.Second

// maxNodeNameLen bounds Config.NodeName.
const maxNodeNameLen = 128

// maxLabelLen is memberlist's label limit.
const maxLabelLen = 255

// Validate checks the configuration. Errors name the key and the value, for
// example "bootstrap_expect: 2 is not 1, 3 or 5".
func (c *Config) Validate() error {
	switch {
	case c.NodeName == "":
		return fmt.Errorf("node_name: must be set")
	case len(c.NodeName) > maxNodeNameLen:
		return fmt.Errorf("node_name: %q is longer than %d bytes", c.NodeName, maxNodeNameLen)
	case strings.ContainsFunc(c.NodeName, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return fmt.Errorf("node_name: %q contains a space or control character", c.NodeName)
	}
	if !c.BindAddr.IsValid() {
		return fmt.Errorf("bind_addr: %q is not an address:port", c.BindAddr)
	}
	if c.AdvertiseAddr.IsValid() {
		if c.AdvertiseAddr.Addr().IsUnspecified() || c.AdvertiseAddr.Port() == 0 {
			return fmt.Errorf("advertise_addr: %s must name a specific address and port", c.AdvertiseAddr)
		}
	} else if c.BindAddr.Addr().IsUnspecified() {
		return fmt.Errorf("advertise_addr: must be set when bind_addr %s is unspecified", c.BindAddr)
	}
	if !c.RaftBindAddr.IsValid() {
		return fmt.Errorf("raft_bind_addr: %q is not an address:port", c.RaftBindAddr)
	}
	if c.RaftBindAddr.Addr().IsUnspecified() {
		return fmt.Errorf("raft_bind_addr: %s: must be this node's own address, not an unspecified one (Raft would listen on every interface)", c.RaftBindAddr)
	}
	if c.RaftAdvertiseAddr.IsValid() {
		if c.RaftAdvertiseAddr.Addr().IsUnspecified() || c.RaftAdvertiseAddr.Port() == 0 {
			return fmt.Errorf("raft_advertise_addr: %s must name a specific address and port", c.RaftAdvertiseAddr)
		}
	}
	for _, seed := range c.Join {
		if _, _, err := net.SplitHostPort(seed); err != nil {
			return fmt.Errorf("join: %q is not host:port: %w", seed, err)
		}
	}
	if c.RetryJoinInterval < 0 {
		return fmt.Errorf("retry_join_interval: %s is negative", c.RetryJoinInterval)
	}
	if len(c.Label) > maxLabelLen {
		return fmt.Errorf("label: %q is longer than %d bytes", c.Label, maxLabelLen)
	}
	switch len(c.EncryptKey) {
	case 0, 16, 24, 32:
	default:
		return fmt.Errorf("encrypt_key: %d bytes is not 16, 24 or 32", len(c.EncryptKey))
	}
	if len(c.TicketKey) != 0 && len(c.TicketKey) != TicketKeySize {
		return fmt.Errorf("ticket_key: %d bytes is not %d", len(c.TicketKey), TicketKeySize)
	}
	if c.DataDir == "" {
		return fmt.Errorf("data_dir: must be set")
	}
	switch c.BootstrapExpect {
	case 1, 3, 5:
	default:
		return fmt.Errorf("bootstrap_expect: %d is not 1, 3 or 5", c.BootstrapExpect)
	}
	if c.Timing != (Timing{}) {
		if err := c.Timing.validate(); err != nil {
			return err
		}
	}
	return nil
}

// withDefaults returns a copy of c with defaults applied. c must be valid.
func (c Config) withDefaults() Config {
	if c.RetryJoinInterval == 0 {
		c.RetryJoinInterval = DefaultRetryJoinInterval
	}
	if c.Timing == (Timing{}) {
		c.Timing, _ = Profile(ProfileLAN)
	}
	if c.Logger == nil {
		c.Logger = hclog.Default()
	}
	if !c.AdvertiseAddr.IsValid() {
		c.AdvertiseAddr = c.BindAddr
	}
	c.Join = append([]string(nil), c.Join...)
	c.EncryptKey = append([]byte(nil), c.EncryptKey...)
	c.TicketKey = append([]byte(nil), c.TicketKey...)
	return c
}
