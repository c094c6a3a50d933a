package assign

import (
	"fmt"
	"strconv"
)

// Policy selects how an [Assigner] chooses among eligible servers.
type Policy uint8

// The policies. The zero value is LeastLoaded.
const (
	// LeastLoaded picks the eligible node with the lowest
	// (sessions+pending)/capacity, breaking ties at random.
	LeastLoaded Policy = iota
	// P2C picks two distinct eligible nodes at random and takes the less
	// loaded one (the "power of two choices").
	P2C
	// RoundRobin takes eligible nodes in turn, in ID order. The cursor is
	// the last node picked, so it survives view changes.
	RoundRobin
	// Random picks uniformly among eligible nodes.
	Random
	// Sticky uses rendezvous (highest random weight) hashing of the session
	// ID and node ID, so a session maps to the same node on every leader and
	// moves only when that node stops being eligible.
	Sticky
)

var policyNames = [...]string{
	LeastLoaded: "least-loaded",
	P2C:         "p2c",
	RoundRobin:  "round-robin",
	Random:      "random",
	Sticky:      "sticky",
}

// String returns the policy's configuration name, such as "least-loaded".
func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return "policy(" + strconv.Itoa(int(p)) + ")"
}

// ParsePolicy parses a policy's configuration name: "least-loaded", "p2c",
// "round-robin", "random" or "sticky".
func ParsePolicy(s string) (Policy, error) {
	for p, name := range policyNames {
		if s == name {
			return Policy(p), nil
		}
	}
	return 0, fmt.Errorf("assign: unknown policy %q (want least-loaded, p2c, round-robin, random or sticky)", s)
}

// MarshalText implements encoding.TextMarshaler with the configuration name.
func (p Policy) MarshalText() ([]byte, error) {
	if int(p) >= len(policyNames) {
		return nil, fmt.Errorf("assign: unknown policy %d", uint8(p))
	}
	return []byte(policyNames[p]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler via [ParsePolicy].
func (p *Policy) UnmarshalText(b []byte) error {
	v, err := ParsePolicy(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
