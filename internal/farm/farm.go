package farm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/usherlb/usher/node"
)

// Agent is one agent process of a farm and the addresses it serves.
type Agent struct {
	Addrs
	Proc
}

// Farm is a set of local agent processes and their scratch directory.
// The first Voters agents are the voter-eligible ones and the seeds every
// agent joins.
type Farm struct {
	Dir    string
	VIP    netip.AddrPort
	Agents []*Agent
	Voters int
	HTTP   *http.Client // asks the agents' APIs
	Creds  Credentials  // in Dir, of the farm Label
	Keep   bool         // keep Dir on Stop, for the logs of a failed run

	stopped bool
}

// New makes a farm of agents at addrs with the balancer address vip, the
// first voters of them voter-eligible, in a new temporary directory named
// by pattern (as os.MkdirTemp takes it). Nothing runs until Start.
func New(pattern string, vip netip.AddrPort, addrs []Addrs, voters int, hc *http.Client) (*Farm, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	f := &Farm{Dir: dir, VIP: vip, Voters: min(voters, len(addrs)), HTTP: hc, Creds: Credentials{Dir: dir, Label: Label}}
	for _, a := range addrs {
		f.Agents = append(f.Agents, &Agent{Addrs: a})
	}
	return f, nil
}

// Args returns agent a's command line: vip mode bind, profile fast, its
// addresses, the voters as seeds, the farm's credentials (made on the
// first call) and more.
func (f *Farm) Args(a *Agent, more ...string) ([]string, error) {
	seeds := make([]netip.AddrPort, 0, f.Voters)
	for _, s := range f.Agents[:f.Voters] {
		seeds = append(seeds, s.Gossip)
	}
	creds, err := f.Creds.Args(a.Name)
	if err != nil {
		return nil, fmt.Errorf("credentials of %s: %w", a.Name, err)
	}
	spec := AgentSpec{
		Addrs:   a.Addrs,
		VIP:     f.VIP,
		Expect:  f.Voters,
		DataDir: filepath.Join(f.Dir, a.Name),
		Seeds:   seeds,
		Extra:   append(creds, more...),
	}
	return spec.Args(), nil
}

// Start launches agent a as exe with args, env added to the environment,
// its output to Dir/NAME.log.
func (f *Farm) Start(exe string, a *Agent, args, env []string) error {
	if err := a.Proc.Start(exe, filepath.Join(f.Dir, a.Name+".log"), args, env); err != nil {
		return fmt.Errorf("start agent %s: %w", a.Name, err)
	}
	return nil
}

// Stop ends every agent by PID: SIGTERM first, then SIGKILL to those
// still running after grace (at once if grace is 0); it reaps them and
// removes Dir unless Keep is set. It returns what failed: an agent that
// could not be signalled is not waited for. Later calls do nothing.
func (f *Farm) Stop(grace time.Duration) error {
	if f.stopped {
		return nil
	}
	f.stopped = true
	var errs []error
	if grace > 0 {
		for _, a := range f.Agents {
			if a.Started() {
				errs = append(errs, signal(a, syscall.SIGTERM))
			}
		}
		deadline := time.NewTimer(grace)
		defer deadline.Stop()
		for _, a := range f.Agents {
			if !a.Started() {
				continue
			}
			select {
			case <-a.Exited():
			case <-deadline.C:
			}
		}
	}
	for _, a := range f.Agents {
		if a.Started() && !a.HasExited() {
			err := signal(a, syscall.SIGKILL)
			if err == nil {
				<-a.Exited()
			}
			errs = append(errs, err)
		}
	}
	if f.HTTP != nil {
		f.HTTP.CloseIdleConnections()
	}
	if !f.Keep && f.Dir != "" {
		errs = append(errs, os.RemoveAll(f.Dir))
	}
	return errors.Join(errs...)
}

// signal sends sig to a's process; a process that has already ended is no
// error.
func signal(a *Agent, sig syscall.Signal) error {
	if err := a.Cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s (pid %d): %v: %w", a.Name, a.Cmd.Process.Pid, sig, err)
	}
	return nil
}

// ExitedCount returns how many agents have ended.
func (f *Farm) ExitedCount() int {
	n := 0
	for _, a := range f.Agents {
		if a.HasExited() {
			n++
		}
	}
	return n
}

// API returns a client of a's API.
func (f *Farm) API(a *Agent) API { return API{HTTP: f.HTTP, Addr: a.HTTP} }

// Get fetches path from a's API, at most limit bytes.
func (f *Farm) Get(ctx context.Context, a *Agent, path string, limit int64) ([]byte, error) {
	return f.API(a).Get(ctx, path, limit)
}

// GetJSON fetches path from a's API into v.
func (f *Farm) GetJSON(ctx context.Context, a *Agent, path string, v any) error {
	return f.API(a).GetJSON(ctx, path, v)
}

// Status asks a's API for its status.
func (f *Farm) Status(ctx context.Context, a *Agent) (node.Status, error) {
	var st node.Status
	err := f.GetJSON(ctx, a, "/v1/status", &st)
	return st, err
}

// Members asks a's API for the members it sees.
func (f *Farm) Members(ctx context.Context, a *Agent) ([]node.MemberInfo, error) {
	var ms []node.MemberInfo
	err := f.GetJSON(ctx, a, "/v1/members", &ms)
	return ms, err
}

// Each runs fn for every agent, workers at a time, and waits.
func (f *Farm) Each(workers int, fn func(i int, a *Agent)) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		next int
	)
	for range min(workers, len(f.Agents)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(f.Agents) {
					return
				}
				fn(i, f.Agents[i])
			}
		}()
	}
	wg.Wait()
}

// WriteLogTails writes the last lines of every started agent's log to w.
func (f *Farm) WriteLogTails(w io.Writer, lines int) {
	for _, a := range f.Agents {
		if a.LogPath == "" {
			continue
		}
		fmt.Fprintf(w, "---- %s (%s), last %d lines ----\n", a.Name, a.LogPath, lines)
		for _, l := range tailLines(a.LogPath, lines) {
			fmt.Fprintln(w, l)
		}
	}
}

// tailLines returns the last n lines of the file at path, or the error
// reading it as the one line.
func tailLines(path string, n int) []string {
	file, err := os.Open(path)
	if err != nil {
		return []string{err.Error()}
	}
	defer file.Close()
	var tail []string
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		tail = append(tail, sc.Text())
		if len(tail) > n {
			tail = tail[1:]
		}
	}
	return tail
}
