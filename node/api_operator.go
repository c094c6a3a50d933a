package node

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/hashicorp/go-hclog"

	"github.com/usherlb/usher/cluster"
)

// operatorRoutes registers the operator's farm-changing endpoints: the Raft
// peers, force-leave and capacity overrides. The changes run on the
// leader: a follower forwards them there, as it does drains.
//
//	GET    /v1/raft/peers           the Raft configuration as this node knows it
//	DELETE /v1/raft/peers?id=NAME   remove a server from it (write token)
//	PUT    /v1/force-leave?node=NAME  a dead member counts as left (write token)
//	PUT    /v1/capacity?node=NAME&capacity=N  override a node's capacity (write token)
//	DELETE /v1/capacity?node=NAME   drop the override (write token)
func (a *Agent) operatorRoutes(handle func(string, need, http.HandlerFunc), log hclog.Logger) {
	handle("GET /v1/raft/peers", needNone, func(w http.ResponseWriter, r *http.Request) {
		peers, err := a.cl.Load().RaftPeers()
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, peers)
	})
	handle("DELETE /v1/raft/peers", needWrite, a.onLeader("id", log, func(id string, _ *http.Request) (any, error) {
		return map[string]any{"removed": id}, a.cl.Load().RemovePeer(id)
	}))
	handle("PUT /v1/force-leave", needWrite, a.onLeader("node", log, func(node string, _ *http.Request) (any, error) {
		return map[string]any{"node": node, "left": true}, a.cl.Load().ForceLeave(node)
	}))
	handle("PUT /v1/capacity", needWrite, a.onLeader("node", log, func(node string, r *http.Request) (any, error) {
		s := r.URL.Query().Get("capacity")
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil || n == 0 {
			return nil, badRequest("capacity: " + strconv.Quote(s) + " is not a whole number of sessions, at least 1")
		}
		if msg := a.checkDrainTarget(node, ""); msg != "" {
			return nil, badRequest(msg)
		}
		return map[string]any{"node": node, "capacity": n}, a.cl.Load().SetCapacity(node, uint32(n))
	}))
	handle("DELETE /v1/capacity", needWrite, a.onLeader("node", log, func(node string, _ *http.Request) (any, error) {
		return map[string]any{"node": node, "capacity": "reported"}, a.cl.Load().ClearCapacity(node)
	}))
}

// badRequest is a problem with the request itself: the answer is a 400.
type badRequest string

func (e badRequest) Error() string { return string(e) }

// onLeader returns the handler of an operator change that names its
// target in the query parameter param and runs on the leader: do makes the
// change and returns the answer. On a follower the request is forwarded to
// the leader (once: a forwarded request is not forwarded again).
func (a *Agent) onLeader(param string, log hclog.Logger, do func(target string, r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		target := r.URL.Query().Get(param)
		if target == "" {
			writeError(w, http.StatusBadRequest, param+": missing")
			return
		}
		ans, err := do(target, r)
		var bad badRequest
		switch {
		case errors.Is(err, cluster.ErrNotLeader) && r.Header.Get(forwardedHeader) == "":
			if leader, api := a.LeaderAPI(); api != "" {
				a.forward(w, r, leader, api, log)
				return
			}
			writeError(w, http.StatusServiceUnavailable, err.Error())
		case errors.As(err, &bad):
			writeError(w, http.StatusBadRequest, err.Error())
		case errors.Is(err, cluster.ErrNotLeader):
			writeError(w, http.StatusServiceUnavailable, err.Error())
		case errors.Is(err, cluster.ErrNotPeer), errors.Is(err, cluster.ErrMemberAlive):
			writeError(w, http.StatusConflict, err.Error())
		case err != nil:
			writeError(w, http.StatusInternalServerError, err.Error())
		default:
			log.Info("operator change through the api", "path", r.URL.Path, "method", r.Method, param, target, "remote", r.RemoteAddr)
			writeJSON(w, http.StatusOK, ans)
		}
	}
}
