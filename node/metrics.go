package node

import (
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"

	metrics "github.com/hashicorp/go-metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// telemetry is an agent's metrics: a Prometheus registry of its own (served
// at /metrics), so several agents can live in one process.
//
// The packet paths never touch it: they bump atomic counters. At each
// scrape the registry collects telemetry, which runs the agent's export
// function with a [metricScrape]; the export reads the atomics and the
// node's state and hands each figure to the scrape's gauge, counter or
// serviceGauge, which emit it as a constant metric. So a scrape shows the
// figures of that moment, nothing is stored between scrapes, and a series
// exists as soon as the export names it, moved or not.
type telemetry struct {
	reg    *prometheus.Registry
	export func(*metricScrape)

	mu    sync.Mutex // guards descs
	descs map[string]*prometheus.Desc
}

// metricScrape is one collection under way: what the export reports goes
// to out.
type metricScrape struct {
	t   *telemetry
	out chan<- prometheus.Metric
}

// newTelemetry builds an agent's registry. export is called at each scrape
// and reports every figure through the scrape's gauge, counter and
// serviceGauge.
func newTelemetry(export func(*metricScrape)) (*telemetry, error) {
	t := &telemetry{reg: prometheus.NewRegistry(), export: export, descs: make(map[string]*prometheus.Desc)}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "usher_build_info",
		Help:        "Always 1; its labels name the build: version, VCS revision and Go version.",
		ConstLabels: buildLabels(),
	})
	build.Set(1)
	for _, c := range []prometheus.Collector{
		// The Go runtime's and the process's own figures (goroutines,
		// heap, GC, CPU seconds, RSS, open files), read at each scrape.
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build,
		t,
		bridge(),
	} {
		if err := t.reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return t, nil
}

// buildLabels returns usher_build_info's labels: the version set at link
// time, the VCS revision the Go toolchain stamped (or "unknown") and the Go
// version.
func buildLabels() prometheus.Labels {
	rev := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				rev = s.Value
			}
		}
	}
	return prometheus.Labels{"version": Version, "revision": rev, "goversion": runtime.Version()}
}

// metricDef is one of the agent's own metrics, named without the "usher_"
// prefix and, for counters, without the "_total" suffix.
type metricDef struct {
	name, help string
	gauge      bool
}

// metricHelp declares the agent's own metrics: their help text and kind.
// Every figure the export reports must be declared here.
var metricHelp = []metricDef{
	{"sessions", "Live sessions on this node's session endpoint: its load.", true},
	{"capacity", "Most sessions this node takes.", true},
	{"draining", "1 while this node is draining.", true},
	{"serving", "1 while this node answers probes on the balancer address.", true},
	{"service_sessions", "Live sessions of one named service on this node.", true},
	{"service_capacity", "Most sessions of one named service this node takes.", true},
	{"service_accepting", "1 while one named service on this node takes new sessions.", true},
	{"sessions_accepted", "Sessions ever accepted by the session endpoint.", false},
	{"sessions_expired", "Sessions expired for want of keepalives.", false},
	{"probes_answered", "Probes answered with a redirect.", false},
	{"probes_overloaded", "Probes answered 508 Insufficient Capacity (500 to a stock Binding) because no server could take them.", false},
	{"probes_unknown_attribute", "Requests to the balancer address answered 420 Unknown Attribute.", false},
	{"probes_dropped", "Datagrams at the balancer address left unanswered, by reason.", false},
	{"assignments", "Probes this node assigned to each node of the view.", false},
	{"balancer_stun_binding_answered", "Stock STUN Binding requests answered at the balancer address with a Binding success (stock_binding = answer).", false},
	{"keepalives_answered", "Keepalives answered by the session endpoint.", false},
	{"stun_binding_answered", "Stock STUN Binding requests answered by the session endpoint.", false},
	{"endpoint_unknown_attribute", "Requests to the session endpoint answered 420 Unknown Attribute.", false},
	{"tickets_refused", "Sessions refused (401) for a missing or invalid ticket.", false},
	{"sessions_refused", "Sessions refused by the session endpoint's caps, by reason: 486 beyond max_sessions_per_source (source_cap), 508 beyond max_sessions (max_sessions).", false},
	{"endpoint_dropped", "Datagrams at the session endpoint left unanswered, by reason.", false},
	{"lost_server_reports", "Probes naming a server the client lost (USHER-LOST-SERVER).", false},
	{"lost_server_confirmed", "Servers reported lost that the leader found silent and excluded.", false},
	{"lost_server_refuted", "Servers reported lost that answered the leader's check and stayed in service.", false},
	{"lost_server_ignored", "USHER-LOST-SERVER hints the leader did not check, by reason: naming no member (not_member), beyond the check rate (rate), or with the check queue full (queue_full).", false},
	{"leadership_changes", "Raft leadership changes this node observed.", false},
	{"raft_refused", "Connections to the Raft port closed before Raft read a byte: no certificate of this farm, a node outside the Raft configuration, or no TLS handshake in time.", false},
	{"raft_store_writes", "Writes to this node's Raft log and stable store (entries appended or deleted, term and vote records); renewing the leader lease makes none.", false},
	{"lease_renewals", "Extensions of this node's leader lease by its voters' answers to Raft heartbeats.", false},
	{"lease_lapses", "Lease extensions that came after the lease had run out: stalls in which the leader answered nothing.", false},
	{"vip_holder", "1 while this node holds the balancer address.", true},
	{"view_staleness_seconds", "Age of the oldest load report among live members.", true},
	{"voters", "Raft voters in the configuration.", true},
	{"vip_acquired", "Times this node took the balancer address.", false},
	{"vip_released", "Times this node let the balancer address go.", false},
	{"handoffs_relayed", "Probe answers this node sent for the leader (respond_from = server).", false},
}

