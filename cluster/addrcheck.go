package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// With Config.TLS a member's report is signed by the member, but an
// insider could still name a third party's address in it. So no node
// uses a member's addresses before it has checked them:
//
//   - The raft address: a TLS handshake to it, presenting this node's
//     certificate and asking for the ALPN protocol alpnVerify, must meet a
//     certificate of this farm naming the member. The accept side
//     (transport_tls.go) completes such a handshake for any node of the
//     farm and closes the connection without handing it to raft. Results
//     are kept per (member, raft address, signing key) and checked again
//     when any of them changes, or after addrRetry when the check failed.
//   - The session address (Report.Service): its IP must be the checked
//     raft address's IP or one of the IP addresses of the member's
//     certificate (`usher tls cert create -ip`).
//
// Members reports a zero Report.Service until both hold, so the farm view
// leaves the member out as one without a session address yet; and raft
// bootstraps with, adds and moves a server only at a checked raft address.
// Only the nodes that may lead or bootstrap make checks (checkScope); on
// the others every member but the node itself has a zero Report.Service.
const alpnVerify = "usher-verify"

// Bounds of the address checks: at most maxAddrChecks in flight, each
// within addrCheckTimeout, a failed one tried again after addrRetry.
const (
	maxAddrChecks    = 4
	addrCheckTimeout = 3 * time.Second
	addrRetry        = 5 * time.Second
)

// addrKey names one address check.
type addrKey struct {
	name, raftAddr string
	key            keyID
}

// addrResult is the state of one address check: done once it finished
// the first time; ok and at are from the last finished check; running
// while a check is in flight.
type addrResult struct {
	done, ok, running bool
	at                time.Time
}

// addrChecks holds the results of the address checks; the maintenance
// goroutine starts them.
type addrChecks struct {
	mu       sync.Mutex
	m        map[addrKey]*addrResult
	inflight int
}

// result returns the check of k, if it was made.
func (a *addrChecks) result(k addrKey) (ok, done bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.m[k]
	if r == nil {
		return false, false
	}
	return r.ok, r.done
}

// raftAddrChecked reports whether e's raft address was checked (always
// true without Config.TLS and for this node), and whether the check is
// over.
func (c *Cluster) raftAddrChecked(e memberEntry) (ok, done bool) {
	if c.auth == nil || e.name == c.cfg.NodeName {
		return true, true
	}
	if e.report.RaftAddr == "" {
		return false, true
	}
	return c.addrs.result(addrKey{e.name, e.report.RaftAddr, e.key})
}

// serviceChecked reports whether e's session address may be named in a
// redirect (see alpnVerify).
func (c *Cluster) serviceChecked(e memberEntry) bool {
	if c.auth == nil || e.name == c.cfg.NodeName || !e.report.Service.IsValid() {
		return true
	}
	if ok, _ := c.raftAddrChecked(e); !ok {
		return false
	}
	ip := e.report.Service.Addr()
	if host, _, err := net.SplitHostPort(e.report.RaftAddr); err == nil {
		if a, err := netip.ParseAddr(host); err == nil && a.Unmap() == ip {
			return true
		}
	}
	cert, ok := c.auth.lookup(e.name, e.key)
	return ok && slices.ContainsFunc(cert.IPAddresses, func(c net.IP) bool {
		a, _ := netip.AddrFromSlice(c)
		return a.Unmap() == ip
	})
}

// addrScope says whose addresses a node checks.
type addrScope int

const (
	checkNone   addrScope = iota // nobody's: this node neither leads nor bootstraps
	checkVoters                  // the voter-eligible members': this node may bootstrap
	checkAll                     // every member's: this node may lead
)

// checkScope returns whose addresses this node checks and whose
// certificates it fetches for their metadata. Only a node in the
// raft configuration (a voter or a standby) can come to lead, and only
// the leader names session addresses in answers and adds raft servers, so
// only such a node checks every member; a voter-eligible node that has not
// bootstrapped checks the voter-eligible members it may bootstrap with.
// Any other node checks none: were every node to check every other, a
// farm's start would cost a TLS handshake per pair of nodes, which at a
// hundred agents keeps a 2-core host busy for tens of seconds and, as
// handshakes time out and are retried, for good.
func (c *Cluster) checkScope() addrScope {
	if _, ok := (*c.voters.Load())[c.cfg.NodeName]; ok {
		return checkAll
	}
	if c.cfg.Voter && !c.bootstrapped.Load() {
		return checkVoters
	}
	return checkNone
}

// checkAddrs starts the address checks that are due, from the
// maintenance goroutine, and forgets those of addresses no member names
// any more.
func (c *Cluster) checkAddrs() {
	if c.auth == nil {
		return
	}
	now := time.Now()
	wanted := map[addrKey]bool{}
	var due []addrKey
	scope := c.checkScope()
	for _, e := range c.members.snapshot() {
		if e.name == c.cfg.NodeName || e.report.RaftAddr == "" || e.reportedAt.IsZero() ||
			scope == checkNone || scope == checkVoters && !e.report.Voter {
			continue
		}
		k := addrKey{e.name, e.report.RaftAddr, e.key}
		wanted[k] = true
		if e.status == Alive {
			due = append(due, k)
		}
	}
	c.addrs.mu.Lock()
	defer c.addrs.mu.Unlock()
	if c.addrs.m == nil {
		c.addrs.m = map[addrKey]*addrResult{}
	}
	for k, r := range c.addrs.m {
		if !wanted[k] && !r.running {
			delete(c.addrs.m, k)
		}
	}
	for _, k := range due {
		r := c.addrs.m[k]
		if r != nil && (r.running || r.ok || now.Sub(r.at) < addrRetry) || c.addrs.inflight >= maxAddrChecks {
			continue
		}
		if r == nil {
			r = &addrResult{}
			c.addrs.m[k] = r
		}
		r.running = true
		c.addrs.inflight++
		c.wg.Add(1)
		go c.checkAddr(k, r)
	}
}

// checkAddr makes one address check and records its result.
func (c *Cluster) checkAddr(k addrKey, r *addrResult) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), addrCheckTimeout)
	defer cancel()
	go func() {
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := dialVerify(ctx, c.cfg.TLS, k.raftAddr, k.name)
	c.addrs.mu.Lock()
	r.done, r.ok, r.running, r.at = true, err == nil, false, time.Now()
	c.addrs.inflight--
	c.addrs.mu.Unlock()
	if err != nil {
		c.logger.Warn("a member's raft address does not answer as the member; its addresses are not used",
			"member", k.name, "raft_addr", k.raftAddr, "error", err)
		return
	}
	c.logger.Debug("checked a member's raft address", "member", k.name, "raft_addr", k.raftAddr)
	c.notifyUpdate()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// dialVerify makes an address check's TLS handshake with the raft
// address addr, which must present a certificate of this farm naming node.
func dialVerify(ctx context.Context, src TLS, addr, node string) error {
	d := tls.Dialer{Config: &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{alpnVerify},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return src.Certificate(), nil
		},
		// The farm's identity is in a URI: VerifyConnection checks the
		// chain itself (as the raft dialer does).
		InsecureSkipVerify: true, //nolint:gosec // VerifyConnection checks the chain against the farm CA
		VerifyConnection: func(cs tls.ConnectionState) error {
			got, err := src.VerifyPeer(cs.PeerCertificates)
			if err != nil {
				return err
			}
			if got != node {
				return fmt.Errorf("the certificate at %s names node %q", addr, got)
			}
			return nil
		},
	}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return conn.Close()
}
