package farm

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"

	"github.com/usherlb/usher/node"
)

// maxAnswer bounds an API answer DoJSON reads.
const maxAnswer = 4 << 20

// API asks one agent's HTTP API over a client of the caller's, which
// decides how to reach the agent and, for HTTPS, whom to trust.
type API struct {
	HTTP  *http.Client
	Addr  netip.AddrPort
	HTTPS bool   // the agent serves its API over TLS
	Token string // sent in node.TokenHeader when not empty
}

// URL returns the address of path on the agent's API.
func (c API) URL(path string) string {
	scheme := "http://"
	if c.HTTPS {
		scheme = "https://"
	}
	return scheme + c.Addr.String() + path
}

// Do sends method path without a body and returns the answer's body, at
// most limit bytes. An answer outside 2xx is an error that carries the
// API's message.
func (c API) Do(ctx context.Context, method, path string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.URL(path), nil)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set(node.TokenHeader, c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(e.Error))
	}
	return body, nil
}

// Get fetches path, at most limit bytes.
func (c API) Get(ctx context.Context, path string, limit int64) ([]byte, error) {
	return c.Do(ctx, http.MethodGet, path, limit)
}

// GetJSON fetches path and decodes its JSON into v.
func (c API) GetJSON(ctx context.Context, path string, v any) error {
	return c.DoJSON(ctx, http.MethodGet, path, v)
}

// DoJSON sends method path and decodes the JSON answer into v, unless v
// is nil.
func (c API) DoJSON(ctx context.Context, method, path string, v any) error {
	body, err := c.Do(ctx, method, path, maxAnswer)
	if err != nil || v == nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}
