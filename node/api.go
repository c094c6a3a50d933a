package node

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/usherlb/usher/cluster"
)

// handler returns the HTTP API:
//
//	GET  /v1/health    200 {"ok":true}
//	GET  /v1/status    the agent's Status
//	GET  /v1/view      the load view the responder assigns from
//	GET  /v1/sessions  the session table (read token)
//	GET  /v1/members   every member: address, load, status, voter/leader
//	PUT  /v1/drain     ?node=NAME[&service=NAME][&enable=false]: drain (or
//	                   undrain) a node, or one of its services, through
//	                   Raft; a follower forwards it to the leader (write
//	                   token)
//	DELETE /v1/drain   ?node=NAME[&service=NAME]: undrain (write token)
//	PUT  /v1/leave     leave the cluster gracefully (the process stays up;
//	                   write token)
//	PUT  /v1/reload    read the configuration again, as SIGHUP does: the
//	                   ReloadResult says what applied (write token)
//	PUT  /v1/services/NAME/load  {"load":N,"capacity":M}: the load of a
//	                   service whose load source is push (write token;
//	                   client/loadpush sends it)
//	GET  /v1/keyring   and POST|PUT /v1/keyring/{install,use,remove}: the
//	                   gossip keyring (api_keyring.go)
//	GET  /metrics      Prometheus metrics
//	/v1/raft/peers, /v1/force-leave, /v1/capacity: the operator's changes
//	                   (api_operator.go)
//
// Every request must name the agent in its Host header, and the marked ones
// need a token (see apiauth.go). Errors are {"error": "..."} with a fitting
// status code.
func (a *Agent) handler(log hclog.Logger, acc *apiAccess) http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, n need, h http.HandlerFunc) { mux.HandleFunc(pattern, acc.guard(n, h)) }
	handle("GET /v1/health", needNone, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	handle("GET /v1/status", needNone, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.Status())
	})
	handle("GET /v1/view", needNone, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.viewJSON())
	})
	handle("GET /v1/sessions", needRead, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.sessionsJSON(time.Now()))
	})
	handle("PUT /v1/drain", needWrite, func(w http.ResponseWriter, r *http.Request) {
		on := true
		if s := r.URL.Query().Get("enable"); s != "" {
			v, err := strconv.ParseBool(s)
			if err != nil {
				writeError(w, http.StatusBadRequest, "enable: "+strconv.Quote(s)+" is not a boolean")
				return
			}
			on = v
		}
		a.drain(w, r, on, log)
	})
	handle("DELETE /v1/drain", needWrite, func(w http.ResponseWriter, r *http.Request) {
		a.drain(w, r, false, log)
	})
	handle("PUT /v1/services/{name}/load", needWrite, a.pushLoad)
	handle("GET /v1/members", needNone, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.Members())
	})
	handle("PUT /v1/leave", needWrite, func(w http.ResponseWriter, r *http.Request) {
		log.Info("leave requested through the api", "remote", r.RemoteAddr)
		if err := a.Leave(); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"node": a.cfg.NodeName, "left": true})
	})
	handle("PUT /v1/reload", needWrite, func(w http.ResponseWriter, r *http.Request) {
		res, err := a.ReloadConfig()
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		log.Info("reloaded through the api", "remote", r.RemoteAddr, "applied", res.Applied, "needs_restart", res.NeedRestart)
		writeJSON(w, http.StatusOK, res)
	})
	a.keyringRoutes(handle, log)
	a.operatorRoutes(handle, log)
	handle("GET /metrics", needNone, a.tel.handler().ServeHTTP)
	handle("/", needNone, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/health", "/v1/status", "/v1/view", "/v1/sessions", "/v1/drain", "/v1/members", "/v1/leave", "/v1/reload", "/metrics",
			"/v1/raft/peers", "/v1/force-leave", "/v1/capacity",
			"/v1/keyring", "/v1/keyring/install", "/v1/keyring/use", "/v1/keyring/remove":
			writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path)
		default:
			writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
		}
	})
	return mux
}

// forwardedHeader marks a request one agent forwarded to the leader, so a
// leader change in between cannot make requests bounce between agents.
const forwardedHeader = "X-Usher-Forwarded"

