package loadsrc

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const exposition = `# HELP game_sessions Sessions by state.
# TYPE game_sessions gauge
game_sessions{state="active",map="a"} 3
game_sessions{state="active",map="b"} 4
game_sessions{state="idle",map="a"} 100
# TYPE game_joins_total counter
game_joins_total 41.6
relay_untyped{kind="udp"} 2
# TYPE latency histogram
latency_bucket{le="1"} 1
latency_bucket{le="+Inf"} 1
latency_sum 0.5
latency_count 1
`

func TestPrometheus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metrics":
			fmt.Fprint(w, exposition)
		case "/big":
			fmt.Fprint(w, exposition+strings.Repeat("# padding\n", 1000))
		case "/garbage":
			fmt.Fprint(w, "game_sessions{ 3\n")
		default:
			http.Error(w, "no", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	cases := []struct {
		name    string
		path    string
		metric  string
		labels  map[string]string
		maxBody int
		want    int
		err     string
	}{
		{name: "labels match", path: "/metrics", metric: "game_sessions", labels: map[string]string{"state": "active"}, want: 7},
		{name: "two labels", path: "/metrics", metric: "game_sessions", labels: map[string]string{"state": "active", "map": "b"}, want: 4},
		{name: "no labels sums all", path: "/metrics", metric: "game_sessions", want: 107},
		{name: "counter rounds", path: "/metrics", metric: "game_joins_total", want: 42},
		{name: "untyped", path: "/metrics", metric: "relay_untyped", labels: map[string]string{"kind": "udp"}, want: 2},
		{name: "no sample matches", path: "/metrics", metric: "game_sessions", labels: map[string]string{"state": "gone"}, err: "no sample matches"},
		{name: "absent label", path: "/metrics", metric: "game_joins_total", labels: map[string]string{"state": "active"}, err: "no sample matches"},
		{name: "missing metric", path: "/metrics", metric: "nope", err: "metric nope: not exposed"},
		{name: "histogram", path: "/metrics", metric: "latency", err: "not a counter, gauge or untyped"},
		{name: "status", path: "/fail", metric: "m", err: "500 Internal Server Error"},
		{name: "body limit", path: "/big", metric: "game_sessions", maxBody: 2000, err: "body exceeds 2000 bytes"},
		{name: "parse error", path: "/garbage", metric: "game_sessions", err: "parse http://"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := Spec{Source: "prometheus", URL: srv.URL + tc.path, Metric: tc.metric, Labels: tc.labels, MaxBody: tc.maxBody}
			set, err := spec.Validate()
			if err != nil {
				t.Fatal(err)
			}
			checkPoll(t, newPrometheus(set), tc.want, tc.err)
		})
	}
}

// TestPrometheusRefused: the reason names the URL.
func TestPrometheusRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/metrics"
	srv.Close()
	set, err := (&Spec{Source: "prometheus", URL: url, Metric: "m"}).Validate()
	if err != nil {
		t.Fatal(err)
	}
	_, err = newPrometheus(set).Poll(context.Background())
	if err == nil || !strings.Contains(err.Error(), "Get \""+url+"\"") {
		t.Fatalf("Poll() error %v, want one naming %s", err, url)
	}
}
