package monitor

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// PipelineStats are the capture and flow-table figures of the pipeline
// that feeds a monitor.
type PipelineStats struct {
	Packets      uint64 `json:"packets"`       // packets captured
	Bytes        uint64 `json:"bytes"`         // bytes captured
	Dropped      uint64 `json:"dropped"`       // packets the kernel dropped before capture read them
	DecodeErrors uint64 `json:"decode_errors"` // packets the decoder rejected
	FlowsActive  int    `json:"flows_active"`  // flows in the table now
	FlowsMax     int    `json:"flows_max"`     // the table's bound
	FlowsEvicted uint64 `json:"flows_evicted"` // unfinished flows evicted to stay within the bound
	StoreDropped uint64 `json:"store_dropped"` // buckets and alerts not written: the database fell behind
}

// Cardinality of the per-network series: at most TopN networks by volume
// over the window, plus every alerting network, plus "other"; every other
// label takes values from a fixed set (outcomes, families, receivers, the
// five hello features).

var (
	descHandshakes = prometheus.NewDesc("mtuscope_handshakes_total",
		"Verified TLS handshakes seen (the capture saw their TCP three-way exchange), by outcome and IP family (no network label).",
		[]string{"outcome", "family"}, nil)
	descNetHandshakes = prometheus.NewDesc("mtuscope_network_handshakes_total",
		"TLS handshakes by client network (the top N networks by volume, the alerting ones, and other) and outcome, "+
			"counted while the network has its own series.", []string{"network", "outcome"}, nil)
	descNetInfo = prometheus.NewDesc("mtuscope_network_info",
		"The ASN and organisation of each network with its own series.", []string{"network", "asn", "org"}, nil)
	descNetAlert = prometheus.NewDesc("mtuscope_network_alert_firing",
		"1 while the network's stall alert fires.", []string{"network"}, nil)
	descNetRate = prometheus.NewDesc("mtuscope_network_completion_ratio",
		"Completed share of completed and stalled handshakes over the evaluation window.", []string{"network"}, nil)
	descFeature = prometheus.NewDesc("mtuscope_hello_feature_handshakes_total",
		"Verified TLS handshakes whose ClientHello was seen, by what it carried (feature: pq_keyshare, pq_group_without_share, "+
			"mldsa_sigalgs, length_256_511, split_segments), whether it carried it (hello: with, without; a hello of which the "+
			"capture could not tell is in neither) and result (completed, failed: reset, alert or no answer; stalls are not counted). "+
			"No network label.", []string{"feature", "hello", "result"}, nil)
	descNetFeature = prometheus.NewDesc("mtuscope_network_hello_feature_handshakes_total",
		"Handshakes whose ClientHello carried the feature, by client network (those with their own series) and result, "+
			"counted while the network has its own series.", []string{"network", "feature", "result"}, nil)
	descNetFeatureAlert = prometheus.NewDesc("mtuscope_network_feature_alert_firing",
		"1 while the network's feature alert (its hellos with this feature fail, elsewhere they complete) fires; "+
			"absent otherwise.", []string{"network", "feature"}, nil)
	descServerAlert = prometheus.NewDesc("mtuscope_server_alert_firing",
		"1 while the server-wide handshake failure alert fires.", nil, nil)
	descAlertsFiring = prometheus.NewDesc("mtuscope_network_alerts_firing",
		"Networks whose stall alert fires now.", nil, nil)
	descNetworks = prometheus.NewDesc("mtuscope_networks_tracked",
		"Client networks tracked one by one (bounded by max_networks).", nil, nil)
	descFolded = prometheus.NewDesc("mtuscope_networks_folded_handshakes_total",
		"Handshakes counted under other because the network table was full.", nil, nil)
	descEvictedNets = prometheus.NewDesc("mtuscope_networks_evicted_total",
		"Networks forgotten to make room for a new one in the full network table (the least useful first).", nil, nil)
	descUnverified = prometheus.NewDesc("mtuscope_unverified_handshakes_total",
		"Handshakes whose TCP three-way exchange the capture did not see (forged sources, or connections older than the capture), "+
			"by outcome: evidence for no network and not in mtuscope_handshakes_total.", []string{"outcome"}, nil)
	descPackets = prometheus.NewDesc("mtuscope_capture_packets_total", "Packets captured.", nil, nil)
	descBytes   = prometheus.NewDesc("mtuscope_capture_bytes_total", "Bytes captured.", nil, nil)
	descDropped = prometheus.NewDesc("mtuscope_capture_dropped_packets_total",
		"Packets the kernel dropped before the capture read them (capture loss).", nil, nil)
	descDecode = prometheus.NewDesc("mtuscope_capture_decode_errors_total",
		"Captured packets the decoder rejected.", nil, nil)
	descFlows    = prometheus.NewDesc("mtuscope_flows_active", "Flows in the flow table.", nil, nil)
	descFlowsMax = prometheus.NewDesc("mtuscope_flows_max", "The flow table's bound.", nil, nil)
	descEvicted  = prometheus.NewDesc("mtuscope_flows_evicted_total",
		"Unfinished flows evicted to keep the flow table within its bound.", nil, nil)
	descDeliveries = prometheus.NewDesc("mtuscope_alert_deliveries_total",
		"Alert changes posted to a receiver, by result: sent, failed (every attempt), dropped (queue full).",
		[]string{"receiver", "result"}, nil)
	descStoreDropped = prometheus.NewDesc("mtuscope_store_dropped_writes_total",
		"Buckets and alert changes not written to the database because its queue was full.", nil, nil)
	descLogLines = prometheus.NewDesc("mtuscope_handshake_log_lines_total",
		"Lines written to the handshake log.", nil, nil)
	descLogSuppressed = prometheus.NewDesc("mtuscope_handshake_log_suppressed_lines_total",
		"Lines of unverified handshakes not written to the handshake log, beyond its rate for them.", nil, nil)
)

