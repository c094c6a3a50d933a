// Command usher-mutate checks that the test suite guards Usher's
// invariants: it applies each deliberate break listed in scripts/mutations
// (one *.mut file each) to a copy of the repository and runs the test
// command the file names, which must fail. A mutation whose test passes has
// survived: some invariant is no longer proven by any test. `make mutate`
// runs it; it exits non-zero if a mutation survives, no longer applies to the
// code, or its test fails even without the mutation.
//
//	usher-mutate [-dir scripts/mutations] [-run REGEXP] [-baseline=true]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the command's flags.
type options struct {
	dir      string
	only     *regexp.Regexp
	baseline bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("usher-mutate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: usher-mutate [flags]\n\nApplies each mutation of -dir to a copy of the repository and runs its test,\nwhich must fail. Exits 1 if any mutation survives.\n\nFlags:")
		fs.PrintDefaults()
	}
	var o options
	only := fs.String("run", "", "run only the mutations whose names match this regular expression")
	fs.StringVar(&o.dir, "dir", "scripts/mutations", "directory of *.mut files, relative to the repository root")
	fs.BoolVar(&o.baseline, "baseline", true, "first run each test command on the unmutated copy; it must pass")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "usher-mutate: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	re, err := regexp.Compile(*only)
	if err != nil {
		fmt.Fprintf(stderr, "usher-mutate: -run: %v\n", err)
		return 2
	}
	o.only = re
	if err := mutate(ctx, o, stdout); err != nil {
		fmt.Fprintf(stderr, "usher-mutate: %v\n", err)
		return 1
	}
	return 0
}

// mutate runs every selected mutation and returns an error unless each was
// caught.
func mutate(ctx context.Context, o options, out io.Writer) error {
	root, err := gitRoot(ctx)
	if err != nil {
		return err
	}
	all, err := loadMutations(filepath.Join(root, o.dir))
	if err != nil {
		return err
	}
	var ms []Mutation
	for _, m := range all {
		if o.only.MatchString(m.Name) {
			ms = append(ms, m)
		}
	}
	if len(ms) == 0 {
		return fmt.Errorf("no mutation matches -run %q", o.only)
	}
	work, err := os.MkdirTemp("", "usher-mutate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := copyTree(ctx, root, work); err != nil {
		return err
	}
	if err := checkApply(work, ms); err != nil {
		return err
	}
	if o.baseline {
		if err := runBaselines(ctx, work, ms, out); err != nil {
			return err
		}
	}
	survived := 0
	for _, m := range ms {
		caught, err := runMutation(ctx, work, m, out)
		if err != nil {
			return err
		}
		if !caught {
			survived++
		}
	}
	fmt.Fprintf(out, "mutate: %d caught, %d survived\n", len(ms)-survived, survived)
	if survived > 0 {
		return fmt.Errorf("%d of %d mutations survived: no test fails on them", survived, len(ms))
	}
	return nil
}

// checkApply fails if any mutation no longer applies to the code.
func checkApply(work string, ms []Mutation) error {
	var stale []string
	for _, m := range ms {
		src, err := os.ReadFile(filepath.Join(work, m.File))
		if err != nil {
			stale = append(stale, fmt.Sprintf("%s: %v", m.Name, err))
			continue
		}
		if _, err := m.apply(src); err != nil {
			stale = append(stale, err.Error())
		}
	}
	if len(stale) > 0 {
		return fmt.Errorf("mutations that do not apply:\n  %s", strings.Join(stale, "\n  "))
	}
	return nil
}

// runBaselines runs each distinct test command once on the unmutated copy.
func runBaselines(ctx context.Context, work string, ms []Mutation, out io.Writer) error {
	seen := map[string]bool{}
	for _, m := range ms {
		if seen[m.testKey()] {
			continue
		}
		seen[m.testKey()] = true
		start := time.Now()
		log, err := goTest(ctx, work, m)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			return fmt.Errorf("baseline: %s -run %s fails without any mutation (%v):\n%s", m.Pkg, m.Run, err, tail(log, 40))
		}
		fmt.Fprintf(out, "baseline  %-8s %s -run %s\n", round(time.Since(start)), m.Pkg, m.Run)
	}
	return nil
}

// runMutation applies m, runs its test and restores the file. It reports
// whether the test failed (the mutation was caught).
func runMutation(ctx context.Context, work string, m Mutation, out io.Writer) (caught bool, err error) {
	path := filepath.Join(work, m.File)
	info, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	orig, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	mutated, err := m.apply(orig)
	if err != nil {
		return false, err
	}
	if err := os.WriteFile(path, mutated, info.Mode().Perm()); err != nil {
		return false, err
	}
	defer func() {
		// A file left mutated would spoil every later mutation's run.
		if rerr := os.WriteFile(path, orig, info.Mode().Perm()); rerr != nil && err == nil {
			caught, err = false, fmt.Errorf("restore %s: %w", m.File, rerr)
		}
	}()
	start := time.Now()
	log, testErr := goTest(ctx, work, m)
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if testErr != nil {
		fmt.Fprintf(out, "caught    %-8s %s: %s\n", round(time.Since(start)), m.Name, m.What)
		return true, nil
	}
	fmt.Fprintf(out, "SURVIVED  %-8s %s: %s\n  %s -run %s passed; its output ends:\n%s\n",
		round(time.Since(start)), m.Name, m.What, m.Pkg, m.Run, tail(log, 15))
	return false, nil
}

// goTest runs m's test command in dir and returns its combined output.
func goTest(ctx context.Context, dir string, m Mutation) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-timeout", m.Timeout.String(), "-run", m.Run, m.Pkg) //nolint:gosec // the mutation files are the repository's own
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), m.Env...)
	cmd.WaitDelay = 10 * time.Second
	return cmd.CombinedOutput()
}

// gitRoot returns the repository's top directory.
func gitRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return "", fmt.Errorf("finding the repository: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// copyTree copies the repository's tracked and untracked, not ignored,
// files into dst, so the mutations test the working tree as it is.
func copyTree(ctx context.Context, root, dst string) error {
	cmd := exec.CommandContext(ctx, "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	list, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("listing the repository's files: %w", err)
	}
	for _, rel := range bytes.Split(list, []byte{0}) {
		if len(rel) == 0 {
			continue
		}
		src := filepath.Join(root, string(rel))
		fi, err := os.Lstat(src)
		if os.IsNotExist(err) {
			continue // deleted in the working tree
		}
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, string(rel))
		if err := os.MkdirAll(filepath.Dir(to), 0o750); err != nil {
			return err
		}
		if err := os.WriteFile(to, data, fi.Mode().Perm()); err != nil { //nolint:gosec // to is under dst, named by git ls-files
			return err
		}
	}
	return nil
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

func round(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }
