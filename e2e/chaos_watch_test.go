//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// Status polling: evidence of who serves that does not come from the
// serving node's own record.
const (
	// pollEvery is how often the status poller queries each agent.
	pollEvery = 5 * time.Millisecond
	// pollTimeout abandons a query: one to a paused agent hangs until it
	// wakes, and the queries still in flight then must be recent, so that
	// what the agent says on waking is timed as of just before.
	pollTimeout = 250 * time.Millisecond
	// pollInFlight bounds the queries in flight to one agent.
	pollInFlight = 8
)

// statusPoller queries every agent's GET /v1/status every pollEvery, from
// the agent's own host (so a cut link or an isolation does not hide it),
// and records every answer that says the agent serves as a Sighting timed
// like the prober's answers: the clock read before the query went out and
// once its answer arrived. Each agent is polled on its own, so a paused or
// slow agent delays no other's record.
type statusPoller struct {
	stop    chan struct{}
	wg      sync.WaitGroup
	clients []*http.Client

	mu        sync.Mutex
	sightings []Sighting
	answered  int
}

// startStatusPoller starts polling every agent of c until close.
func startStatusPoller(c *chaosCluster) *statusPoller {
	sp := &statusPoller{stop: make(chan struct{})}
	for _, a := range c.agents {
		hc := &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: pollInFlight,
			DialContext:         dialFrom(a.host),
			TLSClientConfig:     a.api.HTTP.Transport.(*http.Transport).TLSClientConfig,
		}}
		sp.clients = append(sp.clients, hc)
		sp.wg.Add(1)
		go sp.run(a.name, a.api.URL("/v1/status"), hc)
	}
	c.t.Cleanup(sp.close)
	return sp
}

// run polls one agent every pollEvery, with at most pollInFlight queries
// outstanding.
func (sp *statusPoller) run(node, url string, hc *http.Client) {
	defer sp.wg.Done()
	slots := make(chan struct{}, pollInFlight)
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		select {
		case <-sp.stop:
			return
		case <-t.C:
		}
		select {
		case slots <- struct{}{}:
		default:
			continue // every slot hangs on a paused or stalled agent
		}
		sp.wg.Add(1)
		go func() {
			defer sp.wg.Done()
			defer func() { <-slots }()
			sp.poll(node, url, hc)
		}()
	}
}

// poll queries one agent once and records a sighting if it serves.
func (sp *statusPoller) poll(node, url string, hc *http.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return
	}
	sent := Monotonic()
	resp, err := hc.Do(req)
	// The agent decided what it reports before it sent the headers.
	recv := Monotonic()
	if err != nil {
		return // down, paused past the timeout, or restarting
	}
	defer resp.Body.Close()
	var st agentStatus
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
		return
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.answered++
	if st.Serving {
		sp.sightings = append(sp.sightings, Sighting{Node: node, Term: st.Term, Sent: sent, Recv: recv})
	}
}

// close stops the poller and waits for its queries; it is idempotent.
func (sp *statusPoller) close() {
	select {
	case <-sp.stop:
		return
	default:
	}
	close(sp.stop)
	sp.wg.Wait()
	for _, hc := range sp.clients {
		hc.CloseIdleConnections()
	}
}

// snapshot returns the sightings so far and how many queries were
// answered.
func (sp *statusPoller) snapshot() ([]Sighting, int) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return append([]Sighting(nil), sp.sightings...), sp.answered
}

// sightings returns every sighting of a node serving so far: the answers
// at the VIP of the prober pr and of the cluster's size prober (unnamed,
// the stock ones without a term), and the status polls that found an agent
// serving.
func (c *chaosCluster) sightings(pr *prober) []Sighting {
	var out []Sighting
	for _, p := range []*prober{pr, c.sizes} {
		if p == nil {
			continue
		}
		for _, a := range p.snapshot() {
			if a.vip {
				out = append(out, Sighting{Term: a.term, Sent: a.sent, Recv: a.recv})
			}
		}
	}
	if c.polls != nil {
		s, _ := c.polls.snapshot()
		out = append(out, s...)
	}
	return out
}

// named counts the sightings that name their node: the status polls'.
func named(s []Sighting) int {
	n := 0
	for _, x := range s {
		if x.Node != "" {
			n++
		}
	}
	return n
}
