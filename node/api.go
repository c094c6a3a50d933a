package node

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
)

// handler returns the HTTP API:
//
//	GET  /v1/health    200 {"ok":true}
//	GET  /v1/status    the agent's Status
//	GET  /v1/view      the load view the responder assigns from
//	GET  /v1/sessions  the session table
//	PUT  /v1/drain     ?node=NAME[&enable=false]: drain (or undrain) a node
//	DELETE /v1/drain   ?node=NAME: undrain a node
//	GET  /metrics      Prometheus metrics
//
// Errors are {"error": "..."} with a fitting status code.
func (a *Agent) handler(log hclog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.Status())
	})
	mux.HandleFunc("GET /v1/view", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.viewJSON())
	})
	mux.HandleFunc("GET /v1/sessions", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.sessionsJSON(time.Now()))
	})
	mux.HandleFunc("PUT /v1/drain", func(w http.ResponseWriter, r *http.Request) {
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
	mux.HandleFunc("DELETE /v1/drain", func(w http.ResponseWriter, r *http.Request) {
		a.drain(w, r, false, log)
	})
	metrics := a.tel.handler()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		a.exportMetrics()
		metrics.ServeHTTP(w, r)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/health", "/v1/status", "/v1/view", "/v1/sessions", "/v1/drain", "/metrics":
			writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path)
		default:
			writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
		}
	})
	return mux
}

// drain handles PUT and DELETE /v1/drain.
func (a *Agent) drain(w http.ResponseWriter, r *http.Request, on bool, log hclog.Logger) {
	node := r.URL.Query().Get("node")
	switch node {
	case "":
		writeError(w, http.StatusBadRequest, "node: missing")
		return
	case a.cfg.NodeName:
	default:
		writeError(w, http.StatusNotFound, "node: "+strconv.Quote(node)+" is not a known node")
		return
	}
	a.SetDraining(on)
	log.Info("drain set through the api", "node", node, "draining", on, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"node": node, "draining": on})
}

// viewNode is one node of GET /v1/view.
type viewNode struct {
	ID         string    `json:"id"`
	Addr       string    `json:"addr"`
	Capacity   int       `json:"capacity"`
	Sessions   int       `json:"sessions"`
	Accepted   uint64    `json:"accepted"`
	Draining   bool      `json:"draining"`
	Suspect    bool      `json:"suspect"`
	ReportedAt time.Time `json:"reported_at"`
}

// viewJSON returns the published view.
func (a *Agent) viewJSON() map[string]any {
	nodes := []viewNode{}
	for _, n := range a.view.Load().Nodes() {
		nodes = append(nodes, viewNode{
			ID: n.ID, Addr: n.Addr.String(), Capacity: n.Capacity, Sessions: n.Sessions,
			Accepted: n.Accepted, Draining: n.Draining, Suspect: n.Suspect, ReportedAt: n.ReportedAt,
		})
	}
	return map[string]any{"policy": a.cfg.Parsed.Policy.String(), "nodes": nodes}
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
