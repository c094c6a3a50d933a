package node

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/gocty"
)

// LoadConfigFile reads the HCL (or, for a .json name, HCL's JSON syntax)
// configuration file at path over DefaultConfig. It does not call Build,
// so flags can still override the file; errors from the file itself (syntax,
// unknown keys, values of the wrong type) carry file:line:column and the
// key's name.
func LoadConfigFile(path string) (Config, error) {
	c := DefaultConfig()
	if err := c.DecodeFile(path); err != nil {
		return Config{}, err
	}
	return c, nil
}

// CheckConfigFile reports every problem of the configuration file at path
// in one error (joined with errors.Join), as `usher validate` shows them:
// those of the file itself (unknown keys, values of the wrong type, each
// with file:line:column), then those Build finds in the values that did
// decode. It returns nil for a file the agent would run with.
func CheckConfigFile(path string) error {
	c := DefaultConfig()
	src, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	decodeErr := c.parse(src, path)
	_, buildErr := c.Build()
	errs := append(unjoin(decodeErr), unjoin(buildErr)...)
	// In the file's order, those without a place (cross-key problems)
	// last; SortStableFunc keeps the order of errors on one line.
	slices.SortStableFunc(errs, func(a, b error) int {
		la, ca := errorPlace(a, path)
		lb, cb := errorPlace(b, path)
		return cmp.Or(cmp.Compare(la, lb), cmp.Compare(ca, cb))
	})
	return errors.Join(errs...)
}

// unjoin returns the errors joined in err (err alone if it joins none, and
// nothing for nil), flattened through nested joins.
func unjoin(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		if err == nil {
			return nil
		}
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, unjoin(e)...)
	}
	return out
}

// errorPlace returns the line and column of the file path that err is
// about, or the largest int for both when it names none.
func errorPlace(err error, path string) (line, col int) {
	var ke *KeyError
	if errors.As(err, &ke) && ke.Range != nil {
		return ke.Range.Start.Line, ke.Range.Start.Column
	}
	rest, ok := strings.CutPrefix(err.Error(), path+":")
	if _, scanErr := fmt.Sscanf(rest, "%d:%d:", &line, &col); !ok || scanErr != nil {
		return math.MaxInt, math.MaxInt
	}
	return line, col
}

// DecodeFile reads the configuration file at path over c, so that keys the
// file leaves out keep c's values (for example DevConfig's).
func (c *Config) DecodeFile(path string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	return c.parse(src, path)
}

// ParseConfig is LoadConfigFile for configuration already in memory;
// filename names it in error messages and picks the syntax.
func ParseConfig(src []byte, filename string) (Config, error) {
	c := DefaultConfig()
	if err := c.parse(src, filename); err != nil {
		return Config{}, err
	}
	return c, nil
}

// parse decodes src over c and records where each key was set. It goes on
// past a problem wherever the file still makes sense, so that one run
// reports every unknown key and every value of the wrong type (joined with
// errors.Join); a syntax error stops it, since nothing after it can be
// trusted. Keys that failed keep c's values.
func (c *Config) parse(src []byte, filename string) error {
	p := hclparse.NewParser()
	var (
		f     *hcl.File
		diags hcl.Diagnostics
	)
	if strings.EqualFold(filepath.Ext(filename), ".json") {
		f, diags = p.ParseJSON(src, filename)
	} else {
		f, diags = p.ParseHCL(src, filename)
	}
	if diags.HasErrors() {
		return diagError(diags, src)
	}
	top, blocks := splitKeys(c.keys())
	schema := attrSchema(top)
	for _, b := range blockNames(blocks) {
		schema.Blocks = append(schema.Blocks, hcl.BlockHeaderSchema{Type: b})
	}
	schema.Blocks = append(schema.Blocks, serviceBlock)
	content, diags := f.Body.Content(schema)
	var errs []error
	if diags.HasErrors() {
		errs = append(errs, diagError(diags, src))
	}
	if content == nil {
		return errors.Join(errs...)
	}
	c.ranges = make(map[string]hcl.Range, len(content.Attributes))
	errs = append(errs, c.decodeAttrs(top, "", content.Attributes))
	seen := map[string]bool{}
	for _, b := range content.Blocks {
		errs = append(errs, c.decodeBlock(b, blocks, seen, src))
	}
	return errors.Join(errs...)
}

// decodeBlock decodes the block b of the file src: a service block, or one
// of blocks, which may appear once each (seen records those met so far).
func (c *Config) decodeBlock(b *hcl.Block, blocks map[string][]configKey, seen map[string]bool, src []byte) error {
	if b.Type == serviceBlock.Type {
		return c.decodeService(b, src)
	}
	if seen[b.Type] {
		r := b.DefRange
		return fmt.Errorf("%s:%d:%d: %s: only one %s block is allowed", r.Filename, r.Start.Line, r.Start.Column, b.Type, b.Type)
	}
	seen[b.Type] = true
	bc, diags := b.Body.Content(attrSchema(blocks[b.Type]))
	var err error
	if diags.HasErrors() {
		err = diagError(diags, src)
	}
	return errors.Join(err, c.decodeAttrs(blocks[b.Type], b.Type+".", bc.Attributes))
}

