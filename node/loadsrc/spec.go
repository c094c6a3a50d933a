package loadsrc

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Source kinds, the values of a Spec's source key.
const (
	KindSessions   = "sessions"
	KindPush       = "push"
	KindPrometheus = "prometheus"
	KindCommand    = "command"
	KindSockets    = "sockets"
)

// Defaults applied by Validate to keys a Spec leaves out.
const (
	DefaultInterval = time.Second
	DefaultTimeout  = 500 * time.Millisecond
	DefaultFailures = 3
	// DefaultMaxBody bounds what a prometheus source reads of a response.
	DefaultMaxBody = 4 << 20
	// MaxOutput bounds what a command source keeps of the command's stdout.
	MaxOutput = 4 << 10
)

// staleFactor is how many intervals a figure stays usable: a figure older
// than staleFactor × interval is not balanced on.
const staleFactor = 3

// Spec is one service's load block as written in the configuration,
// decodable by gohcl:
//
//	load {
//	  source   = "prometheus"
//	  url      = "http://127.0.0.1:9100/metrics"
//	  metric   = "game_sessions"
//	  labels   = { state = "active" }
//	  interval = "2s"
//	}
//
// Durations are strings parsed once by Validate. Keys that do not belong to
// the chosen source are refused, so a typo in source is not silently ignored.
type Spec struct {
	// Source is the kind: sessions, push, prometheus, command or sockets.
	Source string `hcl:"source"`
	// Interval is how often a polled source is read, and a third of how
	// long a figure (or a push) stays usable. Default 1s.
	Interval string `hcl:"interval,optional"`
	// Timeout bounds one reading; it must be shorter than Interval.
	// Default 500ms.
	Timeout string `hcl:"timeout,optional"`
	// Failures is how many failed readings in a row make the figure not
	// OK. Default 3.
	Failures int `hcl:"failures,optional"`
	// Capacity is the service's capacity when the source gives none
	// (0: not given).
	Capacity int `hcl:"capacity,optional"`

	// URL is the prometheus source's exposition endpoint (http or https).
	URL string `hcl:"url,optional"`
	// Metric is the prometheus metric name whose samples are summed.
	Metric string `hcl:"metric,optional"`
	// Labels restricts the summed samples to those carrying every one of
	// these label values.
	Labels map[string]string `hcl:"labels,optional"`
	// MaxBody bounds the bytes read of the response (default 4 MiB).
	MaxBody int `hcl:"max_body,optional"`

	// Command is the command source's argv, run without a shell unless
	// Shell is set, in which case it holds exactly one string given to
	// /bin/sh -c.
	Command []string `hcl:"command,optional"`
	// Shell runs Command[0] with /bin/sh -c.
	Shell bool `hcl:"shell,optional"`

	// Protocol is the sockets source's protocol: "udp" or "tcp".
	Protocol string `hcl:"protocol,optional"`
	// Port is the port whose sockets are counted.
	Port int `hcl:"port,optional"`
	// PortRange ("LOW-HIGH", inclusive) counts the sockets of a range of
	// ports instead of Port, e.g. coturn's relay ports.
	PortRange string `hcl:"port_range,optional"`
	// Direction is "local" (default: the socket's own port is counted) or
	// "peer" (the remote port is).
	Direction string `hcl:"direction,optional"`
	// State is "connected" (default: connected UDP, established TCP
	// sockets) or "bound" (every socket bound to the port but a TCP
	// listener, e.g. coturn's unconnected relay sockets).
	State string `hcl:"state,optional"`
}

// Settings is a validated Spec, its durations parsed and defaults filled.
type Settings struct {
	Kind     string
	Interval time.Duration
	Timeout  time.Duration
	Failures int
	Capacity int

	URL     string
	Metric  string
	Labels  map[string]string
	MaxBody int

	Argv []string

	Protocol string
	PortLow  int
	PortHigh int
	Peer     bool
	AnyState bool
}

// Validate checks the spec and returns its settings. Its errors name the
// key and the value, e.g. `load.interval "abc": not a duration`.
func (s *Spec) Validate() (Settings, error) {
	set := Settings{
		Kind:     s.Source,
		Interval: DefaultInterval,
		Timeout:  DefaultTimeout,
		Failures: DefaultFailures,
		Capacity: s.Capacity,
	}
	var err error
	if set.Interval, err = duration("interval", s.Interval, DefaultInterval); err != nil {
		return Settings{}, err
	}
	if set.Timeout, err = duration("timeout", s.Timeout, DefaultTimeout); err != nil {
		return Settings{}, err
	}
	if set.Timeout >= set.Interval {
		return Settings{}, fmt.Errorf("load.timeout %q: must be shorter than load.interval (%s)", set.Timeout, set.Interval)
	}
	if s.Failures < 0 {
		return Settings{}, fmt.Errorf("load.failures %d: must not be negative", s.Failures)
	}
	if s.Failures > 0 {
		set.Failures = s.Failures
	}
	if s.Capacity < 0 {
		return Settings{}, fmt.Errorf("load.capacity %d: must not be negative", s.Capacity)
	}
	if err := s.foreignKeys(); err != nil {
		return Settings{}, err
	}
	switch s.Source {
	case KindSessions, KindPush:
	case KindPrometheus:
		err = s.prometheus(&set)
	case KindCommand:
		err = s.command(&set)
	case KindSockets:
		err = s.sockets(&set)
	default:
		err = fmt.Errorf("load.source %q: not one of sessions, push, prometheus, command, sockets", s.Source)
	}
	if err != nil {
		return Settings{}, err
	}
	return set, nil
}

