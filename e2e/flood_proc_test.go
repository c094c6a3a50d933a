//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// A flood runs in a process of its own on the attacker's host, the test
// binary run again as TestHelperFlood (Host.Start), as the attacker would
// be a machine of its own: in the test process its sending loop shared a
// Go runtime with the legitimate clients whose setups the scenario times.

// floodHelperArg is the helper's first argument after the test flags; a
// JSON floodSpec follows it.
const floodHelperArg = "usher-e2e-flood"

// floodSpec is a floodPlan as it travels to the helper: requests by kind
// name, and how long to send.
type floodSpec struct {
	Sources int              `json:"sources"`
	Targets []netip.AddrPort `json:"targets"`
	Kinds   []string         `json:"kinds"`
	Rate    float64          `json:"rate"`
	For     time.Duration    `json:"for"`
}

// floodKinds are the requests a flood may send, by name.
var floodKinds = map[string]*probeKind{}

func init() {
	for _, k := range []*probeKind{stockBinding, stockAllocate, probePadded, probeBare, ticketlessKeepalive, lostServerHint} {
		floodKinds[k.name] = k
	}
}

// spec returns p as the helper takes it, to send for d.
func (p *floodPlan) spec(d time.Duration) floodSpec {
	s := floodSpec{Sources: p.sources, Targets: p.targets, Rate: p.rate, For: d}
	for _, k := range p.kinds {
		s.Kinds = append(s.Kinds, k.name)
	}
	return s
}

// plan returns the floodPlan s describes.
func (s floodSpec) plan() (*floodPlan, error) {
	p := &floodPlan{sources: s.Sources, targets: s.Targets, rate: s.Rate}
	for _, n := range s.Kinds {
		k, ok := floodKinds[n]
		if !ok {
			return nil, fmt.Errorf("no request kind %q", n)
		}
		p.kinds = append(p.kinds, k)
	}
	if len(p.kinds) == 0 || len(p.targets) == 0 || p.sources < 1 || p.rate <= 0 {
		return nil, fmt.Errorf("incomplete flood %+v", s)
	}
	return p, nil
}

// TestHelperFlood is the body of a flood process: it sends the floodSpec
// of its second argument from a raw socket of its host's namespace, then
// prints how many datagrams it sent ("sent N"). In a normal run it skips.
func TestHelperFlood(t *testing.T) {
	args := flag.Args()
	if len(args) != 2 || args[0] != floodHelperArg {
		t.Skip("flood process for the flood scenario")
	}
	runtime.GOMAXPROCS(1)
	var s floodSpec
	p, err := decodeSpec(args[1], &s)
	if err == nil {
		var r *rawSender
		if r, err = newRawSender(); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), s.For)
			fmt.Printf("sent %d\n", p.run(ctx, r))
			cancel()
			r.close()
			return
		}
	}
	fmt.Println("flood:", err)
	os.Exit(1)
}

// decodeSpec decodes the JSON spec arg into s and returns its plan.
func decodeSpec(arg string, s *floodSpec) (*floodPlan, error) {
	if err := json.Unmarshal([]byte(arg), s); err != nil {
		return nil, err
	}
	return s.plan()
}

// floodProc is a flood process running.
type floodProc struct{ p *Proc }

// startFlood starts p's flood for d on host h.
func startFlood(t *testing.T, h *Host, p *floodPlan, d time.Duration) *floodProc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	spec, err := json.Marshal(p.spec(d))
	if err != nil {
		t.Fatal(err)
	}
	return &floodProc{h.Start(t, self, "-test.run=^TestHelperFlood$", "-test.count=1", "-test.timeout=0", floodHelperArg, string(spec))}
}

// sentLine is what a flood process prints when it is done.
var sentLine = regexp.MustCompile(`(?m)^sent (\d+)$`)

// wait waits up to timeout for the flood to end and returns how many
// datagrams it sent.
func (f *floodProc) wait(timeout time.Duration) (int64, error) {
	select {
	case <-f.p.Done():
	case <-time.After(timeout):
		_ = f.p.Kill()
		return 0, fmt.Errorf("flood process still running %v after its end: %s", timeout, tail(f.p.Log(), 3))
	}
	m := sentLine.FindStringSubmatch(f.p.Log())
	if m == nil {
		return 0, fmt.Errorf("flood process: %s", tail(f.p.Log(), 3))
	}
	return strconv.ParseInt(m[1], 10, 64)
}
