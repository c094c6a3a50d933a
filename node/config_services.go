package node

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"

	"github.com/usherlb/usher/cluster"
	"github.com/usherlb/usher/node/health"
	"github.com/usherlb/usher/node/loadsrc"
)

// ServiceConfig is one `service "NAME" { ... }` block: a server the farm
// balances besides the agent's own session endpoint (a TURN relay, a game
// server), with its addresses, capacity, load source and health checks.
type ServiceConfig struct {
	// Name is the block's label: what a probe's USHER-SERVICE names, and
	// what vip_service and the API call the service.
	Name string `hcl:"name,label"`
	// Address is the host:port clients are redirected to (an IP address,
	// not a host name: a redirect carries an address).
	Address string `hcl:"address"`
	// AddressV6 is the service's IPv6 address when Address is an IPv4
	// one and it listens on both; IPv6 clients are sent there.
	AddressV6 string `hcl:"address_v6,optional"`
	// Domain is the service's DNS name on this node, the name its TLS
	// certificate carries (at most 64 bytes). A client the balancer
	// redirects over TLS (balancer_tls) gets it as ALTERNATE-DOMAIN, to
	// check the alternate's certificate against.
	Domain string `hcl:"domain,optional"`
	// Capacity is the most sessions the service takes on this node, unless
	// its load source gives a capacity of its own.
	Capacity int `hcl:"capacity,optional"`
	// Load says where the service's load figure comes from (required).
	Load *loadsrc.Spec `hcl:"load,block"`
	// Checks are the service's health checks: while any fails, the node
	// takes no new sessions for it.
	Checks []health.Spec `hcl:"check,block"`

	fromFlag bool // set by -service: a capacity left out is the node's
}

// Service is a service block as the agent runs it (see ServiceConfig).
type Service struct {
	Name        string
	Addr, Addr6 netip.AddrPort
	Domain      string
	Capacity    int
	Checks      []health.Check
	Load        loadsrc.Settings
	LoadSpec    loadsrc.Spec // started by the agent (Spec.Build)
}

// serviceBlock is the HCL header of a service block.
var serviceBlock = hcl.BlockHeaderSchema{Type: "service", LabelNames: []string{"name"}}

// decodeService decodes one service block and appends it to c.Services.
func (c *Config) decodeService(b *hcl.Block, src []byte) error {
	var s ServiceConfig
	if diags := gohcl.DecodeBody(b.Body, nil, &s); diags.HasErrors() {
		return diagError(diags, src)
	}
	s.Name = b.Labels[0]
	c.Services = append(c.Services, s)
	return nil
}

// parseServices parses the service blocks; a problem is reported under the
// key service.NAME.KEY.
func (c *Config) parseServices(p *Parsed, bad func(key, value, problem string)) {
	for _, s := range c.Services {
		key := func(k string) string { return "service." + s.Name + "." + k }
		svc := Service{Name: s.Name, Capacity: s.Capacity, Domain: s.Domain}
		if s.fromFlag && s.Capacity == 0 {
			svc.Capacity = c.Capacity
		}
		var err error
		if svc.Addr, err = netip.ParseAddrPort(s.Address); err != nil {
			bad(key("address"), s.Address, "is not an IP address and port")
		}
		if s.AddressV6 != "" {
			if svc.Addr6, err = netip.ParseAddrPort(s.AddressV6); err != nil {
				bad(key("address_v6"), s.AddressV6, "is not an IP address and port")
			}
		}
		if svc.Checks, err = health.BuildAll(s.Checks); err != nil {
			bad(key("check"), "", err.Error())
		}
		if s.Load == nil {
			bad(key("load"), "", "is required: the block naming the service's load source (source = sockets, push, prometheus, command or sessions)")
		} else {
			svc.LoadSpec = *s.Load
			if svc.Load, err = s.Load.Validate(); err != nil {
				bad(key("load"), s.Load.Source, err.Error())
			}
		}
		p.Services = append(p.Services, svc)
	}
}

// checkServices checks the service blocks and vip_service.
func (r *Runtime) checkServices(bad func(key, value, problem string)) {
	if len(r.Parsed.Services) > cluster.MaxServices {
		bad("service", strconv.Itoa(len(r.Parsed.Services)), fmt.Sprintf("at most %d service blocks", cluster.MaxServices))
	}
	names := map[string]bool{}
	for i, s := range r.Parsed.Services {
		key := func(k string) string { return "service." + s.Name + "." + k }
		switch {
		case !validServiceName(s.Name):
			bad("service", s.Name, fmt.Sprintf("a service name is 1 to %d letters, digits, '-', '_' or '.'", cluster.MaxServiceNameLen))
		case s.Name == defaultService:
			bad("service", s.Name, "is the built-in session endpoint's name")
		case names[s.Name]:
			bad("service", s.Name, "is named twice")
		}
		names[s.Name] = true
		if s.Addr.IsValid() && !specific(s.Addr) {
			bad(key("address"), r.Services[i].Address, "must name a specific address and port")
		}
		if s.Addr6.IsValid() && (!s.Addr6.Addr().Is6() || s.Addr6.Addr().Is4In6() || !s.Addr.Addr().Unmap().Is4() || !specific(s.Addr6)) {
			bad(key("address_v6"), r.Services[i].AddressV6, "must be a specific IPv6 address and port, beside an IPv4 address")
		}
		if s.Domain != "" && !validDomain(s.Domain) {
			bad(key("domain"), s.Domain, fmt.Sprintf("is not a DNS name of at most %d bytes (letters, digits, '-' in dot-separated labels)", cluster.MaxServiceDomainLen))
		}
		if s.Capacity < 1 {
			bad(key("capacity"), strconv.Itoa(s.Capacity), "must be at least 1")
		}
	}
	if r.VIPService != "" && r.VIPService != defaultService && !names[r.VIPService] {
		bad("vip_service", r.VIPService, "names no service block")
	}
	if len(r.Parsed.Services) > 0 && len(names) == len(r.Parsed.Services) {
		if _, err := cluster.EncodeReport(r.worstReport()); err != nil {
			bad("service", strconv.Itoa(len(r.Parsed.Services)), fmt.Sprintf("the node's load report would not fit: %v", err))
		}
	}
}

// worstReport is the largest report the node's configuration can publish.
func (r *Runtime) worstReport() cluster.Report {
	rep := cluster.Report{
		Service:  netip.AddrPortFrom(netip.IPv6Unspecified(), 1),
		RaftAddr: r.Parsed.RaftBind.String(),
		API:      r.HTTP,
	}
	for _, s := range r.Parsed.Services {
		rep.Services = append(rep.Services, cluster.ServiceReport{Name: s.Name, Addr: s.Addr, Addr6: s.Addr6, Domain: s.Domain})
	}
	return rep
}

// defaultService names the built-in session endpoint in USHER-SERVICE and
// vip_service; an empty name means it too.
const defaultService = "default"

// validServiceName reports whether name may name a service.
func validServiceName(name string) bool {
	if len(name) == 0 || len(name) > cluster.MaxServiceNameLen {
		return false
	}
	for _, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

// validDomain reports whether name is a DNS host name a service may give
// (RFC 1123): at most cluster.MaxServiceDomainLen bytes of dot-separated
// labels of 1 to 63 letters, digits and '-', none starting or ending
// with '-'. A trailing dot is refused: the name is compared with a
// certificate's, which has none.
func validDomain(name string) bool {
	if len(name) == 0 || len(name) > cluster.MaxServiceDomainLen {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
			if !ok {
				return false
			}
		}
	}
	return true
}
