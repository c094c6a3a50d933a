package node

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/hashicorp/go-hclog"

	"github.com/usherlb/usher/cluster"
)

// The gossip keyring through the API:
//
//	GET       /v1/keyring          the farm's keyring and this node's, keys
//	                               named by fingerprint (read token)
//	POST|PUT  /v1/keyring/install  {"key": "BASE64"}: add a key to the farm's
//	POST|PUT  /v1/keyring/use      keyring, make an installed key the primary,
//	POST|PUT  /v1/keyring/remove   or remove a key that is not the primary
//	                               (write token; a follower forwards to the
//	                               leader)
//
// A key travels only in a request's body, never in its URL, and no answer
// or log line holds one: keys are named by cluster.KeyFingerprint.

// maxKeyringBody bounds a keyring request's body.
const maxKeyringBody = 4 << 10

// keyringOps maps the path's op to the cluster's change.
var keyringOps = map[string]func(*cluster.Cluster, []byte) error{
	"install": (*cluster.Cluster).InstallKey,
	"use":     (*cluster.Cluster).UseKey,
	"remove":  (*cluster.Cluster).RemoveKey,
}

// KeyringKeys is a gossip keyring as the API shows it: fingerprints only.
type KeyringKeys struct {
	// Primary is the fingerprint of the key gossip encrypts with; empty
	// for none.
	Primary string `json:"primary,omitempty"`
	// Keys are the fingerprints of every key gossip accepts.
	Keys []string `json:"keys"`
}

func newKeyringKeys(kr cluster.Keyring) KeyringKeys {
	primary, keys := kr.Fingerprints()
	return KeyringKeys{Primary: primary, Keys: keys}
}

// KeyringStatus is GET /v1/keyring's answer.
type KeyringStatus struct {
	// Node is the answering node.
	Node string `json:"node"`
	// Farm is the farm's keyring, empty until an operator first changes it
	// (every node then gossips with its configured encrypt_key).
	Farm KeyringKeys `json:"farm"`
	// Local is what this node's gossip uses now.
	Local KeyringKeys `json:"local"`
}

// keyringRoutes adds the keyring's routes to the API.
func (a *Agent) keyringRoutes(handle func(string, need, http.HandlerFunc), log hclog.Logger) {
	handle("GET /v1/keyring", needRead, func(w http.ResponseWriter, r *http.Request) {
		cl := a.cl.Load()
		writeJSON(w, http.StatusOK, KeyringStatus{
			Node:  a.cfg.NodeName,
			Farm:  newKeyringKeys(cl.State().Keyring),
			Local: newKeyringKeys(cl.LocalKeyring()),
		})
	})
	for _, method := range []string{"POST", "PUT"} {
		handle(method+" /v1/keyring/{op}", needWrite, func(w http.ResponseWriter, r *http.Request) {
			a.keyringChange(w, r, log)
		})
	}
}

// keyringChange handles POST and PUT /v1/keyring/{op}.
func (a *Agent) keyringChange(w http.ResponseWriter, r *http.Request, log hclog.Logger) {
	op := r.PathValue("op")
	change, ok := keyringOps[op]
	if !ok {
		writeError(w, http.StatusNotFound, "no such keyring operation: use install, use or remove")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxKeyringBody+1))
	if err != nil || len(body) > maxKeyringBody {
		writeError(w, http.StatusBadRequest, "body: not a keyring request")
		return
	}
	var req struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, `body: not {"key": "BASE64"}`)
		return
	}
	key, err := base64.StdEncoding.DecodeString(req.Key)
	if err != nil || req.Key == "" {
		writeError(w, http.StatusBadRequest, "key: not base64 (usher keygen makes one)")
		return
	}
	err = change(a.cl.Load(), key)
	if errors.Is(err, cluster.ErrNotLeader) && r.Header.Get(forwardedHeader) == "" {
		if leader, api := a.LeaderAPI(); api != "" {
			a.forwardBody(w, r, leader, api, body, log)
			return
		}
	}
	switch {
	case errors.Is(err, cluster.ErrKeyring):
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case errors.Is(err, cluster.ErrNotLeader):
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	fp := cluster.KeyFingerprint(key)
	log.Info("gossip keyring changed through the api", "op", op, "key", fp, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"op": op, "key": fp, "farm": newKeyringKeys(a.cl.Load().State().Keyring)})
}