func duration(key, value string, def time.Duration) (time.Duration, error) {
	if value == "" {
		return def, nil
	}
	d, err := time.ParseDuration(value)
	if err != nil {
		return 0, fmt.Errorf("load.%s %q: not a duration", key, value)
	}
	if d <= 0 {
		return 0, fmt.Errorf("load.%s %q: must be positive", key, value)
	}
	return d, nil
}

// foreignKeys refuses keys set for another kind of source.
func (s *Spec) foreignKeys() error {
	own := map[string][]string{
		KindPrometheus: {"url", "metric", "labels", "max_body"},
		KindCommand:    {"command", "shell"},
		KindSockets:    {"protocol", "port", "port_range", "direction", "state"},
	}
	set := map[string]bool{
		"url": s.URL != "", "metric": s.Metric != "", "labels": len(s.Labels) > 0,
		"max_body": s.MaxBody != 0, "command": len(s.Command) > 0, "shell": s.Shell,
		"protocol": s.Protocol != "", "port": s.Port != 0, "port_range": s.PortRange != "",
		"direction": s.Direction != "", "state": s.State != "",
	}
	for kind, keys := range own {
		if kind == s.Source {
			continue
		}
		for _, k := range keys {
			if set[k] {
				return fmt.Errorf("load.%s: not a key of source %q", k, s.Source)
			}
		}
	}
	return nil
}

func (s *Spec) prometheus(set *Settings) error {
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("load.url %q: not an http or https URL", s.URL)
	}
	if s.Metric == "" {
		return errors.New("load.metric: required by source \"prometheus\"")
	}
	if s.MaxBody < 0 {
		return fmt.Errorf("load.max_body %d: must not be negative", s.MaxBody)
	}
	set.URL, set.Metric, set.Labels, set.MaxBody = s.URL, s.Metric, s.Labels, s.MaxBody
	if set.MaxBody == 0 {
		set.MaxBody = DefaultMaxBody
	}
	return nil
}

func (s *Spec) command(set *Settings) error {
	switch {
	case len(s.Command) == 0:
		return errors.New("load.command: required by source \"command\"")
	case s.Shell && len(s.Command) != 1:
		return fmt.Errorf("load.command %q: with shell = true, give one string", s.Command)
	case s.Command[0] == "":
		return fmt.Errorf("load.command %q: empty program", s.Command)
	}
	if s.Shell {
		set.Argv = []string{"/bin/sh", "-c", s.Command[0]}
	} else {
		set.Argv = append([]string(nil), s.Command...)
	}
	return nil
}

func (s *Spec) sockets(set *Settings) error {
	if s.Protocol != "udp" && s.Protocol != "tcp" {
		return fmt.Errorf("load.protocol %q: not udp or tcp", s.Protocol)
	}
	set.Protocol = s.Protocol
	switch {
	case s.Port != 0 && s.PortRange != "":
		return errors.New("load.port_range: give port or port_range, not both")
	case s.PortRange != "":
		lo, hi, err := portRange(s.PortRange)
		if err != nil {
			return err
		}
		set.PortLow, set.PortHigh = lo, hi
	case s.Port < 1 || s.Port > 65535:
		return fmt.Errorf("load.port %d: not a port (1-65535)", s.Port)
	default:
		set.PortLow, set.PortHigh = s.Port, s.Port
	}
	switch s.Direction {
	case "", "local":
	case "peer":
		set.Peer = true
	default:
		return fmt.Errorf("load.direction %q: not local or peer", s.Direction)
	}
	switch s.State {
	case "", "connected":
	case "bound":
		set.AnyState = true
	default:
		return fmt.Errorf("load.state %q: not connected or bound", s.State)
	}
	return nil
}

func portRange(v string) (int, int, error) {
	bad := fmt.Errorf("load.port_range %q: not LOW-HIGH with 1 <= LOW <= HIGH <= 65535", v)
	a, b, ok := strings.Cut(v, "-")
	if !ok {
		return 0, 0, bad
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, bad
	}
	return lo, hi, nil
}