// drain handles PUT and DELETE /v1/drain: the drain goes through Raft, and
// a follower forwards the request to the leader's API.
func (a *Agent) drain(w http.ResponseWriter, r *http.Request, on bool, log hclog.Logger) {
	node := r.URL.Query().Get("node")
	if node == "" {
		writeError(w, http.StatusBadRequest, "node: missing")
		return
	}
	service := r.URL.Query().Get("service")
	if msg := a.checkDrainTarget(node, service); msg != "" {
		writeError(w, http.StatusNotFound, msg)
		return
	}
	key := node
	if service != "" {
		key = cluster.ServiceDrainKey(node, service)
	}
	err := a.DrainNode(key, on)
	if errors.Is(err, cluster.ErrNotLeader) && r.Header.Get(forwardedHeader) == "" {
		if leader, api := a.LeaderAPI(); api != "" {
			a.forward(w, r, leader, api, log)
			return
		}
	}
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, cluster.ErrNotLeader) {
			status = http.StatusServiceUnavailable
		}
		writeError(w, status, err.Error())
		return
	}
	log.Info("drain set through the api", "node", node, "service", service, "draining", on, "remote", r.RemoteAddr)
	out := map[string]any{"node": node, "draining": on}
	if service != "" {
		out["service"] = service
	}
	writeJSON(w, http.StatusOK, out)
}

// checkDrainTarget says what is wrong with a drain of node (or of its
// service, when service is set), or nothing: the node must be a member,
// and the service one its report offers.
func (a *Agent) checkDrainTarget(node, service string) string {
	for _, m := range a.cl.Load().Members() {
		if m.Name != node {
			continue
		}
		if _, ok := m.Report.FindService(service); service != "" && !ok {
			return "service: " + strconv.Quote(service) + " is not a service of node " + strconv.Quote(node)
		}
		return ""
	}
	return "node: " + strconv.Quote(node) + " is not a known node"
}

// forward replays r, which has no body, against the API of the leader
// node at api and copies its answer.
func (a *Agent) forward(w http.ResponseWriter, r *http.Request, leader, api string, log hclog.Logger) {
	a.forwardBody(w, r, leader, api, nil, log)
}

// forwardBody is forward for a request whose body, already read, is body.
// Over HTTPS (when this agent's own API is HTTPS, see LeaderAPI) the
// leader must prove a certificate naming it before the request, and the
// caller's token, are sent. Redirects are not followed and no proxy is
// used: the token goes to the leader or nowhere.
func (a *Agent) forwardBody(w http.ResponseWriter, r *http.Request, leader, api string, body []byte, log hclog.Logger) {
	scheme := "http://"
	tr := &http.Transport{DisableKeepAlives: true}
	if a.cfg.Parsed.APITLS {
		scheme = "https://"
		tr.TLSClientConfig = APIClientTLS(a.tls.Bundle().Verifier, leader)
	}
	// The target is the leader's API address as the farm's gossip (keyed)
	// reports it, and with api_tls the handshake checks that it is that
	// node of the farm; the caller chooses only the path.
	req, err := http.NewRequestWithContext(r.Context(), r.Method, scheme+api+r.URL.RequestURI(), bytes.NewReader(body)) //nolint:gosec // G704: see above
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set(forwardedHeader, a.cfg.NodeName)
	for _, h := range []string{TokenHeader, "Authorization"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	client := http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req) //nolint:gosec // G704: the leader's address, see NewRequestWithContext above
	if err != nil {
		log.Warn("forward to the leader failed", "leader", leader, "leader_api", api, "error", err)
		writeError(w, http.StatusBadGateway, "forward to the leader "+leader+" at "+api+": "+err.Error())
		return
	}
	defer resp.Body.Close()
	log.Debug("forwarded to the leader", "path", r.URL.Path, "leader", leader, "leader_api", api, "status", resp.StatusCode)
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, io.LimitReader(resp.Body, maxForwardAnswer)); err != nil {
		// The status is sent; the caller sees a short body.
		log.Debug("copying the leader's answer failed", "leader", leader, "error", err)
	}
}

// maxForwardAnswer bounds the answer of the leader copied back to the
// caller of a forwarded request.
const maxForwardAnswer = 1 << 20

// MemberInfo is one member as GET /v1/members and `usher members` show it.
type MemberInfo struct {
	Name        string  `json:"name"`
	Gossip      string  `json:"gossip"`
	SessionAddr string  `json:"session_addr"`
	API         string  `json:"api,omitempty"`
	Status      string  `json:"status"`
	Sessions    uint32  `json:"sessions"`
	Capacity    uint32  `json:"capacity"`
	Accepted    uint64  `json:"accepted"`
	Load        float64 `json:"load"`
	Draining    bool    `json:"draining"`
	Voter       bool    `json:"voter"`
	Leader      bool    `json:"leader"`
	ReportAgeMs float64 `json:"report_age_ms"`
	// Services are the member's named services, from its report.
	Services []ServiceInfo `json:"services,omitempty"`
}

// ServiceInfo is one named service of a member in GET /v1/members.
type ServiceInfo struct {
	Name     string  `json:"name"`
	Addr     string  `json:"addr"`
	Addr6    string  `json:"addr6,omitempty"`
	Sessions uint32  `json:"sessions"`
	Capacity uint32  `json:"capacity"`
	Load     float64 `json:"load"`
	// State is accepting, draining, unhealthy (a health check fails) or
	// load-failed (the load source failed or its figure is stale).
	State string `json:"state"`
	// Reason says why a service of the agent answering is not accepting
	// (its failing checks, its load source's error); other members'
	// reasons are in their own logs and APIs.
	Reason string `json:"reason,omitempty"`
}

