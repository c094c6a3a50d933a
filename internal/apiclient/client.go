// Package apiclient calls an Usher agent's HTTP API the way the operator
// commands of cmd/usher do: it finds the agent (an address, or
// $USHER_HTTP_ADDR), the API token ($USHER_HTTP_TOKEN or the file
// $USHER_HTTP_TOKEN_FILE names) and, for an https:// agent, the farm CA its
// certificate must chain to ($USHER_HTTP_CA_FILE); it sends a request, and
// turns every failure into an error that says what to do about it. The
// commands register their -http and -ca-file flags with RegisterFlags, and
// make each call through a method of Client named after it (Members,
// SetDrain, Keyring, ...), which knows the route and the answer's shape.
//
// A Client keeps no idle connection, uses no proxy for a loopback address
// and follows no redirect, so the token goes to the named agent or nowhere.
// Leader forwarding is the agent's business: a follower forwards writes to
// the leader itself (package node's API), so a Client talks to one agent.
package apiclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/usherlb/usher/internal/pki"
	"github.com/usherlb/usher/node"
)

// The environment variables that say how to reach an agent's API when no
// flag does.
const (
	// AddrEnv names the variable that replaces DefaultAddr.
	AddrEnv = "USHER_HTTP_ADDR"
	// CAFileEnv names the variable that gives the farm CA file.
	CAFileEnv = "USHER_HTTP_CA_FILE"
	// TokenEnv names the variable that holds the API token.
	TokenEnv = "USHER_HTTP_TOKEN" //nolint:gosec // G101: the name of a variable, not a token
	// TokenFileEnv names the variable that names a file holding the token.
	TokenFileEnv = "USHER_HTTP_TOKEN_FILE" //nolint:gosec // G101: the name of a variable, not a token
)

const (
	// DefaultAddr is where an agent's API listens unless configured
	// otherwise (node.DevConfig and the config file's default).
	DefaultAddr = "127.0.0.1:7480"
	// Timeout bounds one API call, connection included. It is above the
	// agent's own bound on a graceful leave (5 s).
	Timeout = 10 * time.Second
	// maxAnswer bounds the size of an API answer read into memory.
	maxAnswer = 8 << 20
)

// Addr returns the API address to use: flagValue, else $USHER_HTTP_ADDR,
// else DefaultAddr.
func Addr(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if env := os.Getenv(AddrEnv); env != "" {
		return env
	}
	return DefaultAddr
}

// CAFile returns the farm CA file to use: flagValue, else
// $USHER_HTTP_CA_FILE; empty when neither is set.
func CAFile(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	return os.Getenv(CAFileEnv)
}

// Token returns the API token from $USHER_HTTP_TOKEN or the file
// $USHER_HTTP_TOKEN_FILE names; empty when neither is set.
func Token() (string, error) {
	if tok := os.Getenv(TokenEnv); tok != "" {
		return tok, nil
	}
	file := os.Getenv(TokenFileEnv)
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file) //nolint:gosec // G703: the operator names the file in their own environment
	if err != nil {
		return "", fmt.Errorf("$%s: %w", TokenFileEnv, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Client calls one agent's HTTP API.
type Client struct {
	addr  string // host:port, for messages
	base  string // scheme://host:port
	token string // sent with every request when set
	ca    string // the farm CA file, for messages
	http  *http.Client
}

// New returns a client for the API at addr, host:port or an http(s):// URL,
// sending the token Token finds. An https:// agent must prove a certificate
// of the farm CA in the file caFile names (see node.APIClientTLS).
func New(addr, caFile string) (*Client, error) {
	base := addr
	if !strings.Contains(addr, "://") {
		base = "http://" + addr
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("-http: %q is not a host:port address", addr)
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return nil, fmt.Errorf("-http: %q is not a host:port address", addr)
	}
	token, err := Token()
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{DisableKeepAlives: true, Proxy: http.ProxyFromEnvironment}
	if u.Scheme == "https" {
		if tr.TLSClientConfig, err = farmTLS(caFile); err != nil {
			return nil, err
		}
	}
	return &Client{
		addr:  u.Host,
		base:  u.Scheme + "://" + u.Host,
		token: token,
		ca:    caFile,
		http: &http.Client{
			Timeout:       Timeout,
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// farmTLS returns the TLS configuration that checks an agent's certificate
// against the farm CA in the file ca.
func farmTLS(ca string) (*tls.Config, error) {
	if ca == "" {
		return nil, fmt.Errorf("an https:// agent needs the farm CA certificate: set -ca-file or $%s", CAFileEnv)
	}
	caPEM, err := os.ReadFile(ca)
	if err != nil {
		return nil, fmt.Errorf("-ca-file: %w", err)
	}
	v, err := pki.NewVerifier(caPEM)
	if err != nil {
		return nil, fmt.Errorf("-ca-file: %s is not an Usher farm CA certificate: %w", ca, err)
	}
	return node.APIClientTLS(v, ""), nil
}

// Addr returns the host:port of the agent the client calls.
func (c *Client) Addr() string { return c.addr }

// Do sends method path?query with a JSON body (none when nil) and returns
// the answer's body. An answer outside 2xx becomes an error carrying the
// API's message.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body []byte) ([]byte, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set(node.TokenHeader, c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("read the answer of the agent at %s: %w", c.addr, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, apiError(resp, answer)
	}
	return answer, nil
}

// Get calls GET path and decodes the JSON answer into v; it also returns the
// raw answer.
func (c *Client) Get(ctx context.Context, path string, v any) ([]byte, error) {
	body, err := c.Do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, fmt.Errorf("the agent at %s answered %s with something else than the expected JSON: %w", c.addr, path, err)
	}
	return body, nil
}

// Close releases the client's connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// transportError explains a failed request: no agent, no answer in time, or
// an interrupted command.
func (c *Client) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("the agent at %s did not answer within %v", c.addr, Timeout)
		}
		err = ue.Err
	}
	if errors.Is(err, node.ErrAPICertificate) {
		return fmt.Errorf("the agent at %s is not a node of the farm of %s: %w", c.addr, c.ca, err)
	}
	return fmt.Errorf("cannot reach the agent at %s (is it running? see -http and $%s): %w", c.addr, AddrEnv, err)
}

// apiError turns an error answer into an error: the API's {"error": "..."}
// message if there is one, else the status and the start of the body.
func apiError(resp *http.Response, body []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		if resp.StatusCode == http.StatusUnauthorized {
			return fmt.Errorf("%s: set $%s (or $%s) to the agent's api token", e.Error, TokenEnv, TokenFileEnv)
		}
		return errors.New(e.Error)
	}
	text := strings.TrimSpace(string(body))
	if len(text) > 200 {
		text = text[:200] + "..."
	}
	if text == "" {
		return fmt.Errorf("the agent answered %s", resp.Status)
	}
	return fmt.Errorf("the agent answered %s: %s", resp.Status, text)
}
