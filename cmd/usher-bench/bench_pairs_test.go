//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBenchPairs compares probe-path servers, possibly of different builds,
// at saturation in interleaved repeats, the first one being the baseline:
// part 1's paired figures for a change come from here.
//
//	USHER_BENCH_PAIRS=/tmp/old:echo,/tmp/old:usher,/tmp/new:usher \
//	USHER_BENCH_PAIRS_N=16 go test -count=1 -v -run TestBenchPairs ./cmd/usher-bench
//
// Each entry is a usher-bench binary and one of its `-serve` servers (an
// Usher server's name with "-nolimit" appended runs it without the
// per-source limit, to measure what the limit costs). Every repeat runs
// all of them, rotating the order, for 2 s each; the test prints the
// median and range of each one's per-repeat ratio to the baseline, for
// probes/s and CPU per answer. With USHER_BENCH_PAIRS_LOAD=P it then runs
// as many paced repeats at P percent of the lowest median saturation, all
// the servers at once taking turns as in part 1, and prints each one's
// p99 and its per-repeat ratio to the baseline's.
func TestBenchPairs(t *testing.T) {
	spec := os.Getenv("USHER_BENCH_PAIRS")
	if spec == "" {
		t.Skip("set USHER_BENCH_PAIRS=BIN:SERVER,BIN:SERVER,... to compare servers")
	}
	n := 8
	if v := os.Getenv("USHER_BENCH_PAIRS_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("USHER_BENCH_PAIRS_N=%q: want a positive count", v)
		}
	}
	type entry = struct{ exe, name string }
	var es []entry
	for _, f := range strings.Split(spec, ",") {
		exe, name, ok := strings.Cut(f, ":")
		if !ok {
			t.Fatalf("USHER_BENCH_PAIRS entry %q: want BIN:SERVER", f)
		}
		es = append(es, entry{exe, name})
	}
	rate := make([]spread, len(es))
	cpu := make([]spread, len(es))
	for r := range n {
		for k := range es {
			i := (k + r) % len(es)
			res, err := withServer(es[i].exe, es[i].name, func(s *benchServer) (satResult, error) { return saturate(s, 2*time.Second) })
			if err != nil {
				t.Fatal(err)
			}
			rate[i] = append(rate[i], res.rate)
			cpu[i] = append(cpu[i], float64(res.cpu.Nanoseconds())/1e3)
		}
	}
	for i, e := range es {
		fmt.Printf("%s:%s  probes/s %s ratio %s  CPU µs/answer %s ratio %s\n", e.exe, e.name,
			rate[i].format("%.0f"), ratios(rate[i], rate[0]).format("%.3fx"),
			cpu[i].format("%.2f"), ratios(cpu[i], cpu[0]).format("%.3fx"))
	}
	level := os.Getenv("USHER_BENCH_PAIRS_LOAD")
	if level == "" {
		return
	}
	pct, err := strconv.Atoi(level)
	if err != nil || pct < 1 || pct > 100 {
		t.Fatalf("USHER_BENCH_PAIRS_LOAD=%q: want a percentage", level)
	}
	sat := rate[0].median()
	for _, r := range rate {
		sat = min(sat, r.median())
	}
	offered := sat * float64(pct) / 100
	p99 := make([]spread, len(es))
	for r := range n {
		order := make([]int, len(es))
		for k := range es {
			order[k] = (k + r) % len(es)
		}
		res, err := pacedEntries(es, order, offered)
		if err != nil {
			t.Fatal(err)
		}
		for k, i := range order {
			p99[i] = append(p99[i], float64(res[k].p99.Nanoseconds())/1e3)
		}
	}
	for i, e := range es {
		fmt.Printf("%s:%s  p99 at %d%% load (%.0f probes/s) %s µs ratio %s\n", e.exe, e.name, pct, offered,
			p99[i].format("%.0f"), ratios(p99[i], p99[0]).format("%.3fx"))
	}
}

// pacedEntries starts the servers of es, each from its own binary, and
// runs one paced run at rate over them in the given order.
func pacedEntries(es []struct{ exe, name string }, order []int, rate float64) (_ []latResult, err error) {
	ss := make([]*benchServer, 0, len(order))
	defer func() {
		for _, s := range ss {
			err = errors.Join(err, s.stop())
		}
	}()
	for _, i := range order {
		s, err := startBenchServer(es[i].exe, es[i].name)
		if err != nil {
			return nil, err
		}
		ss = append(ss, s)
	}
	return paced(ss, rate, 2*time.Second)
}
