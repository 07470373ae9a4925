package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus series. Every label takes values
// from a fixed set (listener kinds, route patterns, status classes,
// verdicts), so cardinality stays bounded whatever clients send.
type metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	reports      *prometheus.CounterVec
	sessions     prometheus.Counter
	limited      *prometheus.CounterVec
	echo         *prometheus.CounterVec
	conns        *prometheus.CounterVec
	storeLatency prometheus.Histogram
	storeErrors  prometheus.Counter
	certRefused  prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtuscope_http_requests_total", Help: "HTTP requests by listener kind, route pattern and status class.",
		}, []string{"listener", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mtuscope_http_request_duration_seconds", Help: "HTTP request latency by listener kind.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"listener"}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtuscope_reports_stored_total", Help: "Reports stored, by source and verdict.",
		}, []string{"source", "verdict"}),
		sessions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mtuscope_page_sessions_total", Help: "Page test sessions started.",
		}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtuscope_rate_limited_total", Help: "Requests refused by a per-address rate limit.",
		}, []string{"limit"}),
		echo: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtuscope_echo_datagrams_total", Help: "UDP echo datagrams by outcome.",
		}, []string{"outcome"}),
		conns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtuscope_connections_total", Help: "Accepted TCP connections by listener kind.",
		}, []string{"listener"}),
		storeLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mtuscope_store_write_seconds", Help: "Time to store one report durably.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 3, 10),
		}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mtuscope_report_store_errors_total", Help: "Reports that could not be stored (the submitter got an error).",
		}),
	}
	m.certRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mtuscope_page_certificate_refused_total",
		Help: "Page checks that ended without a result because the browser refused the rungs' certificate.",
	})
	m.reg.MustRegister(m.requests, m.duration, m.reports, m.sessions, m.limited, m.echo, m.conns, m.storeLatency, m.storeErrors, m.certRefused,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// watchStore exports mtuscope_store_writable: at each scrape, whether a
// report could be stored now (check is the store's write check, the one
// /healthz runs).
func (m *metrics) watchStore(check func(context.Context) error) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mtuscope_store_writable", Help: "1 when a report could be stored at the last scrape (a write commits and the disk has room), else 0.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if check(ctx) != nil {
			return 0
		}
		return 1
	}))
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument counts requests of one listener kind by the mux's pattern.
func (m *metrics) instrument(listener string, mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		_, pattern := mux.Handler(r)
		if pattern == "" {
			pattern = "unmatched"
		}
		mux.ServeHTTP(sw, r)
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		m.requests.WithLabelValues(listener, pattern, strconv.Itoa(code/100)+"xx").Inc()
		m.duration.WithLabelValues(listener).Observe(time.Since(start).Seconds())
	})
}