// Members returns every member as this agent sees it, sorted by name, with
// the farm's drains and capacity overrides applied.
func (a *Agent) Members() []MemberInfo {
	cl := a.cl.Load()
	st := cl.State()
	now := time.Now()
	var out []MemberInfo
	for _, m := range cl.Members() {
		r := m.Report
		capacity := r.Capacity
		if c, ok := st.Capacity[m.Name]; ok {
			capacity = c
		}
		mi := MemberInfo{
			Name:     m.Name,
			Gossip:   m.Gossip.String(),
			API:      r.API,
			Status:   m.Status.String(),
			Sessions: r.Sessions,
			Capacity: capacity,
			Accepted: r.Accepted,
			Draining: r.Draining || st.Drained[m.Name],
			Voter:    m.Voter,
			Leader:   m.Leader,
		}
		if r.Service.IsValid() {
			mi.SessionAddr = r.Service.String()
		}
		if capacity > 0 {
			mi.Load = float64(r.Sessions) / float64(capacity)
		}
		if !m.ReportedAt.IsZero() {
			mi.ReportAgeMs = float64(now.Sub(m.ReportedAt)) / float64(time.Millisecond)
		}
		for _, sr := range r.Services {
			si := serviceInfo(sr, st.Drained[m.Name] || st.Drained[cluster.ServiceDrainKey(m.Name, sr.Name)])
			if m.Name == a.cfg.NodeName {
				si.Reason = a.serviceReason(sr.Name)
			}
			mi.Services = append(mi.Services, si)
		}
		out = append(out, mi)
	}
	slices.SortFunc(out, func(x, y MemberInfo) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// viewNode is one node of GET /v1/view.
type viewNode struct {
	ID         string    `json:"id"`
	Addr       string    `json:"addr"`
	Addr6      string    `json:"addr6,omitempty"`
	Capacity   int       `json:"capacity"`
	Sessions   int       `json:"sessions"`
	Accepted   uint64    `json:"accepted"`
	Draining   bool      `json:"draining"`
	Starting   bool      `json:"starting,omitempty"`
	Suspect    bool      `json:"suspect"`
	ReportedAt time.Time `json:"reported_at"`
}

// viewJSON returns the published view.
func (a *Agent) viewJSON() map[string]any {
	nodes := []viewNode{}
	for _, n := range a.view.Load().Nodes() {
		nodes = append(nodes, viewNode{
			ID: n.ID, Addr: n.Addr.String(), Capacity: n.Capacity, Sessions: n.Sessions,
			Accepted: n.Accepted, Draining: n.Draining, Starting: n.Starting, Suspect: n.Suspect, ReportedAt: n.ReportedAt,
		})
	}
	services := map[string][]viewNode{}
	if pv := a.serviceViews.Load(); pv != nil {
		for name, v := range *pv {
			svc := []viewNode{}
			for _, n := range v.Nodes() {
				vn := viewNode{
					ID: n.ID, Addr: n.Addr.String(), Capacity: n.Capacity, Sessions: n.Sessions,
					Accepted: n.Accepted, Draining: n.Draining, Suspect: n.Suspect, ReportedAt: n.ReportedAt,
				}
				if n.Addr6.IsValid() {
					vn.Addr6 = n.Addr6.String()
				}
				svc = append(svc, vn)
			}
			services[name] = svc
		}
	}
	return map[string]any{"policy": a.cfg.Parsed.Policy.String(), "nodes": nodes, "services": services}
}

// sessionJSON is one session of GET /v1/sessions.
type sessionJSON struct {
	ID          string    `json:"id"`
	Client      string    `json:"client"`
	AgeSeconds  float64   `json:"age_seconds"`
	LastSeen    time.Time `json:"last_seen"`
	IdleSeconds float64   `json:"idle_seconds"`
	Ticketed    bool      `json:"ticketed"`
}

// sessionsJSON returns the session table as of now.
func (a *Agent) sessionsJSON(now time.Time) map[string]any {
	ss := a.ep.Sessions()
	out := make([]sessionJSON, 0, len(ss))
	for _, s := range ss {
		out = append(out, sessionJSON{
			ID:          hex.EncodeToString(s.ID[:]),
			Client:      s.Client.String(),
			AgeSeconds:  now.Sub(s.Created).Seconds(),
			LastSeen:    s.LastSeen,
			IdleSeconds: now.Sub(s.LastSeen).Seconds(),
			Ticketed:    s.Ticketed,
		})
	}
	return map[string]any{"count": len(out), "sessions": out}
}

// writeJSON writes v as the JSON body of a response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeError writes {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
