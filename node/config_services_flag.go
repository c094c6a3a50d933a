package node

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/usherlb/usher/node/health"
	"github.com/usherlb/usher/node/loadsrc"
)

// serviceFlagUsage is the -service flag's help.
const serviceFlagUsage = `a service on the command line, for the one-service case (repeatable; the flags replace the file's service blocks):
NAME=ADDRESS[,capacity=N][,load=push|sessions|relay-ports:LOW-HIGH][,check=stun|tcp]
capacity defaults to the node's capacity; load to push; relay-ports counts a coturn's
relay sockets in that range (sockets source); check probes ADDRESS every 1s`

// serviceFlag is the repeatable -service flag: each value is one service
// block, in a short form. The first value replaces the file's blocks.
type serviceFlag struct {
	c   *Config
	set bool
}

func (f *serviceFlag) String() string {
	if f.c == nil {
		return ""
	}
	var names []string
	for _, s := range f.c.Services {
		names = append(names, s.Name+"="+s.Address)
	}
	return strings.Join(names, " ")
}

func (f *serviceFlag) Set(v string) error {
	s, err := parseServiceFlag(v)
	if err != nil {
		return err
	}
	if !f.set {
		f.c.Services, f.set = nil, true
	}
	f.c.Services = append(f.c.Services, s)
	return nil
}

// parseServiceFlag parses one -service value.
func parseServiceFlag(v string) (ServiceConfig, error) {
	head, rest, _ := strings.Cut(v, ",")
	name, addr, ok := strings.Cut(head, "=")
	if !ok || name == "" || addr == "" {
		return ServiceConfig{}, fmt.Errorf("%q: want NAME=ADDRESS[,key=value...]", v)
	}
	s := ServiceConfig{Name: name, Address: addr, Load: &loadsrc.Spec{Source: loadsrc.KindPush}, fromFlag: true}
	for opt := range strings.SplitSeq(rest, ",") {
		if opt == "" {
			continue
		}
		k, val, _ := strings.Cut(opt, "=")
		if err := s.setFlagOption(k, val); err != nil {
			return ServiceConfig{}, fmt.Errorf("service %s: %s: %w", name, opt, err)
		}
	}
	return s, nil
}

// setFlagOption applies one key=value of a -service value.
func (s *ServiceConfig) setFlagOption(k, v string) error {
	switch k {
	case "capacity":
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("not a whole number")
		}
		s.Capacity = n
	case "load":
		switch kind, ports, _ := strings.Cut(v, ":"); kind {
		case loadsrc.KindPush, loadsrc.KindSessions:
			s.Load = &loadsrc.Spec{Source: kind}
		case "relay-ports":
			s.Load = &loadsrc.Spec{Source: loadsrc.KindSockets, Protocol: "udp", PortRange: ports, State: "bound"}
		default:
			return fmt.Errorf("load is push, sessions or relay-ports:LOW-HIGH")
		}
	case "check":
		if v != string(health.KindSTUN) && v != string(health.KindTCP) {
			return fmt.Errorf("check is stun or tcp")
		}
		s.Checks = append(s.Checks, health.Spec{Name: v, Type: v, Address: s.Address})
	default:
		return fmt.Errorf("unknown key %q (capacity, load, check)", k)
	}
	return nil
}
