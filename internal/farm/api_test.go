package farm

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/usherlb/usher/node"
)

// TestAPI checks that API sends the token, takes any 2xx, decodes JSON, and
// turns another status into an error carrying the API's message.
func TestAPI(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(node.TokenHeader) != "tok" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"needs a token"}`))
			return
		}
		switch r.Method + " " + r.URL.Path {
		case "GET /v1/status":
			_, _ = w.Write([]byte(`{"node":"n1","serving":true}`))
		case "PUT /v1/drain":
			w.WriteHeader(http.StatusNoContent)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	addr := netip.MustParseAddrPort(srv.Listener.Addr().String())
	ctx := context.Background()
	api := API{HTTP: srv.Client(), Addr: addr, Token: "tok"}
	var st node.Status
	if err := api.GetJSON(ctx, "/v1/status", &st); err != nil || st.Node != "n1" || !st.Serving {
		t.Errorf("GetJSON: %+v, %v", st, err)
	}
	if err := api.DoJSON(ctx, http.MethodPut, "/v1/drain", nil); err != nil {
		t.Errorf("PUT answered 204: %v", err)
	}
	if _, err := api.Get(ctx, "/nowhere", 1<<10); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a 404 gave %v", err)
	}
	api.Token = ""
	if _, err := api.Get(ctx, "/v1/status", 1<<10); err == nil || !strings.Contains(err.Error(), "needs a token") {
		t.Errorf("a 401 gave %v, want the API's message", err)
	}
	api.HTTPS = true
	if _, err := api.Get(ctx, "/v1/status", 1<<10); err == nil {
		t.Error("HTTPS to a plain HTTP server succeeded")
	}
}