// collector exports a monitor's state at scrape time.
type collector struct {
	m        *Monitor
	pipeline func() PipelineStats
	senders  []*Sender
	log      *HandshakeLog
}

// NewRegistry returns a registry with the monitor's series, the
// pipeline's (pipeline may be nil), the senders' and the handshake log's
// (log may be nil), and the Go and process collectors.
func NewRegistry(m *Monitor, pipeline func() PipelineStats, senders []*Sender, log *HandshakeLog) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{m: m, pipeline: pipeline, senders: senders, log: log},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHandshakes, descNetHandshakes, descNetInfo, descNetAlert, descNetRate,
		descFeature, descNetFeature, descNetFeatureAlert,
		descServerAlert, descAlertsFiring, descNetworks, descFolded, descEvictedNets, descUnverified, descPackets, descBytes, descDropped, descDecode,
		descFlows, descFlowsMax, descEvicted, descStoreDropped, descDeliveries, descLogLines, descLogSuppressed} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	e := c.m.Exported()
	names := FeatureNames()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for fi, fam := range []string{"4", "6"} {
		for i, o := range outcomes {
			counter(descHandshakes, float64(e.ByFamily[fi][i]), string(o), fam)
		}
	}
	for _, n := range e.Networks {
		for i, o := range outcomes {
			counter(descNetHandshakes, float64(n.Counts[i]), n.Network, string(o))
		}
		gauge(descNetInfo, 1, n.Network, strconv.FormatUint(uint64(n.ASN), 10), n.Org)
		gauge(descNetAlert, b2f(n.Firing), n.Network)
		if n.Rate >= 0 {
			gauge(descNetRate, n.Rate, n.Network)
		}
		for f, c := range n.Features {
			counter(descNetFeature, float64(c[0]), n.Network, names[f], "completed")
			counter(descNetFeature, float64(c[1]), n.Network, names[f], "failed")
		}
		if n.FeatureFiring != "" {
			gauge(descNetFeatureAlert, 1, n.Network, n.FeatureFiring)
		}
	}
	for f, c := range e.Features {
		for w, with := range []string{"without", "with"} {
			counter(descFeature, float64(c[w][0]), names[f], with, "completed")
			counter(descFeature, float64(c[w][1]), names[f], with, "failed")
		}
	}
	for i, o := range outcomes {
		counter(descNetHandshakes, float64(e.Other[i]), OtherNetwork, string(o))
	}
	gauge(descServerAlert, b2f(e.Server))
	gauge(descAlertsFiring, float64(e.Firing))
	gauge(descNetworks, float64(e.Tracked))
	counter(descFolded, float64(e.Folded))
	counter(descEvictedNets, float64(e.Evicted))
	for i, o := range outcomes {
		counter(descUnverified, float64(e.Unverified[i]), string(o))
	}
	if c.pipeline != nil {
		p := c.pipeline()
		counter(descPackets, float64(p.Packets))
		counter(descBytes, float64(p.Bytes))
		counter(descDropped, float64(p.Dropped))
		counter(descDecode, float64(p.DecodeErrors))
		gauge(descFlows, float64(p.FlowsActive))
		gauge(descFlowsMax, float64(p.FlowsMax))
		counter(descEvicted, float64(p.FlowsEvicted))
		counter(descStoreDropped, float64(p.StoreDropped))
	}
	for _, s := range c.senders {
		sent, failed, dropped := s.Counts()
		counter(descDeliveries, float64(sent), s.Name, "sent")
		counter(descDeliveries, float64(failed), s.Name, "failed")
		counter(descDeliveries, float64(dropped), s.Name, "dropped")
	}
	if c.log != nil {
		counter(descLogLines, float64(c.log.Lines()))
		counter(descLogSuppressed, float64(c.log.Suppressed()))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
