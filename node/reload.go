package node

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// ConfigSource reads the agent's configuration anew, the way it was read
// at start (defaults, file, flags), and builds it. The command line sets
// one (SetConfigSource) so that SIGHUP and PUT /v1/reload can reload.
type ConfigSource func() (Runtime, error)

// ReloadResult says what a reload did.
type ReloadResult struct {
	// Applied names what took effect, such as "log_level=debug",
	// "capacity=2000" or "tls".
	Applied []string `json:"applied"`
	// NeedRestart names the keys that differ from the running
	// configuration but take effect only when the agent starts again.
	NeedRestart []string `json:"need_restart"`
}

// reloadable are the keys a reload applies; the tls block's files are
// re-read at every reload too, as long as the block stays.
var reloadable = map[string]bool{"log_level": true, "capacity": true}

// SetConfigSource sets where ReloadConfig reads the configuration from.
func (a *Agent) SetConfigSource(src ConfigSource) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	a.configSource = src
}

// ReloadConfig reads the configuration from the source SetConfigSource set
// and applies it with Reload. An error (no source, or a configuration that
// does not build) changes nothing.
func (a *Agent) ReloadConfig() (ReloadResult, error) {
	a.reloadMu.Lock()
	src := a.configSource
	a.reloadMu.Unlock()
	if src == nil {
		return ReloadResult{}, errors.New("reload: the agent was started without a configuration to read again")
	}
	rt, err := src()
	if err != nil {
		return ReloadResult{}, fmt.Errorf("reload: %w", err)
	}
	return a.Reload(rt)
}

// Reload applies to the running agent what of rt can change without a
// restart: the log level, the node's capacity (in its next load report)
// and the tls block's files, read again. Every other key that differs from
// the configuration the agent started with is named in NeedRestart and
// left as it is. It never stops the agent and sends no leave.
func (a *Agent) Reload(rt Runtime) (ReloadResult, error) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	var res ReloadResult
	if rt.NodeName != a.cfg.NodeName {
		return res, fmt.Errorf("reload: node_name %q is not this agent's (%q)", rt.NodeName, a.cfg.NodeName)
	}
	for _, key := range changedKeys(&a.cfg.Config, &rt.Config) {
		if !reloadable[key] {
			res.NeedRestart = append(res.NeedRestart, key)
		}
	}
	if a.tls != nil && rt.Parsed.TLS != nil {
		a.tls.Set(rt.Parsed.TLS)
		res.Applied = append(res.Applied, "tls ("+describeTLS(rt.Parsed.TLS)+")")
	}
	if lvl := rt.Parsed.LogLevel; lvl != a.root.GetLevel() {
		a.root.SetLevel(lvl)
		res.Applied = append(res.Applied, "log_level="+rt.LogLevel)
	}
	if c := int64(rt.Capacity); c != a.capacity.Load() {
		a.capacity.Store(c)
		a.wakeView() // the next report carries it
		res.Applied = append(res.Applied, fmt.Sprintf("capacity=%d", c))
	}
	return res, nil
}

// changedKeys returns the keys whose values differ between a and b, in
// help order, with "service" for any change to the service blocks.
func changedKeys(a, b *Config) []string {
	ka, kb := a.keys(), b.keys()
	var out []string
	for i := range ka {
		if !reflect.DeepEqual(reflect.ValueOf(ka[i].ptr).Elem().Interface(), reflect.ValueOf(kb[i].ptr).Elem().Interface()) {
			out = append(out, ka[i].name)
		}
	}
	if !slices.EqualFunc(a.Services, b.Services, func(x, y ServiceConfig) bool { return reflect.DeepEqual(x, y) }) {
		out = append(out, "service")
	}
	return out
}

// String lists what the reload applied and what needs a restart, for a
// log line or the command line.
func (r ReloadResult) String() string {
	var b strings.Builder
	b.WriteString("applied: " + orNothing(r.Applied))
	b.WriteString("; needs a restart: " + orNothing(r.NeedRestart))
	return b.String()
}

// orNothing joins names with commas, or says there are none.
func orNothing(names []string) string {
	if len(names) == 0 {
		return "nothing"
	}
	return strings.Join(names, ", ")
}
