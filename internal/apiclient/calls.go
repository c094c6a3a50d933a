package apiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/usherlb/usher/cluster"
	"github.com/usherlb/usher/node"
)

// The calls of the operator commands, one a route of the API (see package
// node's API for what each does on the agent). The ones whose answer a
// command may print as JSON return the raw answer too.

// Members returns the farm's members as the agent sees them.
func (c *Client) Members(ctx context.Context) ([]node.MemberInfo, []byte, error) {
	var members []node.MemberInfo
	raw, err := c.Get(ctx, "/v1/members", &members)
	return members, raw, err
}

// Status returns the agent's status.
func (c *Client) Status(ctx context.Context) (*node.Status, []byte, error) {
	var st node.Status
	raw, err := c.Get(ctx, "/v1/status", &st)
	return &st, raw, err
}

// SetDrain drains (on) or undrains the node named nodeName, or only its
// service when service is not empty.
func (c *Client) SetDrain(ctx context.Context, nodeName, service string, on bool) error {
	method := http.MethodPut
	if !on {
		method = http.MethodDelete
	}
	q := url.Values{"node": {nodeName}}
	if service != "" {
		q.Set("service", service)
	}
	_, err := c.Do(ctx, method, "/v1/drain", q, nil)
	return err
}

// Leave makes the agent leave the farm and returns its node name, empty
// when its answer does not say.
func (c *Client) Leave(ctx context.Context) (string, error) {
	body, err := c.Do(ctx, http.MethodPut, "/v1/leave", nil, nil)
	if err != nil {
		return "", err
	}
	var ans struct {
		Node string `json:"node"`
	}
	_ = json.Unmarshal(body, &ans) // the name only decorates the answer
	return ans.Node, nil
}

// Reload makes the agent read its configuration again and returns what it
// applied and what needs a restart.
func (c *Client) Reload(ctx context.Context) (node.ReloadResult, error) {
	var res node.ReloadResult
	body, err := c.Do(ctx, http.MethodPut, "/v1/reload", nil, nil)
	if err != nil {
		return res, err
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return res, fmt.Errorf("unexpected answer: %w", err)
	}
	return res, nil
}

// Peers returns the servers of the Raft configuration as the agent knows
// it.
func (c *Client) Peers(ctx context.Context) ([]cluster.Peer, []byte, error) {
	var peers []cluster.Peer
	raw, err := c.Get(ctx, "/v1/raft/peers", &peers)
	return peers, raw, err
}

// RemovePeer removes the server id from the Raft configuration.
func (c *Client) RemovePeer(ctx context.Context, id string) error {
	_, err := c.Do(ctx, http.MethodDelete, "/v1/raft/peers", url.Values{"id": {id}}, nil)
	return err
}

// ForceLeave makes the dead member nodeName count as left.
func (c *Client) ForceLeave(ctx context.Context, nodeName string) error {
	_, err := c.Do(ctx, http.MethodPut, "/v1/force-leave", url.Values{"node": {nodeName}}, nil)
	return err
}

// SetCapacity overrides the capacity of nodeName with capacity, a number
// of sessions as the user wrote it (the agent checks it), and returns the
// capacity the agent set.
func (c *Client) SetCapacity(ctx context.Context, nodeName, capacity string) (uint64, error) {
	body, err := c.Do(ctx, http.MethodPut, "/v1/capacity", url.Values{"node": {nodeName}, "capacity": {capacity}}, nil)
	if err != nil {
		return 0, err
	}
	var ans struct {
		Capacity uint64 `json:"capacity"`
	}
	_ = json.Unmarshal(body, &ans) // the number only decorates the answer
	return ans.Capacity, nil
}

// ClearCapacity drops the capacity override of nodeName.
func (c *Client) ClearCapacity(ctx context.Context, nodeName string) error {
	_, err := c.Do(ctx, http.MethodDelete, "/v1/capacity", url.Values{"node": {nodeName}}, nil)
	return err
}

// Keyring returns the farm's gossip keyring and the agent's own.
func (c *Client) Keyring(ctx context.Context) (*node.KeyringStatus, error) {
	var ks node.KeyringStatus
	_, err := c.Get(ctx, "/v1/keyring", &ks)
	return &ks, err
}

// ChangeKeyring applies op, "install", "use" or "remove", to key in the
// farm's keyring.
func (c *Client) ChangeKeyring(ctx context.Context, op, key string) error {
	body, err := json.Marshal(map[string]string{"key": strings.TrimSpace(key)})
	if err != nil {
		return err
	}
	_, err = c.Do(ctx, http.MethodPost, "/v1/keyring/"+op, nil, body)
	return err
}
