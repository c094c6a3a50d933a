package node

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	metrics "github.com/hashicorp/go-metrics"
	metricsprom "github.com/hashicorp/go-metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// telemetry is an agent's metrics: go-metrics fanned out to a Prometheus
// sink (served at /metrics) and an in-memory sink. Each agent has its own
// registry, so several agents can live in one process.
//
// The packet paths never call go-metrics (it allocates); they bump atomic
// counters, and export copies those into go-metrics periodically and
// before each scrape, as increments since the previous export.
type telemetry struct {
	reg   *prometheus.Registry
	m     *metrics.Metrics
	inmem *metrics.InmemSink

	mu   sync.Mutex
	last map[string]uint64 // counter totals at the previous export
}

// newTelemetry builds the sinks for the service "usher".
func newTelemetry() (*telemetry, error) {
	reg := prometheus.NewRegistry()
	// The Go runtime's and the process's own figures (goroutines, heap,
	// GC, CPU seconds, RSS, open files), read at each scrape: no goroutine.
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	opts := metricsprom.PrometheusOpts{
		Registerer: reg,
		Name:       "usher",
		Expiration: 0, // counters that stop moving must not vanish
	}
	for _, d := range metricHelp {
		name := []string{"usher", d.name}
		if d.gauge {
			opts.GaugeDefinitions = append(opts.GaugeDefinitions, metricsprom.GaugeDefinition{Name: name, Help: d.help})
		} else {
			opts.CounterDefinitions = append(opts.CounterDefinitions, metricsprom.CounterDefinition{Name: name, Help: d.help})
		}
	}
	prom, err := metricsprom.NewPrometheusSinkFrom(opts)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	inmem := metrics.NewInmemSink(10*time.Second, time.Minute)
	conf := metrics.DefaultConfig("usher")
	conf.EnableHostname = false
	conf.EnableRuntimeMetrics = false // its collector goroutine never stops
	m, err := metrics.New(conf, metrics.FanoutSink{prom, inmem})
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	// The cluster, Raft and memberlist count through go-metrics' global
	// instance: route it to the same sinks, so /metrics shows theirs too.
	// (With several agents in one process, the last one started gets them.)
	if _, err := metrics.NewGlobal(conf, metrics.FanoutSink{prom, inmem}); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &telemetry{reg: reg, m: m, inmem: inmem, last: make(map[string]uint64)}, nil
}

// metricHelp declares the agent's unlabelled metrics, so they are exported
// (at zero) before they first move, with help text.
var metricHelp = []struct {
	name, help string
	gauge      bool
}{
	{"sessions", "Live sessions on this node's session endpoint: its load.", true},
	{"capacity", "Most sessions this node takes.", true},
	{"draining", "1 while this node is draining.", true},
	{"serving", "1 while this node answers probes on the balancer address.", true},
	{"sessions_accepted", "Sessions ever accepted by the session endpoint.", false},
	{"sessions_expired", "Sessions expired for want of keepalives.", false},
	{"probes_answered", "Probes answered with a redirect.", false},
	{"probes_overloaded", "Probes answered 508 Insufficient Capacity (500 to a stock Binding) because no server could take them.", false},
	{"probes_unknown_attribute", "Requests to the balancer address answered 420 Unknown Attribute.", false},
	{"balancer_stun_binding_answered", "Stock STUN Binding requests answered at the balancer address with a Binding success (stock_binding = answer).", false},
	{"keepalives_answered", "Keepalives answered by the session endpoint.", false},
	{"stun_binding_answered", "Stock STUN Binding requests answered by the session endpoint.", false},
	{"endpoint_unknown_attribute", "Requests to the session endpoint answered 420 Unknown Attribute.", false},
	{"tickets_refused", "Sessions refused (401) for a missing or invalid ticket.", false},
	{"lost_server_reports", "Probes naming a server the client lost (USHER-LOST-SERVER).", false},
	{"lost_server_confirmed", "Servers reported lost that the leader found silent and excluded.", false},
	{"lost_server_refuted", "Servers reported lost that answered the leader's check and stayed in service.", false},
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

// gauge sets a gauge.
func (t *telemetry) gauge(name string, v float64) {
	t.m.SetPrecisionGauge([]string{name}, v)
}

// serviceGauge sets the gauge name of one named service.
func (t *telemetry) serviceGauge(name, service string, v float64) {
	t.m.SetPrecisionGaugeWithLabels([]string{name}, v, []metrics.Label{{Name: "service", Value: service}})
}

// counter brings the counter name (with labels) up to total.
func (t *telemetry) counter(name string, total uint64, labels ...metrics.Label) {
	key := name
	for _, l := range labels {
		key += "\x00" + l.Name + "=" + l.Value
	}
	t.mu.Lock()
	delta := total - t.last[key]
	t.last[key] = total
	t.mu.Unlock()
	if delta > 0 {
		t.m.IncrCounterWithLabels([]string{name}, float32(delta), labels)
	}
}

// handler serves the Prometheus exposition of the agent's registry.
func (t *telemetry) handler() http.Handler {
	return promhttp.HandlerFor(t.reg, promhttp.HandlerOpts{})
}
