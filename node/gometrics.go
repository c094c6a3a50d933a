package node

import (
	"strings"
	"sync"

	metrics "github.com/hashicorp/go-metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// Raft, memberlist and the cluster package count through go-metrics'
// global instance, which is process-wide. The bridge is a go-metrics sink
// installed as that global once per process: it keeps the figures of
// bridgedMetrics, under Prometheus names and units, and drops the rest.
// Every agent's registry collects the same bridge, so with several agents
// in one process (tests) each agent's /metrics shows the sums over all of
// them; a deployed agent runs alone in its process.

// bridgedKind is how a bridged figure is exported.
type bridgedKind uint8

const (
	bridgedCounter   bridgedKind = iota // go-metrics IncrCounter
	bridgedGauge                        // go-metrics SetGauge
	bridgedHistogram                    // go-metrics AddSample or MeasureSince
)

// bridgedMetric maps one go-metrics key (its parts joined with dots) to a
// Prometheus metric.
type bridgedMetric struct {
	key   string
	name  string // full Prometheus name
	kind  bridgedKind
	scale float64 // multiplies the value: 1e-3 turns go-metrics' milliseconds into seconds
	peer  bool    // labelled by the Raft peer (go-metrics label peer_id)
	help  string
}

// timingBuckets are the bounds, in seconds, of the bridged timings: 0.25 ms
// to about 4 s.
var timingBuckets = prometheus.ExponentialBuckets(0.00025, 2, 15)

// bridgedMetrics are the go-metrics figures /metrics shows. Raft's and
// memberlist's keys are those of hashicorp/raft v1.8 and memberlist v0.7;
// the cluster's own counters that duplicate the agent's (leadership
// changes, refused Raft connections, lease lapses, VIP moves) are left out.
var bridgedMetrics = []bridgedMetric{
	{"memberlist.udp.sent", "usher_memberlist_udp_sent_bytes_total", bridgedCounter, 1, false, "Bytes memberlist sent over UDP: gossip and failure-detector probes."},
	{"memberlist.udp.received", "usher_memberlist_udp_received_bytes_total", bridgedCounter, 1, false, "Bytes memberlist received over UDP."},
	{"memberlist.tcp.sent", "usher_memberlist_tcp_sent_bytes_total", bridgedCounter, 1, false, "Bytes memberlist sent over TCP: push-pull state exchanges and fallback probes."},
	{"memberlist.tcp.accept", "usher_memberlist_tcp_accepted_total", bridgedCounter, 1, false, "TCP connections memberlist accepted."},
	{"memberlist.msg.suspect", "usher_memberlist_suspect_messages_total", bridgedCounter, 1, false, "Suspect messages memberlist handled: a member failed a probe."},
	{"memberlist.msg.dead", "usher_memberlist_dead_messages_total", bridgedCounter, 1, false, "Dead messages memberlist handled: a member was declared failed."},
	{"memberlist.health.score", "usher_memberlist_health_score", bridgedGauge, 1, false, "Memberlist's awareness score: 0 when healthy, higher when this node is slow to answer probes."},
	{"raft.commitTime", "usher_raft_commit_seconds", bridgedHistogram, 1e-3, false, "Time from the leader appending a Raft entry to a quorum committing it."},
	{"raft.fsm.apply", "usher_raft_fsm_apply_seconds", bridgedHistogram, 1e-3, false, "Time the state machine took to apply one committed Raft entry."},
	{"raft.apply", "usher_raft_apply_total", bridgedCounter, 1, false, "Commands submitted to Raft on this node while it led."},
	{"raft.replication.heartbeat", "usher_raft_heartbeat_seconds", bridgedHistogram, 1e-3, true, "Round trip of the leader's heartbeats to each follower."},
	{"raft.replication.appendEntries.rpc", "usher_raft_append_entries_seconds", bridgedHistogram, 1e-3, true, "Round trip of the leader's AppendEntries RPCs to each follower."},
	{"raft.leader.lastContact", "usher_raft_leader_last_contact_seconds", bridgedHistogram, 1e-3, false, "Time since the leader last heard from its followers, sampled at each lease check."},
	{"raft.state.leader", "usher_raft_leader_elected_total", bridgedCounter, 1, false, "Times this node became Raft leader."},
	{"raft.state.candidate", "usher_raft_elections_total", bridgedCounter, 1, false, "Elections this node started as candidate."},
	{"raft.transition.heartbeat_timeout", "usher_raft_heartbeat_timeouts_total", bridgedCounter, 1, false, "Times this follower heard no leader within the heartbeat timeout."},
	{"raft.transition.leader_lease_timeout", "usher_raft_leader_lease_timeouts_total", bridgedCounter, 1, false, "Times this leader stepped down for want of contact with a quorum."},
	{"cluster.vip.acquire_failed", "usher_vip_acquire_failures_total", bridgedCounter, 1, false, "Attempts to take the balancer address that failed."},
	{"cluster.vip.release_failed", "usher_vip_release_failures_total", bridgedCounter, 1, false, "Attempts to let the balancer address go that failed."},
	{"cluster.lease.barrier_failed", "usher_lease_barrier_failures_total", bridgedCounter, 1, false, "Leader barriers that failed or ended after leadership was lost, delaying the VIP."},
	{"cluster.lease.early", "usher_lease_early_serves_total", bridgedCounter, 1, false, "New leaders that took the balancer address on their heartbeats' evidence because their barrier was slower than half the lease (a busy disk)."},
	{"cluster.gossip.unauthenticated", "usher_gossip_unauthenticated_total", bridgedCounter, 1, false, "Gossip messages dropped for a missing or invalid signature."},
	{"cluster.report.bad", "usher_reports_bad_total", bridgedCounter, 1, false, "Member load reports that could not be decoded."},
	{"cluster.join.failed", "usher_join_failures_total", bridgedCounter, 1, false, "Join attempts in which no seed answered."},
	{"cluster.ticket_key_mismatch", "usher_ticket_key_mismatches_total", bridgedCounter, 1, false, "Times the farm's ticket key turned out to differ from this node's configured ticket_key."},
	{"cluster.timing_mismatch", "usher_timing_mismatches_total", bridgedCounter, 1, false, "Members seen running another Raft timing profile than this node, and so kept out of Raft."},
	{"cluster.autopilot.failed", "usher_autopilot_failures_total", bridgedCounter, 1, false, "Raft configuration changes (voters added, moved or removed) that failed."},
}

// goBridge is the process's go-metrics sink.
type goBridge struct {
	byKey      map[string]*bridgedMetric
	counters   map[string]*prometheus.CounterVec
	gauges     map[string]*prometheus.GaugeVec
	histograms map[string]*prometheus.HistogramVec
}

var (
	bridgeOnce sync.Once
	theBridge  *goBridge
)

// bridge returns the process's bridge, installing it as go-metrics' global
// sink on first use.
func bridge() *goBridge {
	bridgeOnce.Do(func() {
		theBridge = newGoBridge(bridgedMetrics)
		conf := metrics.DefaultConfig("")
		conf.EnableHostname = false
		conf.EnableRuntimeMetrics = false // its collector goroutine never stops
		// NewGlobal fails only when the runtime collector does.
		_, _ = metrics.NewGlobal(conf, theBridge)
	})
	return theBridge
}

// newGoBridge builds a sink keeping defs. Series without a peer label are
// created at zero, so they exist before they first move.
func newGoBridge(defs []bridgedMetric) *goBridge {
	b := &goBridge{
		byKey:      make(map[string]*bridgedMetric, len(defs)),
		counters:   make(map[string]*prometheus.CounterVec),
		gauges:     make(map[string]*prometheus.GaugeVec),
		histograms: make(map[string]*prometheus.HistogramVec),
	}
	for i := range defs {
		d := &defs[i]
		b.byKey[d.key] = d
		var labels []string
		if d.peer {
			labels = []string{"peer"}
		}
		switch d.kind {
		case bridgedCounter:
			v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: d.name, Help: d.help}, labels)
			b.counters[d.key] = v
			if !d.peer {
				v.WithLabelValues()
			}
		case bridgedGauge:
			v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: d.name, Help: d.help}, labels)
			b.gauges[d.key] = v
			if !d.peer {
				v.WithLabelValues()
			}
		case bridgedHistogram:
			v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: d.name, Help: d.help, Buckets: timingBuckets}, labels)
			b.histograms[d.key] = v
			if !d.peer {
				v.WithLabelValues()
			}
		}
	}
	return b
}

