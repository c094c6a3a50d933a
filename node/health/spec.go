package health

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"
)

// Kind is what a check does to its target.
type Kind string

// The kinds of check.
const (
	// KindSTUN sends a STUN Binding request over UDP to Address; a Binding
	// success or an error response with code 401 passes.
	KindSTUN Kind = "stun"
	// KindUDP sends Send (or SendHex) to Address over UDP; any reply, or one
	// starting with Expect (or ExpectHex) if set, passes.
	KindUDP Kind = "udp"
	// KindTCP connects to Address over TCP; an accepted connection passes.
	KindTCP Kind = "tcp"
	// KindHTTP sends a GET to URL; a 2xx status passes.
	KindHTTP Kind = "http"
	// KindCommand runs Command; exit status 0 passes.
	KindCommand Kind = "command"
)

// Defaults for the keys a check block leaves out.
const (
	DefaultInterval               = time.Second
	DefaultTimeout                = 500 * time.Millisecond
	DefaultFailuresBeforeCritical = 2
	DefaultSuccessesBeforePassing = 1
)

// Spec is one check as configured: a labelled block
// check "NAME" { type = "stun" ... } that gohcl decodes. Keys a kind does
// not use must be left out. Durations are strings ("250ms"), parsed by
// Build; zero counts take the defaults.
type Spec struct {
	// Name is the block's label; it names the check in errors and reasons
	// and is unique within a service.
	Name string `hcl:"name,label"`
	// Type is the check's Kind: stun, udp, tcp, http or command.
	Type string `hcl:"type"`
	// Address is the host:port a stun, udp or tcp check reaches.
	Address string `hcl:"address,optional"`
	// URL is what an http check GETs (http or https).
	URL string `hcl:"url,optional"`
	// Send is the payload of a udp check; SendHex is the same in hex.
	// Exactly one of them is set.
	Send    string `hcl:"send,optional"`
	SendHex string `hcl:"send_hex,optional"`
	// Expect, or ExpectHex, if set, is a prefix a udp check's reply must
	// start with.
	Expect    string `hcl:"expect,optional"`
	ExpectHex string `hcl:"expect_hex,optional"`
	// Command is the argv of a command check, run without a shell. With
	// Shell it is a single string that /bin/sh -c runs.
	Command []string `hcl:"command,optional"`
	Shell   bool     `hcl:"shell,optional"`
	// Interval is the time between runs (default 1s).
	Interval string `hcl:"interval,optional"`
	// Timeout bounds one run (default 500ms); it must be below Interval.
	Timeout string `hcl:"timeout,optional"`
	// FailuresBeforeCritical is how many failures in a row turn a passing
	// check critical (default 2).
	FailuresBeforeCritical int `hcl:"failures_before_critical,optional"`
	// SuccessesBeforePassing is how many successes in a row turn a critical
	// check passing (default 1).
	SuccessesBeforePassing int `hcl:"successes_before_passing,optional"`
}

// Check is a validated Spec, ready to run: its durations parsed, its
// defaults applied and its payloads decoded.
type Check struct {
	Name    string
	Kind    Kind
	Address string // stun, udp and tcp checks
	URL     string // http checks
	Send    []byte // udp checks: the datagram sent
	Expect  []byte // udp checks: the reply's prefix, nil for any reply
	Command []string
	Shell   bool // Command[0] is run by /bin/sh -c
	// Interval is the time from one run's start to the next, less up to
	// a tenth of it in jitter; Timeout, always below it, bounds one run.
	Interval, Timeout      time.Duration
	FailuresBeforeCritical int
	SuccessesBeforePassing int
}

// String names the check for reasons and logs: check "coturn" (stun
// 10.0.0.7:3478).
func (c Check) String() string {
	target := c.Address
	switch c.Kind {
	case KindHTTP:
		target = c.URL
	case KindCommand:
		if len(c.Command) > 0 {
			target = c.Command[0]
		}
	}
	return fmt.Sprintf("check %q (%s %s)", c.Name, c.Kind, target)
}

// Validate reports what Build would refuse in s.
func (s Spec) Validate() error {
	_, err := s.Build()
	return err
}

// Build validates s and returns the Check it configures. Errors name the
// check, the key and its value, as in: check "coturn": interval "1x": not
// a duration.
func (s Spec) Build() (Check, error) {
	c, err := s.build()
	if err != nil {
		return Check{}, fmt.Errorf("check %q: %w", s.Name, err)
	}
	return c, nil
}