// splitKeys parts keys into the top-level ones and, by block name, those of
// blocks (named block.attr).
func splitKeys(keys []configKey) (top []configKey, blocks map[string][]configKey) {
	blocks = map[string][]configKey{}
	for _, k := range keys {
		if b, _, ok := strings.Cut(k.name, "."); ok {
			blocks[b] = append(blocks[b], k)
		} else {
			top = append(top, k)
		}
	}
	return top, blocks
}

// blockNames returns the block names of blocks, sorted.
func blockNames(blocks map[string][]configKey) []string {
	names := make([]string, 0, len(blocks))
	for b := range blocks {
		names = append(names, b)
	}
	sort.Strings(names)
	return names
}

// attrSchema is the schema of keys as attributes (a block's without its
// prefix).
func attrSchema(keys []configKey) *hcl.BodySchema {
	schema := &hcl.BodySchema{}
	for _, k := range keys {
		_, attr, _ := strings.Cut(k.name, ".")
		if attr == "" {
			attr = k.name
		}
		schema.Attributes = append(schema.Attributes, hcl.AttributeSchema{Name: attr})
	}
	return schema
}

// decodeAttrs decodes the attributes of keys (those of the block prefix,
// or the top level when prefix is empty) and records where each was set.
// It decodes every key it can and returns the problems with the others.
func (c *Config) decodeAttrs(keys []configKey, prefix string, attrs hcl.Attributes) error {
	var errs []error
	for _, k := range keys {
		a, ok := attrs[strings.TrimPrefix(k.name, prefix)]
		if !ok {
			continue
		}
		if err := k.decode(a); err != nil {
			errs = append(errs, err)
			continue
		}
		c.ranges[k.name] = a.NameRange
	}
	return errors.Join(errs...)
}

// decode sets the key's field from the attribute's value, failing with the
// attribute's location and the key's name when the value has the wrong type.
func (k *configKey) decode(a *hcl.Attribute) error {
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		return diagError(diags, nil)
	}
	fail := func(want string) error {
		r := a.Expr.Range()
		return fmt.Errorf("%s:%d:%d: %s: %s is required", r.Filename, r.Start.Line, r.Start.Column, k.name, want)
	}
	if v.IsNull() || !v.IsWhollyKnown() {
		return fail("a value")
	}
	switch p := k.ptr.(type) {
	case *string:
		s, err := convert.Convert(v, cty.String)
		if err != nil {
			return fail("a string")
		}
		*p = s.AsString()
	case *int:
		n, err := convert.Convert(v, cty.Number)
		if err != nil {
			return fail("a whole number")
		}
		bf := n.AsBigFloat()
		i, acc := bf.Int64()
		if acc != big.Exact || int64(int(i)) != i {
			return fail("a whole number")
		}
		*p = int(i)
	case *bool:
		b, err := convert.Convert(v, cty.Bool)
		if err != nil {
			return fail("true or false")
		}
		*p = b.True()
	case **bool:
		b, err := convert.Convert(v, cty.Bool)
		if err != nil {
			return fail("true or false")
		}
		t := b.True()
		*p = &t
	case *[]string:
		l, err := convert.Convert(v, cty.List(cty.String))
		if err != nil || l.IsNull() {
			return fail("a list of strings")
		}
		var out []string
		if err := gocty.FromCtyValue(l, &out); err != nil {
			return fail("a list of strings")
		}
		*p = out
	case *map[string]string:
		m, err := convert.Convert(v, cty.Map(cty.String))
		if err != nil || m.IsNull() {
			return fail("a map of strings")
		}
		var out map[string]string
		if err := gocty.FromCtyValue(m, &out); err != nil {
			return fail("a map of strings")
		}
		*p = out
	default:
		panic("node: config key " + k.name + " has an unsupported type")
	}
	return nil
}

// diagError turns HCL's error diagnostics into one error whose lines read
// "file:line:col: key: summary; detail". HCL's own detail names the key of
// an unknown or repeated key; for a syntax error the key is the identifier
// that starts the line of src the error is on, if any.
func diagError(diags hcl.Diagnostics, src []byte) error {
	var errs []error
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		var b strings.Builder
		if d.Subject != nil {
			fmt.Fprintf(&b, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
			if key := keyOnLine(src, d.Subject.Start.Line); key != "" && !strings.Contains(d.Detail, `"`+key+`"`) {
				b.WriteString(key + ": ")
			}
		}
		b.WriteString(d.Summary)
		if d.Detail != "" {
			b.WriteString("; " + d.Detail)
		}
		errs = append(errs, errors.New(b.String()))
	}
	return errors.Join(errs...)
}

// keyOnLine returns the identifier assigned to on line n (1-based) of src,
// such as "capacity" for `  capacity = 5`, or "".
func keyOnLine(src []byte, n int) string {
	lines := strings.Split(string(src), "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	name, _, ok := strings.Cut(strings.TrimSpace(lines[n-1]), "=")
	name = strings.Trim(strings.TrimSpace(name), `"`)
	if !ok || name == "" || strings.ContainsAny(name, " \t{}[]:,") {
		return ""
	}
	return name
}
