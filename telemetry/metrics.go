package telemetry

import (
	"net/http"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// durationBuckets are the OpenTelemetry semantic-convention bucket
// boundaries for http.server.request.duration, in seconds.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// DurationBuckets returns (a copy of) the bucket boundaries of
// http_server_request_duration_seconds, in seconds: the OpenTelemetry
// semantic-convention ones. Latency SLOs should use a non-integer boundary
// (0.25, 0.5) as threshold.
func DurationBuckets() []float64 { return append([]float64(nil), durationBuckets...) }

// sizeBuckets are the response-body-size boundaries: 64 B to 1 MiB in
// powers of four.
var sizeBuckets = prometheus.ExponentialBuckets(64, 4, 8)

// metrics holds every collector telemetry registers itself.
type metrics struct {
	reg     *prometheus.Registry
	handler http.Handler

	duration     *prometheus.HistogramVec
	size         *prometheus.HistogramVec
	active       prometheus.Gauge
	concurrency  prometheus.Counter
	panics       *prometheus.CounterVec
	spansDropped *prometheus.CounterVec

	series sync.Map // seriesKey -> *seriesObservers
}

// seriesKey identifies one (method, route, code) series of the RED
// histograms; all three parts are bounded, so the cache is too.
type seriesKey struct {
	method, route string
	code          int
}

type seriesObservers struct {
	duration, size prometheus.Observer
	// lastExemplar is, per duration bucket (+Inf last), the UnixNano time
	// its exemplar was last replaced.
	lastExemplar [16]atomic.Int64
}

// ExemplarInterval is the least time between two exemplar updates of the
// same histogram bucket of the same series. Prometheus keeps only the
// latest exemplar per bucket per scrape, so replacing it on every request
// would cost allocations for nothing.
const ExemplarInterval = time.Second

// exemplarDue reports whether an observation of v seconds at now should
// carry an exemplar, and claims the bucket's slot if so.
func (o *seriesObservers) exemplarDue(v float64, now time.Time) bool {
	i := sort.SearchFloat64s(durationBuckets, v) // the first bucket with le >= v
	slot := &o.lastExemplar[i]
	last := slot.Load()
	n := now.UnixNano()
	if last != 0 && n-last < int64(ExemplarInterval) {
		return false
	}
	return slot.CompareAndSwap(last, n)
}

// observers returns the histogram children for one series, caching them
// so a request does not hash and validate its labels twice.
func (m *metrics) observers(method, route string, code int) *seriesObservers {
	k := seriesKey{method, route, code}
	if v, ok := m.series.Load(k); ok {
		return v.(*seriesObservers)
	}
	c := strconv.Itoa(code)
	v, _ := m.series.LoadOrStore(k, &seriesObservers{
		duration: m.duration.WithLabelValues(method, route, c),
		size:     m.size.WithLabelValues(method, route, c),
	})
	return v.(*seriesObservers)
}

func newMetrics(reg *prometheus.Registry, version string) *metrics {
	f := promauto.With(reg)
	m := &metrics{reg: reg}
	m.duration = f.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "http_server_request_duration_seconds",
		Help:    "Duration of HTTP server requests by method, route template and status code.",
		Buckets: durationBuckets,
	}, []string{"method", "route", "code"})
	m.size = f.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "http_server_response_body_size_bytes",
		Help:    "Size of HTTP server response bodies by method, route template and status code.",
		Buckets: sizeBuckets,
	}, []string{"method", "route", "code"})
	m.active = f.NewGauge(prometheus.GaugeOpts{
		Name: "http_server_active_requests",
		Help: "Number of HTTP server requests currently being served.",
	})
	m.concurrency = f.NewCounter(prometheus.CounterOpts{
		Name: "app_http_concurrency_rejected_total",
		Help: "Requests rejected with 503 because the concurrency limit was reached.",
	})
	m.panics = f.NewCounterVec(prometheus.CounterOpts{
		Name: "app_http_panics_recovered_total",
		Help: "Handler panics recovered and turned into 500 responses, by route template.",
	}, []string{"route"})
	m.spansDropped = f.NewCounterVec(prometheus.CounterOpts{
		Name: "app_trace_spans_dropped_total",
		Help: "Spans dropped instead of exported, by reason (queue_full, export_failed, shutdown).",
	}, []string{"reason"})
	buildInfo := f.NewGaugeVec(prometheus.GaugeOpts{
		Name: "app_build_info",
		Help: "Build information about the service; always 1.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)

	// Series that dashboards and alerts read exist from the start, so a
	// quiet service shows 0 instead of "no data".
	for _, r := range []string{"queue_full", "export_failed", "shutdown"} {
		m.spansDropped.WithLabelValues(r)
	}

	reg.MustRegister(
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsScheduler)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		// A collector error still serves the metrics that worked.
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
	return m
}

// mainVersion is the main module's version from the build info ("(devel)"
// for a plain go build, "unknown" without build info).
func mainVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}

// ConcurrencyRejected counts a request rejected with 503 by the concurrency limit.
func (t *Telemetry) ConcurrencyRejected() { t.metrics.concurrency.Inc() }

// PanicRecovered counts a handler panic turned into a 500. route must be a
// route template (Route(ctx)).
func (t *Telemetry) PanicRecovered(route string) { t.metrics.panics.WithLabelValues(route).Inc() }
