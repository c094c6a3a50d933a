package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/usherlb/usher/client"
	"github.com/usherlb/usher/node"
)

// runDemo implements `usher demo`: a dev agent and a few hundred client
// sessions in one process, on loopback.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", "[-clients N] [-duration D]",
		`Start a development agent and N client sessions in this process, on loopback.
The clients probe the balancer address, are redirected to the agent's session
endpoint with a ticket, and keep their sessions alive; the demo prints
progress every second and a summary at the end. If 127.0.0.100:3478 is busy
(say, an agent -dev is running), the demo uses free loopback ports.`, stderr)
	clients := fs.Int("clients", 300, "number of client sessions")
	duration := fs.Duration("duration", 10*time.Second, "how long to keep the sessions alive")
	vip := fs.String("vip", "127.0.0.100:3478", "balancer address to try first")
	keepalive := fs.Duration("keepalive", 500*time.Millisecond, "keepalive interval given to clients (a session is declared dead after 6 missed)")
	verbose := fs.Bool("v", false, "show the agent's logs")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if *clients < 1 || *duration <= 0 || *keepalive <= 0 {
		fmt.Fprintln(stderr, "usher demo: -clients, -duration and -keepalive must be positive")
		return 2
	}

	level := hclog.Warn
	if *verbose {
		level = hclog.Info
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "usher", Level: level, Output: stderr})
	a, err := startDemoAgent(*vip, *clients, *keepalive, logger)
	if err != nil {
		fmt.Fprintf(stderr, "usher demo: %v\n", err)
		return 1
	}
	defer a.Close()
	fmt.Fprintf(stdout, "agent up: balancer %s, session endpoint %s, http %s\n", a.VIPAddr(), a.SessionAddr(), a.HTTPAddr())

	start := time.Now()
	sessions, failures := dialAll(ctx, a.VIPAddr(), *clients)
	defer func() {
		for _, s := range sessions {
			s.Close()
		}
	}()
	assigned := 0
	for _, s := range sessions {
		if s.Server() == a.SessionAddr() {
			assigned++
		}
	}
	fmt.Fprintf(stdout, "dialed %d sessions in %v: %d assigned to %s, %d failed\n",
		len(sessions), time.Since(start).Round(time.Millisecond), assigned, a.SessionAddr(), failures)

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.NewTimer(*duration)
	defer end.Stop()
	began := time.Now()
loop:
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(stdout, "interrupted")
			break loop
		case <-end.C:
			break loop
		case <-tick.C:
			t := sumStats(sessions)
			st := a.Status()
			fmt.Fprintf(stdout, "[%4.1fs] load=%d/%d keepalives=%d answered=%d lost=%d reassigned=%d\n",
				time.Since(began).Seconds(), st.Sessions, st.Capacity, t.KeepalivesSent, t.KeepalivesAnswered, t.Lost, t.Reassignments)
		}
	}

	t := sumStats(sessions)
	st := a.Status()
	as := a.Stats()
	disturbed := 0
	for _, s := range sessions {
		if x := s.Stats(); x.Lost > 0 || x.Reassignments > 0 {
			disturbed++
		}
	}
	fmt.Fprintf(stdout, `
summary
  sessions assigned    %d of %d (%d dials failed)
  probes answered      %d (dropped: %v)
  keepalives           %d sent, %d answered (%.1f%%)
  disturbed sessions   %d (lost events %d, reassignments %d)
  worst keepalive gap  %v
  agent load           %d sessions of %d, %d accepted, %d refused for tickets
`, assigned, *clients, failures,
		as.Responder.Answered, as.Responder.Drops,
		t.KeepalivesSent, t.KeepalivesAnswered, percent(t.KeepalivesAnswered, t.KeepalivesSent),
		disturbed, t.Lost, t.Reassignments,
		t.MaxKeepaliveGap.Round(time.Millisecond),
		st.Sessions, st.Capacity, st.Accepted, as.Endpoint.Refused)
	if assigned != *clients {
		return 1
	}
	return 0
}

// startDemoAgent starts a dev agent on vip, or on free loopback ports if
// that fails.
func startDemoAgent(vip string, clients int, keepalive time.Duration, logger hclog.Logger) (*node.Agent, error) {
	cfg := node.DevConfig()
	cfg.NodeName = "demo"
	cfg.VIP = vip
	cfg.HTTP = "127.0.0.1:0"
	cfg.Capacity = max(1000, clients)
	cfg.KeepaliveInterval = keepalive.String()
	cfg.DeadAfter = (6 * keepalive).String()
	cfg.SessionTTL = (8 * keepalive).String()
	cfg.RequireTicket = true
	a, err := node.New(cfg, logger)
	if err == nil {
		return a, nil
	}
	logger.Warn("dev addresses busy; using free loopback ports", "error", err)
	cfg.VIP = "127.0.0.1:0"
	cfg.SessionAddr = "127.0.0.1:0"
	return node.New(cfg, logger)
}

// dialAll opens n client sessions with the balancer, a few dozen at a time.
func dialAll(ctx context.Context, balancer netip.AddrPort, n int) ([]*client.Session, int) {
	var (
		mu       sync.Mutex
		sessions []*client.Session
		failures int
		wg       sync.WaitGroup
		sem      = make(chan struct{}, 32)
	)
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			s, err := client.Dial(dctx, balancer, client.Options{
				LocalAddr: netip.MustParseAddrPort("127.0.0.1:0"),
				Events:    64,
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures++
				return
			}
			sessions = append(sessions, s)
		}()
	}
	wg.Wait()
	return sessions, failures
}

// sumStats adds up the sessions' counters; MaxKeepaliveGap is the largest.
func sumStats(sessions []*client.Session) client.Stats {
	var t client.Stats
	for _, s := range sessions {
		x := s.Stats()
		t.KeepalivesSent += x.KeepalivesSent
		t.KeepalivesAnswered += x.KeepalivesAnswered
		t.Lost += x.Lost
		t.Reassignments += x.Reassignments
		t.MaxKeepaliveGap = max(t.MaxKeepaliveGap, x.MaxKeepaliveGap)
	}
	return t
}

func percent(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}
