package node

import (
	"fmt"
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

// keyGroup is each key's group.
var keyGroup = map[string]string{
	"node_name": "Node", "data_dir": "Node", "capacity": "Node", "log_level": "Node", "log_json": "Node", "voter": "Node",
	"leave_on_terminate": "Cluster",
	"bind":               "Addresses", "advertise": "Addresses", "raft_bind": "Addresses", "session_addr": "Addresses",
	"advertise_session_addr": "Addresses", "vip": "Addresses", "http": "Addresses",
	"join": "Cluster", "bootstrap_expect": "Cluster", "label": "Cluster", "profile": "Cluster", "respond_from": "Cluster",
	"encrypt_key": "Security", "encrypt_key_file": "Security", "tls.ca_file": "Security", "tls.cert_file": "Security",
	"tls.key_file": "Security", "insecure": "Security", "ticket_key": "Security", "ticket_key_file": "Security",
	"policy": "Sessions and balancing", "policy_spread": "Sessions and balancing", "keepalive_interval": "Sessions and balancing",
	"dead_after": "Sessions and balancing", "session_ttl": "Sessions and balancing", "require_ticket": "Sessions and balancing",
	"ticket_ttl": "Sessions and balancing", "stock_amplification": "Sessions and balancing", "backups": "Sessions and balancing",
	"verify_timeout": "Sessions and balancing", "max_sessions": "Limits", "max_sessions_per_source": "Limits",
	"source_limit": "Limits", "source_limit_rate": "Limits", "source_limit_burst": "Limits", "session_limit_rate": "Limits",
	"session_limit_burst": "Limits", "session_refusal_rate": "Limits", "source_limit_ipv4_prefix": "Limits", "source_limit_ipv6_prefix": "Limits",
	"vip_mode": "Balancer address", "interface": "Balancer address", "vip_acquire_script": "Balancer address",
	"vip_release_script": "Balancer address", "vip_service": "Balancer address", "stock_binding": "Balancer address",
	"balancer_tcp": "Balancer address", "balancer_tls": "Balancer address", "balancer_tls_cert_file": "Balancer address",
	"balancer_tls_key_file": "Balancer address", "vip_events": "Balancer address", "probe_sockets": "Balancer address",
	"probe_batch": "Balancer address", "probe_read_buffer": "Balancer address",
	"api_token": "HTTP API", "api_token_file": "HTTP API", "api_write_token": "HTTP API", "api_write_token_file": "HTTP API",
	"api_hosts": "HTTP API", "api_tls": "HTTP API",
	"turn_auth.realm": "TURN", "turn_auth.secret": "TURN", "turn_auth.secret_file": "TURN", "turn_auth.users": "TURN",
	"raft_heartbeat_timeout": "Timers", "raft_election_timeout": "Timers", "raft_lease_timeout": "Timers",
	"raft_leader_watch": "Timers", "gossip_probe_interval": "Timers", "gossip_probe_timeout": "Timers",
	"gossip_suspicion_mult": "Timers", "gossip_interval": "Timers",
}

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

// FlagAlias returns the short flag of the key named name, if it has one
// (-node for node_name).
func FlagAlias(name string) (string, bool) {
	a, ok := flagAliases[name]
	return a, ok
}

// ConfigKeys returns every key of the agent's configuration file (besides
// the service blocks) in help order, with its type, default and group.
func ConfigKeys() []KeyDoc {
	c := DefaultConfig()
	var out []KeyDoc
	for _, k := range c.keys() {
		d := KeyDoc{Name: k.name, Flag: flagName(k.name), Usage: k.usage, Group: keyGroup[k.name]}
		if d.Group == "" {
			d.Group = "Other"
		}
		d.Type, d.Default = keyType(k)
		if secretKeys[k.name] || strings.Contains(k.usage, "(default") {
			d.Default = ""
		}
		out = append(out, d)
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
