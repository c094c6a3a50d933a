package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// defaultTimeout bounds a mutation's test command when its file names none.
const defaultTimeout = 5 * time.Minute

// Mutation is one deliberate break of production code and the test command
// that must fail on it.
type Mutation struct {
	// Name is the file's base name without ".mut".
	Name string
	// What says what the mutation breaks (the file's first comment line).
	What string
	// File is the mutated file, relative to the repository root.
	File string
	// Pkg and Run are the package and the -run pattern of the test command.
	Pkg, Run string
	// Env holds KEY=VALUE pairs added to the test command's environment.
	Env []string
	// Timeout is the test command's -timeout.
	Timeout time.Duration
	// From is replaced by To; From must occur exactly once in File.
	From, To string
}

// parseMutation reads one mutation file. Its format:
//
//	# what the mutation breaks
//	file: cluster/vip.go
//	test: ./cluster ^TestQuorumLossStopsServing$
//	env: KEY=VALUE          (optional, repeatable)
//	timeout: 2m             (optional)
//	--- from
//	original lines, verbatim
//	--- to
//	replacement lines (may be none)
//	--- end
func parseMutation(name string, data []byte) (Mutation, error) {
	m := Mutation{Name: name, Timeout: defaultTimeout}
	var from, to []string
	var block *[]string
	ended := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		switch {
		case ended:
			if strings.TrimSpace(text) != "" {
				return m, fmt.Errorf("%s:%d: text after --- end", name, line)
			}
		case text == "--- from":
			block = &from
		case text == "--- to":
			if block != &from {
				return m, fmt.Errorf("%s:%d: --- to before --- from", name, line)
			}
			block = &to
		case text == "--- end":
			if block != &to {
				return m, fmt.Errorf("%s:%d: --- end before --- to", name, line)
			}
			ended = true
		case block != nil:
			*block = append(*block, text)
		default:
			if err := m.header(text); err != nil {
				return m, fmt.Errorf("%s:%d: %w", name, line, err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return m, fmt.Errorf("%s: %w", name, err)
	}
	if !ended {
		return m, fmt.Errorf("%s: no --- end", name)
	}
	m.From, m.To = strings.Join(from, "\n"), strings.Join(to, "\n")
	switch {
	case m.File == "":
		return m, fmt.Errorf("%s: no file: line", name)
	case m.Pkg == "":
		return m, fmt.Errorf("%s: no test: line", name)
	case strings.TrimSpace(m.From) == "":
		return m, fmt.Errorf("%s: the --- from block is empty", name)
	case m.From == m.To:
		return m, fmt.Errorf("%s: --- to equals --- from", name)
	}
	return m, nil
}

// header parses one line above the blocks.
func (m *Mutation) header(text string) error {
	if strings.TrimSpace(text) == "" {
		return nil
	}
	if c, ok := strings.CutPrefix(text, "#"); ok {
		if m.What == "" {
			m.What = strings.TrimSpace(c)
		}
		return nil
	}
	key, val, ok := strings.Cut(text, ":")
	if !ok {
		return fmt.Errorf("%q is not key: value", text)
	}
	val = strings.TrimSpace(val)
	switch strings.TrimSpace(key) {
	case "file":
		m.File = filepath.Clean(val)
		if filepath.IsAbs(m.File) || strings.HasPrefix(m.File, "..") {
			return fmt.Errorf("file: %q must be inside the repository", val)
		}
	case "test":
		f := strings.Fields(val)
		if len(f) != 2 {
			return fmt.Errorf("test: %q: want a package and a -run pattern", val)
		}
		m.Pkg, m.Run = f[0], f[1]
	case "env":
		if k, _, ok := strings.Cut(val, "="); !ok || k == "" {
			return fmt.Errorf("env: %q is not KEY=VALUE", val)
		}
		m.Env = append(m.Env, val)
	case "timeout":
		d, err := time.ParseDuration(val)
		if err != nil || d <= 0 {
			return fmt.Errorf("timeout: %q is not a positive duration", val)
		}
		m.Timeout = d
	default:
		return fmt.Errorf("unknown key %q", key)
	}
	return nil
}

// apply returns src with m.From replaced by m.To. It fails unless From
// occurs exactly once, so a mutation that no longer matches the code (after
// a refactor) is reported instead of silently testing nothing.
func (m Mutation) apply(src []byte) ([]byte, error) {
	switch n := bytes.Count(src, []byte(m.From)); n {
	case 1:
		return bytes.Replace(src, []byte(m.From), []byte(m.To), 1), nil
	case 0:
		return nil, fmt.Errorf("%s: the --- from text is not in %s (stale mutation: update it to the code)", m.Name, m.File)
	default:
		return nil, fmt.Errorf("%s: the --- from text occurs %d times in %s; make it unique", m.Name, n, m.File)
	}
}

// testKey identifies a test command, so the baseline runs each once.
func (m Mutation) testKey() string {
	return strings.Join(append([]string{m.Pkg, m.Run, m.Timeout.String()}, m.Env...), "\x00")
}

// loadMutations parses every *.mut file of dir, sorted by name.
func loadMutations(dir string) ([]Mutation, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.mut"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no *.mut files in %s", dir)
	}
	sort.Strings(paths)
	var out []Mutation
	var errs []error
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m, err := parseMutation(strings.TrimSuffix(filepath.Base(p), ".mut"), data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, m)
	}
	return out, errors.Join(errs...)
}
