package cluster

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// ServiceReport is the load of one named service in a node's report: a
// server the farm balances besides the agent's own session endpoint (a
// TURN relay, a game server), with its own addresses, capacity and load.
// The leader sends a client asking for the service to the least loaded
// node that offers it and accepts.
type ServiceReport struct {
	// Name names the service (1 to MaxServiceNameLen bytes).
	Name string
	// Addr is where clients are redirected; Addr6 is the service's IPv6
	// address when Addr is an IPv4 one and it listens on both.
	Addr, Addr6 netip.AddrPort
	// Sessions and Capacity are the service's load and the most it takes,
	// as its load source reports them.
	Sessions, Capacity uint32
	// Accepted is a monotonic count of sessions the service has accepted,
	// when its load source knows it (the leader reconciles its ledger from
	// it); zero otherwise.
	Accepted uint64
	// Draining says the node takes no new sessions for the service.
	Draining bool
	// Unhealthy says a health check of the service fails.
	Unhealthy bool
	// LoadFailed says the service's load source failed or its figure is
	// stale: the node takes no new sessions for it rather than be balanced
	// on a figure it cannot vouch for.
	LoadFailed bool
	// Domain is the service's DNS name (at most MaxServiceDomainLen
	// bytes), empty for none: the name its TLS certificate carries, which
	// the leader sends as ALTERNATE-DOMAIN to a client it redirects over
	// TLS. It is encoded only when set (flag svcDomain), so a report
	// without one reads as before.
	Domain string
}

// Accepting reports whether the node takes new sessions for the service.
func (s *ServiceReport) Accepting() bool {
	return !s.Draining && !s.Unhealthy && !s.LoadFailed && s.Addr.IsValid()
}

// The limits of Report.Services.
const (
	// MaxServices is the most services one report carries.
	MaxServices = 8
	// MaxServiceNameLen is the longest service name.
	MaxServiceNameLen = 32
	// MaxServiceDomainLen is the longest ServiceReport.Domain.
	MaxServiceDomainLen = 64
)

const (
	svcDraining   = 1 << 0
	svcUnhealthy  = 1 << 1
	svcLoadFailed = 1 << 2
	svcDomain     = 1 << 3 // the entry ends with domainLen(1) domain
	knownSvcFlags = svcDraining | svcUnhealthy | svcLoadFailed | svcDomain
)

// checkServices rejects services a report cannot carry.
func checkServices(svcs []ServiceReport) error {
	if len(svcs) > MaxServices {
		return fmt.Errorf("%d services, the limit is %d", len(svcs), MaxServices)
	}
	for i, s := range svcs {
		if len(s.Name) == 0 || len(s.Name) > MaxServiceNameLen {
			return fmt.Errorf("service name %q: must be 1 to %d bytes", s.Name, MaxServiceNameLen)
		}
		if len(s.Domain) > MaxServiceDomainLen {
			return fmt.Errorf("service %q: domain of %d bytes, the limit is %d", s.Name, len(s.Domain), MaxServiceDomainLen)
		}
		for _, o := range svcs[:i] {
			if o.Name == s.Name {
				return fmt.Errorf("service %q named twice", s.Name)
			}
		}
	}
	return nil
}

// appendServices appends the services section of a version 2 report:
//
//	count(1), then per service: nameLen(1) name flags(1) addr addr6
//	sessions(4) capacity(4) accepted(8) [domainLen(1) domain]
//
// each address as appendAddr encodes it; the domain only with the flag
// svcDomain, set when the service has one.
func appendServices(b []byte, svcs []ServiceReport) []byte {
	b = append(b, byte(len(svcs)))
	for _, s := range svcs {
		b = append(b, byte(len(s.Name)))
		b = append(b, s.Name...)
		var flags byte
		if s.Draining {
			flags |= svcDraining
		}
		if s.Unhealthy {
			flags |= svcUnhealthy
		}
		if s.LoadFailed {
			flags |= svcLoadFailed
		}
		if s.Domain != "" {
			flags |= svcDomain
		}
		b = append(b, flags)
		b = appendAddr(b, s.Addr)
		b = appendAddr(b, s.Addr6)
		b = binary.BigEndian.AppendUint32(b, s.Sessions)
		b = binary.BigEndian.AppendUint32(b, s.Capacity)
		b = binary.BigEndian.AppendUint64(b, s.Accepted)
		if s.Domain != "" {
			b = append(b, byte(len(s.Domain)))
			b = append(b, s.Domain...)
		}
	}
	return b
}

// services reads the services section appendServices wrote. It rejects
// more than MaxServices services, empty, long or repeated names, unknown
// flags, an empty or long domain, and an Addr6 that is not IPv6 or comes without Addr.
func (d *decoder) services() ([]ServiceReport, error) {
	n := int(d.byte())
	if d.err != nil {
		return nil, d.err
	}
	if n == 0 || n > MaxServices {
		return nil, fmt.Errorf("%w: %d services", ErrBadReport, n)
	}
	svcs := make([]ServiceReport, 0, min(n, MaxServices))
	for range n {
		var s ServiceReport
		nl := int(d.byte())
		if d.err == nil && (nl == 0 || nl > MaxServiceNameLen) {
			return nil, fmt.Errorf("%w: service name of %d bytes", ErrBadReport, nl)
		}
		s.Name = string(d.bytes(nl))
		flags := d.byte()
		if d.err == nil && flags&^knownSvcFlags != 0 {
			return nil, fmt.Errorf("%w: service %q: unknown flags %#x", ErrBadReport, s.Name, flags)
		}
		s.Draining = flags&svcDraining != 0
		s.Unhealthy = flags&svcUnhealthy != 0
		s.LoadFailed = flags&svcLoadFailed != 0
		s.Addr, s.Addr6 = d.addr(), d.addr()
		s.Sessions, s.Capacity, s.Accepted = d.uint32(), d.uint32(), d.uint64()
		if flags&svcDomain != 0 {
			dl := int(d.byte())
			if d.err == nil && (dl == 0 || dl > MaxServiceDomainLen) {
				return nil, fmt.Errorf("%w: service %q: domain of %d bytes", ErrBadReport, s.Name, dl)
			}
			s.Domain = string(d.bytes(dl))
		}
		if d.err != nil {
			return nil, d.err
		}
		if s.Addr6.IsValid() && (!s.Addr.IsValid() || !s.Addr6.Addr().Is6() || s.Addr.Addr().Is6()) {
			return nil, fmt.Errorf("%w: service %q: second address %v beside %v", ErrBadReport, s.Name, s.Addr6, s.Addr)
		}
		svcs = append(svcs, s)
	}
	if err := checkServices(svcs); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadReport, err)
	}
	return svcs, nil
}

// FindService returns the report's service named name, if it has one.
func (r *Report) FindService(name string) (ServiceReport, bool) {
	for _, s := range r.Services {
		if s.Name == name {
			return s, true
		}
	}
	return ServiceReport{}, false
}