func (s Spec) build() (Check, error) {
	if s.Name == "" {
		return Check{}, errors.New("name: must not be empty")
	}
	if err := kind(s.Type); err != nil {
		return Check{}, err
	}
	c := Check{
		Name:                   s.Name,
		Kind:                   Kind(s.Type),
		FailuresBeforeCritical: orDefault(s.FailuresBeforeCritical, DefaultFailuresBeforeCritical),
		SuccessesBeforePassing: orDefault(s.SuccessesBeforePassing, DefaultSuccessesBeforePassing),
	}
	var err error
	if c.Interval, err = duration("interval", s.Interval, DefaultInterval); err != nil {
		return Check{}, err
	}
	if c.Timeout, err = duration("timeout", s.Timeout, DefaultTimeout); err != nil {
		return Check{}, err
	}
	if c.Timeout >= c.Interval {
		return Check{}, fmt.Errorf("timeout %q: must be below interval %q", c.Timeout, c.Interval)
	}
	if s.FailuresBeforeCritical < 0 {
		return Check{}, fmt.Errorf("failures_before_critical %d: must be positive", s.FailuresBeforeCritical)
	}
	if s.SuccessesBeforePassing < 0 {
		return Check{}, fmt.Errorf("successes_before_passing %d: must be positive", s.SuccessesBeforePassing)
	}
	if err := s.unused(); err != nil {
		return Check{}, err
	}
	if err := s.target(&c); err != nil {
		return Check{}, err
	}
	return c, nil
}

// target fills in what the check's kind reaches.
func (s Spec) target(c *Check) error {
	switch c.Kind {
	case KindSTUN, KindTCP:
		return address(s.Address, &c.Address)
	case KindUDP:
		if err := address(s.Address, &c.Address); err != nil {
			return err
		}
		var err error
		if c.Send, err = payload("send", s.Send, s.SendHex); err != nil {
			return err
		}
		if c.Send == nil {
			return errors.New("send: one of send or send_hex is required")
		}
		c.Expect, err = payload("expect", s.Expect, s.ExpectHex)
		return err
	case KindHTTP:
		u, err := url.Parse(s.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("url %q: not an http or https URL", s.URL)
		}
		c.URL = s.URL
		return nil
	case KindCommand:
		return command(s.Command, s.Shell, c)
	}
	return kind(s.Type)
}

// kind refuses a type that names no kind of check.
func kind(t string) error {
	switch Kind(t) {
	case KindSTUN, KindUDP, KindTCP, KindHTTP, KindCommand:
		return nil
	case "":
		return errors.New("type: required (stun, udp, tcp, http or command)")
	}
	return fmt.Errorf("type %q: not stun, udp, tcp, http or command", t)
}

// unused refuses keys that the check's kind does not read, so a typo in
// the type does not silently check something else.
func (s Spec) unused() error {
	k := Kind(s.Type)
	set := []struct {
		key  string
		set  bool
		used bool
	}{
		{"address", s.Address != "", k == KindSTUN || k == KindUDP || k == KindTCP},
		{"url", s.URL != "", k == KindHTTP},
		{"send", s.Send != "", k == KindUDP},
		{"send_hex", s.SendHex != "", k == KindUDP},
		{"expect", s.Expect != "", k == KindUDP},
		{"expect_hex", s.ExpectHex != "", k == KindUDP},
		{"command", len(s.Command) > 0, k == KindCommand},
		{"shell", s.Shell, k == KindCommand},
	}
	for _, f := range set {
		if f.set && !f.used {
			return fmt.Errorf("%s: not used by a %s check", f.key, k)
		}
	}
	return nil
}

func address(s string, dst *string) error {
	if s == "" {
		return errors.New("address: required")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("address %q: not host:port", s)
	}
	*dst = s
	return nil
}

// payload decodes a string key and its _hex twin, at most one of them set;
// it returns nil when neither is.
func payload(key, text, hexText string) ([]byte, error) {
	switch {
	case text != "" && hexText != "":
		return nil, fmt.Errorf("%s: set %s or %s_hex, not both", key, key, key)
	case hexText != "":
		b, err := hex.DecodeString(hexText)
		if err != nil {
			return nil, fmt.Errorf("%s_hex %q: not hex", key, hexText)
		}
		return b, nil
	case text != "":
		return []byte(text), nil
	}
	return nil, nil
}

func command(argv []string, shell bool, c *Check) error {
	switch {
	case len(argv) == 0:
		return errors.New("command: required")
	case argv[0] == "":
		return errors.New("command: the program must not be empty")
	case shell && len(argv) != 1:
		return fmt.Errorf("command %q: with shell = true, give one string for /bin/sh -c", argv)
	}
	c.Command = append([]string(nil), argv...)
	c.Shell = shell
	return nil
}

func duration(key, s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s %q: not a duration", key, s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%s %q: must be positive", key, s)
	}
	return d, nil
}

func orDefault(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

// BuildAll builds every spec of one service and refuses two checks of the
// same name.
func BuildAll(specs []Spec) ([]Check, error) {
	checks := make([]Check, 0, len(specs))
	seen := make(map[string]bool, len(specs))
	for _, s := range specs {
		c, err := s.Build()
		if err != nil {
			return nil, err
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("check %q: defined twice", c.Name)
		}
		seen[c.Name] = true
		checks = append(checks, c)
	}
	return checks, nil
}