// labelValues returns the Prometheus label values of a figure of d.
func (d *bridgedMetric) labelValues(labels []metrics.Label) []string {
	if !d.peer {
		return nil
	}
	for _, l := range labels {
		if l.Name == "peer_id" {
			return []string{l.Value}
		}
	}
	return []string{"unknown"}
}

// Describe sends the descriptions of every bridged metric.
func (b *goBridge) Describe(ch chan<- *prometheus.Desc) {
	b.each(func(c prometheus.Collector) { c.Describe(ch) })
}

// Collect sends every bridged series.
func (b *goBridge) Collect(ch chan<- prometheus.Metric) {
	b.each(func(c prometheus.Collector) { c.Collect(ch) })
}

// each calls f with every bridged metric vector.
func (b *goBridge) each(f func(prometheus.Collector)) {
	for _, v := range b.counters {
		f(v)
	}
	for _, v := range b.gauges {
		f(v)
	}
	for _, v := range b.histograms {
		f(v)
	}
}

// SetGauge implements metrics.MetricSink.
func (b *goBridge) SetGauge(key []string, val float32) { b.SetGaugeWithLabels(key, val, nil) }

// SetGaugeWithLabels implements metrics.MetricSink.
func (b *goBridge) SetGaugeWithLabels(key []string, val float32, labels []metrics.Label) {
	b.SetPrecisionGaugeWithLabels(key, float64(val), labels)
}

