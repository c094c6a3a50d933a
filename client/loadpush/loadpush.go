// Package loadpush reports an application's load to the Usher agent on its
// machine, for a service whose load block says source = "push".
//
// A report is an HTTP PUT of a JSON object to
// http://AGENT/v1/services/NAME/load:
//
//	PUT /v1/services/game/load HTTP/1.1
//	Content-Type: application/json
//	Authorization: Bearer TOKEN        (only when a token is set)
//
//	{"load":12,"capacity":100}
//
// load is the number of sessions (or any figure the farm balances on) the
// service carries now; capacity is how many it can carry, 0 or absent when
// the application does not say. Both are non-negative integers. The agent
// answers 2xx when it took the report. A report is good for 3 × the
// service's interval: report at least once an interval ([Reporter.Run]
// does), or the agent stops sending clients to this node.
//
// The package imports only the standard library.
package loadpush

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Body is the JSON body of a report.
type Body struct {
	Load     int `json:"load"`
	Capacity int `json:"capacity,omitempty"`
}

// Reporter sends a service's load to the agent.
type Reporter struct {
	// Agent is the agent's API address, "host:port" or a URL such as
	// "http://127.0.0.1:7946".
	Agent string
	// Service is the service's name in the agent's configuration.
	Service string
	// Token, when set, is sent as "Authorization: Bearer Token".
	Token string
	// Client sends the requests (default: a client with a 5s timeout).
	Client *http.Client
}

var defaultClient = &http.Client{Timeout: 5 * time.Second}

// URL is where reports go.
func (r *Reporter) URL() string {
	base := r.Agent
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return strings.TrimRight(base, "/") + "/v1/services/" + url.PathEscape(r.Service) + "/load"
}

// Report sends one report of load and capacity (0: not given).
func (r *Reporter) Report(ctx context.Context, load, capacity int) error {
	if load < 0 || capacity < 0 {
		return fmt.Errorf("loadpush: load %d, capacity %d: must not be negative", load, capacity)
	}
	body, err := json.Marshal(Body{Load: load, Capacity: capacity})
	if err != nil {
		return fmt.Errorf("loadpush: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, r.URL(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("loadpush: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	client := r.Client
	if client == nil {
		client = defaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("loadpush: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("loadpush: PUT %s: %s: %s", r.URL(), resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// Run reports what measure returns at once and then every interval until
// ctx ends, which it returns. A failed report is passed to onError (which
// may be nil) and retried at the next interval.
func (r *Reporter) Run(ctx context.Context, every time.Duration, measure func() (load, capacity int), onError func(error)) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		load, capacity := measure()
		if err := r.Report(ctx, load, capacity); err != nil && ctx.Err() == nil && onError != nil {
			onError(err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
