package node

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// KeyDoc describes one configuration key, for `usher agent -h` and the
// configuration reference (docs/config.md), both made from the keys the
// decoder and the flags use.
type KeyDoc struct {
	// Name is the key as the file writes it (tls.ca_file is ca_file in
	// the tls block).
	Name string
	// Flag is the flag that sets it, without the dash.
	Flag string
	// Type is what the value is: string, int, bool, duration, address,
	// path, list or map.
	Type string
	// Default is the value when neither the file nor a flag sets it, as
	// written; empty when there is none or it is derived from other keys
	// (Usage then says how). Secrets never have one.
	Default string
	// Usage says what the key does.
	Usage string
	// Group is the part of the configuration the key belongs to (see
	// KeyGroups).
	Group string
}

// KeyGroups are the groups of keys, in the order help shows them.
var KeyGroups = []string{"Node", "Addresses", "Cluster", "Security", "Sessions and balancing", "Limits", "Balancer address", "HTTP API", "TURN", "Timers"}

// addressKeys take an address, with or without a port (see withPort).
var addressKeys = map[string]bool{
	"bind": true, "advertise": true, "raft_bind": true, "session_addr": true,
	"advertise_session_addr": true, "vip": true, "http": true,
}

// secretKeys hold a secret inline: their defaults are never shown.
var secretKeys = map[string]bool{
	"api_token": true, "api_write_token": true, "ticket_key": true, "encrypt_key": true,
	"turn_auth.secret": true, "turn_auth.users": true,
}

// WriteFlagUsage writes the flag of every key to w as `usher agent -h`
// shows them: group by group in the order of KeyGroups, each flag with its
// short alias, its type, its help and its default.
func WriteFlagUsage(w io.Writer) {
	group := ""
	for _, k := range ConfigKeys() {
		if k.Group != group {
			group = k.Group
			fmt.Fprintf(w, "\n%s:\n", group)
		}
		name := "-" + k.Flag
		if alias, ok := flagAliases[k.Name]; ok {
			name += ", -" + alias
		}
		if k.Type != "bool" {
			name += " " + k.Type
		}
		usage := k.Usage
		if k.Default != "" && (k.Type != "bool" || k.Default != "false") {
			usage += " (default " + k.Default + ")"
		}
		fmt.Fprintf(w, "  %s\n\t%s\n", name, usage)
	}
}

// ConfigKeys returns every key of the agent's configuration file (besides
// the service blocks) in help order, with its type, default and group.
func ConfigKeys() []KeyDoc {
	c := DefaultConfig()
	var out []KeyDoc
	for _, g := range c.keyGroups() {
		for _, k := range g.keys {
			d := KeyDoc{Name: k.name, Flag: flagName(k.name), Usage: k.usage, Group: g.name}
			d.Type, d.Default = keyType(k)
			if secretKeys[k.name] || strings.Contains(k.usage, "(default") {
				d.Default = ""
			}
			out = append(out, d)
		}
	}
	return out
}

// keyType returns the type of key k and its value in c as written.
func keyType(k configKey) (typ, value string) {
	switch p := k.ptr.(type) {
	case *string:
		switch {
		case addressKeys[k.name]:
			typ = "address"
		case strings.HasSuffix(k.name, "_file") || k.name == "data_dir" || strings.HasSuffix(k.name, "_script"):
			typ = "path"
		case isDurationKey(k.name):
			typ = "duration"
		default:
			typ = "string"
		}
		return typ, *p
	case *int:
		return "int", strconv.Itoa(*p)
	case *bool:
		return "bool", strconv.FormatBool(*p)
	case **bool:
		if *p == nil {
			return "bool", ""
		}
		return "bool", strconv.FormatBool(**p)
	case *[]string:
		return "list", strings.Join(*p, ", ")
	case *map[string]string:
		return "map", ""
	}
	panic(fmt.Sprintf("node: config key %s has an unsupported type", k.name))
}

// isDurationKey reports whether the key named name takes a duration.
func isDurationKey(name string) bool {
	for _, s := range []string{"_interval", "_timeout", "_after", "_ttl", "_watch"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}