// helpByName indexes metricHelp.
var helpByName = func() map[string]string {
	m := make(map[string]string, len(metricHelp))
	for _, d := range metricHelp {
		m[d.name] = d.help
	}
	return m
}()

// Describe sends nothing: the agent's series depend on its configuration
// and view, so telemetry is an unchecked collector. The registry still
// refuses duplicate series and inconsistent help at each scrape.
func (t *telemetry) Describe(chan<- *prometheus.Desc) {}

// Collect runs the export, which emits every figure into ch.
func (t *telemetry) Collect(ch chan<- prometheus.Metric) {
	t.export(&metricScrape{t: t, out: ch})
}

// gauge emits the gauge usher_<name>.
func (s *metricScrape) gauge(name string, v float64) {
	s.emit("usher_"+name, name, prometheus.GaugeValue, v, nil)
}

// serviceGauge emits the gauge usher_<name> of one named service.
func (s *metricScrape) serviceGauge(name, service string, v float64) {
	s.emit("usher_"+name, name, prometheus.GaugeValue, v, []metrics.Label{{Name: "service", Value: service}})
}

// counter emits the counter usher_<name>_total (with labels) at total.
func (s *metricScrape) counter(name string, total uint64, labels ...metrics.Label) {
	s.emit("usher_"+name+"_total", name, prometheus.CounterValue, float64(total), labels)
}

// emit sends one series to the collection. A figure missing from
// metricHelp goes out with empty help, which TestMetricsExposition
// catches; one emitted twice fails the scrape.
func (s *metricScrape) emit(full, name string, vt prometheus.ValueType, v float64, labels []metrics.Label) {
	names := make([]string, len(labels))
	values := make([]string, len(labels))
	for i, l := range labels {
		names[i], values[i] = l.Name, l.Value
	}
	d := s.t.desc(full, helpByName[name], names)
	m, err := prometheus.NewConstMetric(d, vt, v, values...)
	if err != nil {
		m = prometheus.NewInvalidMetric(d, err)
	}
	s.out <- m
}

// desc returns the description of the metric full with label names,
// made once.
func (t *telemetry) desc(full, help string, names []string) *prometheus.Desc {
	key := full + "\x00" + strings.Join(names, "\x00")
	t.mu.Lock()
	defer t.mu.Unlock()
	d, ok := t.descs[key]
	if !ok {
		d = prometheus.NewDesc(full, help, names, nil)
		t.descs[key] = d
	}
	return d
}

// handler serves the Prometheus exposition of the agent's registry.
func (t *telemetry) handler() http.Handler {
	return promhttp.HandlerFor(t.reg, promhttp.HandlerOpts{})
}

// dropLabels returns every drop reason's label, in order, so that each
// reason's series exists before its first drop.
func dropLabels() []string {
	out := make([]string, 0, numDropReasons-1)
	for r := dropNotSTUN; r < numDropReasons; r++ {
		out = append(out, r.String())
	}
	return out
}

// assignmentNodes returns the nodes to report assignments for, sorted: every
// node of the view and every node ever assigned.
func assignmentNodes(view []string, assigned map[string]uint64) []string {
	seen := make(map[string]bool, len(view)+len(assigned))
	out := make([]string, 0, len(view)+len(assigned))
	for _, n := range view {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for n := range assigned {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
