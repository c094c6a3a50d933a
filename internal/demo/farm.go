package demo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/usherlb/usher/internal/farm"
	"github.com/usherlb/usher/node"
)

// demoNodes is how many agents the demo runs; demoVoters of them are Raft
// voters (bootstrap_expect), the others non-voters that autopilot promotes
// when a voter dies.
const (
	demoNodes  = 5
	demoVoters = 3
)

// fixedPorts makes the demo try the well-known ports first (gossip
// 7946, session 3479, API 7480 on each node's address, balancer address as
// given). Tests turn it off to stay clear of a farm running on the machine.
var fixedPorts = true

// farmNode is one agent process of the demo farm.
type farmNode struct {
	*farm.Agent
	killed time.Time // when the demo sent SIGKILL; zero while alive
}

// demoFarm is the demo's five agent processes and their scratch directory.
type demoFarm struct {
	*farm.Farm
	nodes []*farmNode
}

// farmPlan is where the agents listen.
type farmPlan struct {
	vip   netip.AddrPort
	addrs []farm.Addrs
}

// planFarm picks the agents' addresses: 127.0.0.11-15 with the well-known
// ports when they are free, other free ports when not, and 127.0.0.1 with
// distinct ports where only 127.0.0.1 can be bound (as on macOS). The
// balancer address is vip if free, else a free port on a loopback address.
func planFarm(vip string) (farmPlan, error) {
	var plan farmPlan
	want, err := netip.ParseAddrPort(vip)
	if err != nil {
		return plan, fmt.Errorf("-vip %q: %w", vip, err)
	}
	if !want.Addr().IsLoopback() {
		return plan, fmt.Errorf("-vip %s: the demo runs on loopback only", want)
	}
	// Distinct addresses per node if this system routes all of 127/8.
	distinct := farm.UDPFree(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 11}), 0))
	used := map[netip.AddrPort]bool{}
	for i := range demoNodes {
		ip := netip.AddrFrom4([4]byte{127, 0, 0, 1})
		if distinct {
			ip = netip.AddrFrom4([4]byte{127, 0, 0, byte(11 + i)})
		}
		n := farm.Addrs{Name: "n" + strconv.Itoa(i+1)}
		var ok bool
		for try := range 200 {
			g, s, h := uint16(7946), uint16(3479), uint16(7480)
			if try > 0 || !distinct || !fixedPorts {
				// Random ports only spread the tries; nothing depends on
				// their being unpredictable.
				g = uint16(20000 + 2*rand.IntN(15000))                                    //nolint:gosec // G404: see above; g and g+1 (Raft)
				s, h = uint16(20001+2*rand.IntN(15000)), uint16(20001+2*rand.IntN(15000)) //nolint:gosec // G404: see above
			}
			n.Gossip, n.Session, n.HTTP = netip.AddrPortFrom(ip, g), netip.AddrPortFrom(ip, s), netip.AddrPortFrom(ip, h)
			raft := netip.AddrPortFrom(ip, g+1)
			all := []netip.AddrPort{n.Gossip, raft, n.Session, n.HTTP}
			if anyUsed(used, all) || !farm.TCPFree(n.Gossip) || !farm.UDPFree(n.Gossip) || !farm.TCPFree(raft) ||
				!farm.UDPFree(n.Session) || !farm.TCPFree(n.HTTP) || s == g || s == g+1 || h == g || h == g+1 {
				continue
			}
			for _, a := range all {
				used[a] = true
			}
			ok = true
			break
		}
		if !ok {
			return plan, fmt.Errorf("no free ports for %s on %s", n.Name, ip)
		}
		plan.addrs = append(plan.addrs, n)
	}
	plan.vip = want
	if used[want] || want.Port() == 0 || !fixedPorts || !farm.UDPFree(want) {
		ip := want.Addr()
		if !farm.UDPFree(netip.AddrPortFrom(ip, 0)) {
			ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
		plan.vip = netip.AddrPort{}
		for range 200 {
			c := netip.AddrPortFrom(ip, uint16(20000+rand.IntN(30000))) //nolint:gosec // G404: spreads the tries only
			if !used[c] && farm.UDPFree(c) {
				plan.vip = c
				break
			}
		}
		if !plan.vip.IsValid() {
			return plan, fmt.Errorf("balancer address %s is busy and no free port was found", want)
		}
	}
	return plan, nil
}

func anyUsed(used map[netip.AddrPort]bool, all []netip.AddrPort) bool {
	for _, a := range all {
		if used[a] {
			return true
		}
	}
	return false
}

// startFarm starts the agents of plan as processes of bin, each with its
// data directory and log file under a new temporary directory.
func startFarm(bin string, plan farmPlan, o Options) (*demoFarm, error) {
	hc := &http.Client{
		Timeout:   500 * time.Millisecond,
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	}
	lf, err := farm.New("usher-demo-", plan.vip, plan.addrs, demoVoters, hc)
	if err != nil {
		return nil, err
	}
	f := &demoFarm{Farm: lf}
	for _, a := range lf.Agents {
		f.nodes = append(f.nodes, &farmNode{Agent: a})
	}
	for _, n := range f.nodes {
		if err := f.start(bin, n, o); err != nil {
			return nil, errors.Join(err, f.Close())
		}
	}
	return f, nil
}

// start launches one agent.
func (f *demoFarm) start(bin string, n *farmNode, o Options) error {
	capacity := strconv.Itoa(max(1000, o.Clients))
	args, err := f.Args(n.Agent,
		"-capacity", capacity,
		// Every demo client comes from 127.0.0.1: one source.
		"-max-sessions-per-source", capacity,
		"-keepalive-interval", o.Keepalive.String(),
		"-dead-after", o.DeadAfter.String())
	if err != nil {
		return err
	}
	return f.Start(bin, n.Agent, args, nil)
}

// kill sends SIGKILL to n's process and returns when it was sent.
func (f *demoFarm) kill(n *farmNode) (time.Time, error) {
	at := time.Now()
	if err := n.Cmd.Process.Kill(); err != nil {
		return at, fmt.Errorf("kill %s (pid %d): %w", n.Name, n.Cmd.Process.Pid, err)
	}
	n.killed = at
	return at, nil
}

// alive reports whether n was started and not killed by the demo.
func (n *farmNode) alive() bool { return n.Started() && n.killed.IsZero() }

// exitedEarly returns the first agent whose process ended without the
// demo killing it.
func (f *demoFarm) exitedEarly() *farmNode {
	for _, n := range f.nodes {
		if n.alive() && n.HasExited() {
			return n
		}
	}
	return nil
}

// Close kills every agent still running, by PID, reaps them, and removes
// the scratch directory unless Keep is set. Later calls do nothing.
func (f *demoFarm) Close() error { return f.Stop(0) }

// statuses polls every live agent at once; an unreachable one has no entry.
func (f *demoFarm) statuses(ctx context.Context) map[string]node.Status {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = map[string]node.Status{}
	)
	for _, n := range f.nodes {
		if !n.alive() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := f.Status(ctx, n.Agent)
			if err != nil {
				return
			}
			mu.Lock()
			out[n.Name] = st
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// errAgentExited reports an agent that ended on its own.
var errAgentExited = errors.New("agent exited")
