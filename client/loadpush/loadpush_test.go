package loadpush

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

type seen struct {
	method, path, auth, ctype, body string
}

func agent(t *testing.T, status int) (*httptest.Server, chan seen) {
	t.Helper()
	ch := make(chan seen, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- seen{r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(b)}
		if status != http.StatusNoContent {
			http.Error(w, "token refused", status)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func TestReport(t *testing.T) {
	cases := []struct {
		name       string
		service    string
		token      string
		load, capa int
		status     int
		want       seen
		err        string
	}{
		{name: "load and capacity", service: "game", load: 12, capa: 100, status: 204,
			want: seen{"PUT", "/v1/services/game/load", "", "application/json", `{"load":12,"capacity":100}`}},
		{name: "no capacity, token", service: "turn", token: "s3cret", load: 0, status: 204,
			want: seen{"PUT", "/v1/services/turn/load", "Bearer s3cret", "application/json", `{"load":0}`}},
		{name: "name escaped", service: "a b", load: 1, status: 204,
			want: seen{"PUT", "/v1/services/a%20b/load", "", "application/json", `{"load":1}`}},
		{name: "refused", service: "game", load: 1, status: 401, err: "401 Unauthorized: token refused"},
		{name: "negative", service: "game", load: -1, status: 204, err: "must not be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, ch := agent(t, tc.status)
			r := &Reporter{Agent: strings.TrimPrefix(srv.URL, "http://"), Service: tc.service, Token: tc.token}
			err := r.Report(context.Background(), tc.load, tc.capa)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Report() = %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := <-ch; got != tc.want {
				t.Fatalf("agent saw %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestBodyRoundTrip(t *testing.T) {
	var b Body
	if err := json.Unmarshal([]byte(`{"load":3,"capacity":9}`), &b); err != nil || b != (Body{3, 9}) {
		t.Fatalf("Body = %+v, %v", b, err)
	}
}

func TestRun(t *testing.T) {
	srv, ch := agent(t, 204)
	r := &Reporter{Agent: srv.URL + "/", Service: "game"}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	n := 0
	done := make(chan error)
	go func() {
		done <- r.Run(ctx, 5*time.Millisecond, func() (int, int) {
			mu.Lock()
			defer mu.Unlock()
			n++
			return n, 0
		}, func(err error) { t.Error(err) })
	}()
	for i := 1; i <= 3; i++ {
		if got, want := (<-ch).body, `{"load":`+string(rune('0'+i))+`}`; got != want {
			t.Fatalf("report %d: %s, want %s", i, got, want)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run() = %v", err)
	}
}
