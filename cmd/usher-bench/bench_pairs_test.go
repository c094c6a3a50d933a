//go:build linux

package main

import (
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
// probes/s and CPU per answer.
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
	type entry struct{ exe, name string }
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
}