// SetPrecisionGauge implements metrics.PrecisionGaugeMetricSink.
func (b *goBridge) SetPrecisionGauge(key []string, val float64) {
	b.SetPrecisionGaugeWithLabels(key, val, nil)
}

// SetPrecisionGaugeWithLabels implements metrics.PrecisionGaugeMetricSink.
func (b *goBridge) SetPrecisionGaugeWithLabels(key []string, val float64, labels []metrics.Label) {
	k := strings.Join(key, ".")
	if v, ok := b.gauges[k]; ok {
		d := b.byKey[k]
		v.WithLabelValues(d.labelValues(labels)...).Set(val * d.scale)
	}
}

// EmitKey implements metrics.MetricSink; nothing of ours uses it.
func (b *goBridge) EmitKey([]string, float32) {}

// IncrCounter implements metrics.MetricSink.
func (b *goBridge) IncrCounter(key []string, val float32) { b.IncrCounterWithLabels(key, val, nil) }

// IncrCounterWithLabels implements metrics.MetricSink.
func (b *goBridge) IncrCounterWithLabels(key []string, val float32, labels []metrics.Label) {
	k := strings.Join(key, ".")
	if v, ok := b.counters[k]; ok && val >= 0 {
		d := b.byKey[k]
		v.WithLabelValues(d.labelValues(labels)...).Add(float64(val) * d.scale)
	}
}

// AddSample implements metrics.MetricSink.
func (b *goBridge) AddSample(key []string, val float32) { b.AddSampleWithLabels(key, val, nil) }

// AddSampleWithLabels implements metrics.MetricSink.
func (b *goBridge) AddSampleWithLabels(key []string, val float32, labels []metrics.Label) {
	k := strings.Join(key, ".")
	if v, ok := b.histograms[k]; ok {
		d := b.byKey[k]
		v.WithLabelValues(d.labelValues(labels)...).Observe(float64(val) * d.scale)
	}
}
