package node

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	metrics "github.com/hashicorp/go-metrics"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/usherlb/usher/node/loadsrc"
)

// scrapeAgent reads a's /metrics through its API and parses it.
func scrapeAgent(t *testing.T, a *Agent) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(a.APIURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s: %s", resp.Status, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// labelValues returns the values of label name over fam's series, sorted.
func labelValues(fam *dto.MetricFamily, name string) []string {
	var out []string
	for _, m := range fam.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == name {
				out = append(out, l.GetValue())
			}
		}
	}
	sort.Strings(out)
	return out
}

// metricsAgent starts an agent with one configured service and waits until
// its view holds it.
func metricsAgent(t *testing.T) *Agent {
	t.Helper()
	c := testConfig()
	c.Services = []ServiceConfig{{Name: "turn", Address: "127.0.0.1:3478", Capacity: 100, Load: &loadsrc.Spec{Source: "push"}}}
	a := startAgent(t, c)
	waitFor(t, func() bool { return a.view.Load().Len() > 0 })
	return a
}

// TestMetricsExposition checks /metrics the way a Prometheus user reads it:
// every usher_ family has help and the kind metricHelp gives it, counters
// end in _total, labelled series exist before they move, and the build is
// named.
func TestMetricsExposition(t *testing.T) {
	a := metricsAgent(t)
	fams := scrapeAgent(t, a)

	for name, fam := range fams {
		if !strings.HasPrefix(name, "usher_") {
			continue
		}
		if fam.GetHelp() == "" {
			t.Errorf("%s has no help text (add it to metricHelp)", name)
		}
		if fam.GetType() == dto.MetricType_COUNTER && !strings.HasSuffix(name, "_total") {
			t.Errorf("counter %s does not end in _total", name)
		}
		if fam.GetType() != dto.MetricType_COUNTER && strings.HasSuffix(name, "_total") {
			t.Errorf("%s ends in _total but is a %v", name, fam.GetType())
		}
	}
	for _, d := range metricHelp {
		name, typ := "usher_"+d.name+"_total", dto.MetricType_COUNTER
		if d.gauge {
			name, typ = "usher_"+d.name, dto.MetricType_GAUGE
		}
		fam, ok := fams[name]
		switch {
		case !ok:
			t.Errorf("/metrics lacks %s", name)
		case fam.GetType() != typ:
			t.Errorf("%s is a %v, metricHelp says %v", name, fam.GetType(), typ)
		case fam.GetHelp() != d.help:
			t.Errorf("%s help %q, metricHelp says %q", name, fam.GetHelp(), d.help)
		}
	}
	for _, fam := range []string{"usher_probes_dropped_total", "usher_endpoint_dropped_total"} {
		if got, want := labelValues(fams[fam], "reason"), dropLabels(); !slices.Equal(got, sorted(want)) {
			t.Errorf("%s reasons %v, want every drop reason %v", fam, got, want)
		}
	}
	if got := labelValues(fams["usher_assignments_total"], "node"); !slices.Equal(got, []string{"test"}) {
		t.Errorf("usher_assignments_total nodes %v before any probe, want [test]", got)
	}
	if got := labelValues(fams["usher_service_capacity"], "service"); !slices.Equal(got, []string{"turn"}) {
		t.Errorf("usher_service_capacity services %v, want [turn]", got)
	}
	bi := fams["usher_build_info"]
	if bi == nil || len(bi.GetMetric()) != 1 || bi.GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Fatalf("usher_build_info %v", bi)
	}
	for _, l := range []string{"version", "revision", "goversion"} {
		if v := labelValues(bi, l); len(v) != 1 || v[0] == "" {
			t.Errorf("usher_build_info label %s = %v", l, v)
		}
	}
	for _, want := range []string{"go_goroutines", "process_cpu_seconds_total", "usher_memberlist_udp_sent_bytes_total", "usher_raft_commit_seconds"} {
		if fams[want] == nil {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// TestMetricsDuplicateRefused checks that a scrape emitting one series
// twice fails rather than serving it twice.
func TestMetricsDuplicateRefused(t *testing.T) {
	tel, err := newTelemetry(func(s *metricScrape) {
		s.counter("probes_answered", 1)
		s.counter("probes_answered", 2)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tel.reg.Gather(); err == nil {
		t.Error("a series emitted twice was gathered")
	}
}

// gatherBridge returns the series of a bridge as name{labels} to value
// (the sample count for a histogram, its sum under name_sum).
func gatherBridge(t *testing.T, b *goBridge) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(b)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key] = float64(m.GetHistogram().GetSampleCount())
				out[key+"_sum"] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

func TestGoMetricsBridge(t *testing.T) {
	b := newGoBridge(bridgedMetrics)
	b.IncrCounterWithLabels([]string{"memberlist", "udp", "sent"}, 100, nil)
	b.IncrCounterWithLabels([]string{"memberlist", "udp", "sent"}, 20, []metrics.Label{{Name: "cluster", Value: "x"}})
	b.AddSample([]string{"raft", "commitTime"}, 250)
	b.AddSampleWithLabels([]string{"raft", "replication", "appendEntries", "rpc"}, 2, []metrics.Label{{Name: "peer_id", Value: "n2"}})
	// Raft's legacy per-peer copy and figures outside the list are dropped.
	b.AddSample([]string{"raft", "replication", "appendEntries", "rpc", "n2"}, 2)
	b.IncrCounter([]string{"raft", "state", "follower"}, 1)
	b.SetGauge([]string{"memberlist", "health", "score"}, 2)

	got := gatherBridge(t, b)
	for key, want := range map[string]float64{
		"usher_memberlist_udp_sent_bytes_total":          120,
		"usher_memberlist_tcp_sent_bytes_total":          0,
		"usher_raft_commit_seconds":                      1,
		"usher_raft_commit_seconds_sum":                  0.25,
		"usher_raft_append_entries_seconds{peer=n2}":     1,
		"usher_raft_append_entries_seconds{peer=n2}_sum": 0.002,
		"usher_memberlist_health_score":                  2,
		"usher_raft_elections_total":                     0,
		"usher_raft_leader_last_contact_seconds":         0,
	} {
		v, ok := got[key]
		if !ok || v < want*0.999 || v > want*1.001 {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
	if _, ok := got["usher_raft_heartbeat_seconds{peer=n2}"]; ok {
		t.Error("a peer's heartbeat series exists before its first heartbeat")
	}
	for key := range got {
		name, _, _ := strings.Cut(key, "{")
		if !strings.HasPrefix(name, "usher_") || strings.ContainsAny(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			t.Errorf("bridged series %s", key)
		}
	}
}

// contribNames returns the usher_ metric names a dashboard or rule file
// uses, without the _bucket, _sum and _count of histograms.
func contribNames(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, n := range regexp.MustCompile(`\busher_[a-z0-9_]+`).FindAllString(string(b), -1) {
		seen[n] = true
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// TestContribMetricsExist checks that every metric the Grafana dashboard
// and the Prometheus rules use is on an agent's /metrics: of a farm of
// three, so that the Raft peers' series exist too.
func TestContribMetricsExist(t *testing.T) {
	f := newTestFarm(t, 3, 3, nil)
	f.viewed(3)
	var names []string
	for _, file := range []string{"../contrib/grafana/usher.json", "../contrib/prometheus/alerts.yml"} {
		n := contribNames(t, file)
		if len(n) < 5 {
			t.Errorf("%s uses only %v", file, n)
		}
		names = append(names, n...)
	}
	var missing []string
	lacks := func() bool {
		fams := scrapeAgent(t, f.leader())
		missing = missing[:0]
		for _, n := range names {
			if !hasSeries(fams, n) {
				missing = append(missing, n)
			}
		}
		return len(missing) == 0
	}
	deadline := time.Now().Add(10 * time.Second)
	for !lacks() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if len(missing) > 0 {
		t.Errorf("the dashboard or the rules use %v, which /metrics lacks", missing)
	}
}

// hasSeries reports whether fams holds the series name, a histogram's
// _bucket, _sum and _count included.
func hasSeries(fams map[string]*dto.MetricFamily, name string) bool {
	if fams[name] != nil {
		return true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok && fams[base].GetType() == dto.MetricType_HISTOGRAM {
			return true
		}
	}
	return false
}

// TestAlertRulesPromtool runs promtool on the alert rules when it is
// installed (Debian's prometheus package; .ci/run installs it).
func TestAlertRulesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed")
	}
	cmd := exec.Command(promtool, "check", "rules", "../contrib/prometheus/alerts.yml")
	cmd.WaitDelay = 10 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

// TestDashboardPromtool checks the Grafana dashboard's queries with
// promtool, when it is installed: each becomes a recording rule, with
// Grafana's variables replaced by values.
func TestDashboardPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed")
	}
	b, err := os.ReadFile("../contrib/grafana/usher.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	vars := strings.NewReplacer("$__rate_interval", "5m", "$job", ".*")
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			n++
			q, _ := json.Marshal(vars.Replace(tg.Expr)) // a JSON string is a YAML string
			fmt.Fprintf(&rules, "      - record: dashboard:query%d\n        expr: %s\n", n, q)
		}
	}
	if n < 10 {
		t.Fatalf("the dashboard has %d queries", n)
	}
	path := filepath.Join(t.TempDir(), "dashboard.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "check", "rules", path)
	cmd.WaitDelay = 10 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s\n%s", err, out, rules.String())
	}
}
