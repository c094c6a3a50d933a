package node

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usherlb/usher/cluster"
)

// TestConfigReference checks that docs/config.md is the reference made
// from the schema the code uses: every key of the file (ConfigKeys), every
// attribute of the service, load and check blocks (their structs' hcl tags
// and doc comments) and the profiles' timers. A key added, removed or
// reworded without the doc fails it; USHER_UPDATE_DOCS=1 rewrites the doc.
func TestConfigReference(t *testing.T) {
	want := configReference(t)
	const path = "../docs/config.md"
	if os.Getenv("USHER_UPDATE_DOCS") != "" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s is not the reference the code makes: run USHER_UPDATE_DOCS=1 go test ./node -run TestConfigReference", path)
	}
	c := DefaultConfig()
	var groups []string
	for _, g := range c.keyGroups() {
		groups = append(groups, g.name)
	}
	if !slices.Equal(groups, KeyGroups) {
		t.Errorf("keyGroups has the groups %q, KeyGroups %q", groups, KeyGroups)
	}
}

// configReference renders docs/config.md.
func configReference(t *testing.T) string {
	var b strings.Builder
	b.WriteString(`# Configuration reference

<!-- Made by TestConfigReference (node/configdoc_test.go) from the keys the
agent decodes: do not edit by hand; USHER_UPDATE_DOCS=1 go test ./node -run
TestConfigReference writes it again. -->

The agent reads its settings from the defaults (or, with ` + "`-dev`" + `, the
development ones), then the configuration file (` + "`-config FILE`" + `, HCL or,
for a ` + "`.json`" + ` name, HCL's JSON syntax), then its flags: every key is
also a flag, named with dashes (` + "`session_addr`" + ` is ` + "`-session-addr`" + `; a
key of a block, such as ` + "`tls.ca_file`" + `, is ` + "`-tls-ca-file`" + `). ` + "`usher validate FILE`" + `
reports every problem of a file in one run; ` + "`usher reload`" + ` or SIGHUP applies
` + "`log_level`" + `, ` + "`capacity`" + ` and the ` + "`tls`" + ` block's files without a restart.
An address given without a port takes the key's usual port. Durations are
written as Go writes them (` + "`250ms`" + `, ` + "`3s`" + `, ` + "`1m`" + `).
`)
	keys := ConfigKeys()
	for _, g := range KeyGroups {
		fmt.Fprintf(&b, "\n## %s\n\n| Key | Type | Default | Description |\n|---|---|---|---|\n", g)
		for _, k := range keys {
			if k.Group != g {
				continue
			}
			def := "—"
			if k.Default != "" {
				def = "`" + k.Default + "`"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", k.Name, k.Type, def, cell(k.Usage))
		}
	}
	b.WriteString(`
## Service blocks

A ` + "`service \"NAME\" { ... }`" + ` block (repeatable) balances a server besides the
agent's own session endpoint: a TURN relay, a game server. Its load comes
from its ` + "`load`" + ` block and its health from its ` + "`check \"NAME\"`" + ` blocks
(docs/load-sources.md and docs/turn.md show them at work).
`)
	for _, s := range []struct{ title, file, typ string }{
		{"service", "config_services.go", "ServiceConfig"},
		{"load", "loadsrc/spec.go", "Spec"},
		{"check", "health/spec.go", "Spec"},
	} {
		fmt.Fprintf(&b, "\n### `%s`\n\n| Attribute | Type | Required | Description |\n|---|---|---|---|\n", s.title)
		for _, f := range blockFields(t, s.file, s.typ) {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.name, f.typ, f.required, cell(f.doc))
		}
	}
	b.WriteString(profileTable(t))
	return b.String()
}

// cell makes s fit a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
}

// blockField is one attribute or block of a configuration struct.
type blockField struct{ name, typ, required, doc string }

