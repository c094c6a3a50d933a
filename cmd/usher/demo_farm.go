package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/usherlb/usher/node"
)

// demoNodes is how many agents the demo runs; demoVoters of them are Raft
// voters (bootstrap_expect), the others non-voters that autopilot promotes
// when a voter dies.
const (
	demoNodes  = 5
	demoVoters = 3
)

// demoFixedPorts makes the demo try the well-known ports first (gossip
// 7946, session 3479, API 7480 on each node's address, balancer address as
// given). Tests turn it off to stay clear of a farm running on the machine.
var demoFixedPorts = true

// farmNode is one agent process of the demo farm.
type farmNode struct {
	agentAddrs
	agentProc
	killed time.Time // when the demo sent SIGKILL; zero while alive
}

// farm is the demo's five agent processes and their scratch directory.
type farm struct {
	dir   string
	vip   netip.AddrPort
	nodes []*farmNode
	http  *http.Client
	keep  bool // keep dir on Close, for the logs of a failed run
}

// farmPlan is where the agents listen.
type farmPlan struct {
	vip   netip.AddrPort
	nodes []*farmNode
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
	distinct := udpFree(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 11}), 0))
	used := map[netip.AddrPort]bool{}
	for i := range demoNodes {
		ip := netip.AddrFrom4([4]byte{127, 0, 0, 1})
		if distinct {
			ip = netip.AddrFrom4([4]byte{127, 0, 0, byte(11 + i)})
		}
		n := &farmNode{agentAddrs: agentAddrs{name: "n" + strconv.Itoa(i+1)}}
		var ok bool
		for try := range 200 {
			g, s, h := uint16(7946), uint16(3479), uint16(7480)
			if try > 0 || !distinct || !demoFixedPorts {
				g = uint16(20000 + 2*rand.IntN(15000)) // g and g+1 (Raft)
				s, h = uint16(20001+2*rand.IntN(15000)), uint16(20001+2*rand.IntN(15000))
			}
			n.gossip, n.session, n.http = netip.AddrPortFrom(ip, g), netip.AddrPortFrom(ip, s), netip.AddrPortFrom(ip, h)
			raft := netip.AddrPortFrom(ip, g+1)
			all := []netip.AddrPort{n.gossip, raft, n.session, n.http}
			if anyUsed(used, all) || !tcpFree(n.gossip) || !udpFree(n.gossip) || !tcpFree(raft) ||
				!udpFree(n.session) || !tcpFree(n.http) || s == g || s == g+1 || h == g || h == g+1 {
				continue
			}
			for _, a := range all {
				used[a] = true
			}
			ok = true
			break
		}
		if !ok {
			return plan, fmt.Errorf("no free ports for %s on %s", n.name, ip)
		}
		plan.nodes = append(plan.nodes, n)
	}
	plan.vip = want
	if used[want] || want.Port() == 0 || !demoFixedPorts || !udpFree(want) {
		ip := want.Addr()
		if !udpFree(netip.AddrPortFrom(ip, 0)) {
			ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
		plan.vip = netip.AddrPort{}
		for range 200 {
			c := netip.AddrPortFrom(ip, uint16(20000+rand.IntN(30000)))
			if !used[c] && udpFree(c) {
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

// udpFree reports whether a UDP socket can bind ap right now.
func udpFree(ap netip.AddrPort) bool {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// tcpFree reports whether a TCP listener can bind ap right now.
func tcpFree(ap netip.AddrPort) bool {
	l, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(ap))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// startFarm starts the agents of plan as processes of bin, each with its
// data directory and log file under a new temporary directory.
func startFarm(bin string, plan farmPlan, o demoOptions) (*farm, error) {
	dir, err := os.MkdirTemp("", "usher-demo-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	f := &farm{
		dir:   dir,
		vip:   plan.vip,
		nodes: plan.nodes,
		http: &http.Client{
			Timeout:   500 * time.Millisecond,
			Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
		},
	}
	for _, n := range f.nodes {
		if err := f.start(bin, n, o); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// start launches one agent.
func (f *farm) start(bin string, n *farmNode, o demoOptions) error {
	seeds := make([]agentAddrs, 0, demoVoters)
	for _, s := range f.nodes[:demoVoters] {
		seeds = append(seeds, s.agentAddrs)
	}
	creds, err := localFarmArgs(f.dir, n.name)
	if err != nil {
		return fmt.Errorf("credentials of %s: %w", n.name, err)
	}
	args := agentArgs(n.agentAddrs, f.vip, demoVoters, filepath.Join(f.dir, n.name), seeds,
		append(creds,
			"-capacity", strconv.Itoa(max(1000, o.Clients)),
			"-keepalive-interval", o.Keepalive.String(),
			"-dead-after", o.DeadAfter.String())...)
	if err := n.agentProc.start(bin, filepath.Join(f.dir, n.name+".log"), args, nil); err != nil {
		return fmt.Errorf("start agent %s: %w", n.name, err)
	}
	return nil
}

// kill sends SIGKILL to n's process and returns when it was sent.
func (f *farm) kill(n *farmNode) time.Time {
	n.killed = time.Now()
	n.cmd.Process.Kill()
	return n.killed
}

// alive reports whether n was started and not killed by the demo.
func (n *farmNode) alive() bool { return n.cmd != nil && n.killed.IsZero() }

// exitedEarly returns the first agent whose process ended without the
// demo killing it.
func (f *farm) exitedEarly() *farmNode {
	for _, n := range f.nodes {
		if !n.alive() {
			continue
		}
		select {
		case <-n.exited:
			return n
		default:
		}
	}
	return nil
}

// Close kills every agent still running, by PID, reaps them, and removes
// the scratch directory unless keep is set. It is idempotent.
func (f *farm) Close() {
	for _, n := range f.nodes {
		if n.cmd != nil && n.cmd.Process != nil {
			n.cmd.Process.Kill()
		}
	}
	for _, n := range f.nodes {
		if n.exited != nil {
			<-n.exited
		}
	}
	if !f.keep && f.dir != "" {
		os.RemoveAll(f.dir)
		f.dir = ""
	}
}

// status asks n's API for its status.
func (f *farm) status(ctx context.Context, n *farmNode) (node.Status, error) {
	var st node.Status
	err := f.getJSON(ctx, n, "/v1/status", &st)
	return st, err
}

// members asks n's API for the members it sees.
func (f *farm) members(ctx context.Context, n *farmNode) ([]node.MemberInfo, error) {
	var ms []node.MemberInfo
	err := f.getJSON(ctx, n, "/v1/members", &ms)
	return ms, err
}

func (f *farm) getJSON(ctx context.Context, n *farmNode, path string, v any) error {
	body, err := fetchAPI(ctx, f.http, n.http, path, 1<<20)
	if err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

// statuses polls every live agent at once; an unreachable one has no entry.
func (f *farm) statuses(ctx context.Context) map[string]node.Status {
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
			st, err := f.status(ctx, n)
			if err != nil {
				return
			}
			mu.Lock()
			out[n.name] = st
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// writeLogTails writes the last lines of every agent's log to w.
func (f *farm) writeLogTails(w io.Writer, lines int) {
	for _, n := range f.nodes {
		if n.logPath == "" {
			continue
		}
		fmt.Fprintf(w, "---- %s (%s), last %d lines ----\n", n.name, n.logPath, lines)
		file, err := os.Open(n.logPath)
		if err != nil {
			fmt.Fprintf(w, "%v\n", err)
			continue
		}
		var tail []string
		sc := bufio.NewScanner(file)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			tail = append(tail, sc.Text())
			if len(tail) > lines {
				tail = tail[1:]
			}
		}
		file.Close()
		for _, l := range tail {
			fmt.Fprintln(w, l)
		}
	}
}

// errAgentExited reports an agent that ended on its own.
var errAgentExited = errors.New("agent exited")