// blockFields reads the hcl-tagged fields of struct typ in file, with their
// doc comments: the schema of a block, as gohcl decodes it.
func blockFields(t *testing.T, file, typ string) []blockField {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var out []blockField
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != typ {
			return true
		}
		for _, fd := range ts.Type.(*ast.StructType).Fields.List {
			if fd.Tag == nil {
				continue
			}
			tag := reflect.StructTag(strings.Trim(fd.Tag.Value, "`")).Get("hcl")
			name, kind, _ := strings.Cut(tag, ",")
			if tag == "" || kind == "label" {
				continue
			}
			bf := blockField{name: name, typ: exprType(fd.Type), required: "yes", doc: strings.TrimSpace(fd.Doc.Text())}
			if kind == "optional" || kind == "block" && strings.HasPrefix(bf.typ, "list") {
				bf.required = "no"
			}
			if kind == "block" {
				bf.typ = "block"
			}
			for _, n := range fd.Names {
				bf.doc = strings.TrimPrefix(bf.doc, n.Name+" ")
			}
			bf.doc = sentence(bf.doc)
			if bf.typ == "string" && isDurationKey("_"+name) {
				bf.typ = "duration"
			}
			out = append(out, bf)
		}
		return false
	})
	if len(out) == 0 {
		t.Fatalf("no hcl fields in %s.%s", file, typ)
	}
	return out
}

// sentence turns a field's doc comment, its name cut off ("is how often
// ..."), into a sentence of its own ("How often ...").
func sentence(doc string) string {
	for _, verb := range []string{"is ", "are "} {
		doc = strings.TrimPrefix(doc, verb)
	}
	if doc == "" {
		return doc
	}
	return strings.ToUpper(doc[:1]) + doc[1:]
}

// exprType names a field's Go type as the reference writes it.
func exprType(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.ArrayType:
		return "list of " + exprType(x.Elt)
	case *ast.MapType:
		return "map"
	case *ast.StarExpr:
		return exprType(x.X)
	case *ast.SelectorExpr:
		return x.Sel.Name
	}
	return "?"
}

// profileTable renders the timers of each profile, with the keys that
// override them.
func profileTable(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(`
## Profiles

` + "`profile`" + ` sets every timer of Raft and gossip at once; the keys of the
Timers group override one each. Use one profile on every node.

| Timer | Key | lan | fast | rapid |
|---|---|---|---|---|
`)
	var ps []cluster.Timing
	for _, name := range []string{cluster.ProfileLAN, cluster.ProfileFast, cluster.ProfileRapid} {
		p, err := cluster.Profile(name)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	row := func(what, key string, v func(cluster.Timing) string) {
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s |\n", what, key, v(ps[0]), v(ps[1]), v(ps[2]))
	}
	d := func(f func(cluster.Timing) time.Duration) func(cluster.Timing) string {
		return func(p cluster.Timing) string {
			if f(p) == 0 {
				return "—"
			}
			return f(p).String()
		}
	}
	row("Raft heartbeat timeout", "raft_heartbeat_timeout", d(func(p cluster.Timing) time.Duration { return p.RaftHeartbeat }))
	row("Raft election timeout", "raft_election_timeout", d(func(p cluster.Timing) time.Duration { return p.RaftElection }))
	row("Raft leader lease", "raft_lease_timeout", d(func(p cluster.Timing) time.Duration { return p.RaftLease }))
	row("Leader watch", "raft_leader_watch", d(func(p cluster.Timing) time.Duration { return p.RaftWatch }))
	row("Gossip probe interval", "gossip_probe_interval", d(func(p cluster.Timing) time.Duration { return p.ProbeInterval }))
	row("Gossip probe timeout", "gossip_probe_timeout", d(func(p cluster.Timing) time.Duration { return p.ProbeTimeout }))
	row("Gossip suspicion multiplier", "gossip_suspicion_mult", func(p cluster.Timing) string { return fmt.Sprint(p.SuspicionMult) })
	row("Gossip interval", "gossip_interval", d(func(p cluster.Timing) time.Duration { return p.GossipInterval }))
	return b.String()
}
