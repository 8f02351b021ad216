package telemetry

import (
	"errors"
	"fmt"
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

	duration      *prometheus.HistogramVec
	size          *prometheus.HistogramVec
	active        prometheus.Gauge
	rateLimited   *prometheus.CounterVec
	concurrency   prometheus.Counter
	panics        *prometheus.CounterVec
	signups       prometheus.Counter
	logins        *prometheus.CounterVec
	itemsCreated  prometheus.Counter
	spansDropped  *prometheus.CounterVec
	dependencyUp  *prometheus.GaugeVec
	dependencyDur *prometheus.HistogramVec
	cacheRequests *prometheus.CounterVec
	rlFallback    *prometheus.CounterVec

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
	m.rateLimited = f.NewCounterVec(prometheus.CounterOpts{
		Name: "app_http_rate_limited_total",
		Help: "Requests rejected with 429 by the rate limiter, by route template and limit scope.",
	}, []string{"route", "scope"})
	m.concurrency = f.NewCounter(prometheus.CounterOpts{
		Name: "app_http_concurrency_rejected_total",
		Help: "Requests rejected with 503 because the concurrency limit was reached.",
	})
	m.panics = f.NewCounterVec(prometheus.CounterOpts{
		Name: "app_http_panics_recovered_total",
		Help: "Handler panics recovered and turned into 500 responses, by route template.",
	}, []string{"route"})
	m.signups = f.NewCounter(prometheus.CounterOpts{
		Name: "app_signups_total",
		Help: "Successful user sign-ups.",
	})
	m.logins = f.NewCounterVec(prometheus.CounterOpts{
		Name: "app_logins_total",
		Help: "Login attempts by result.",
	}, []string{"result"})
	m.itemsCreated = f.NewCounter(prometheus.CounterOpts{
		Name: "app_items_created_total",
		Help: "Items created.",
	})
	m.spansDropped = f.NewCounterVec(prometheus.CounterOpts{
		Name: "app_trace_spans_dropped_total",
		Help: "Spans dropped instead of exported, by reason (queue_full, export_failed, shutdown).",
	}, []string{"reason"})
	m.dependencyUp = f.NewGaugeVec(prometheus.GaugeOpts{
		Name: "app_dependency_up",
		Help: "1 when the last check of a dependency succeeded, 0 when the service runs degraded without it.",
	}, []string{"dependency"})
	m.dependencyDur = f.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "app_dependency_duration_seconds",
		Help:    "Duration of calls to a dependency by dependency and result (success, error).",
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
	}, []string{"dependency", "result"})
	m.cacheRequests = f.NewCounterVec(prometheus.CounterOpts{
		Name: "app_cache_requests_total",
		Help: "Read-through cache lookups by cache and result (hit, miss, error).",
	}, []string{"cache", "result"})
	m.rlFallback = f.NewCounterVec(prometheus.CounterOpts{
		Name: "app_ratelimit_fallback_total",
		Help: "Rate-limit decisions made without the shared store, by fallback mode (open, closed).",
	}, []string{"mode"})
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
	for _, r := range []string{"success", "failure"} {
		m.logins.WithLabelValues(r)
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

// RateLimited counts a request rejected with 429. route must be a route
// template (Route(ctx)), scope one of a few fixed values such as
// "anonymous", "user" or "login".
func (t *Telemetry) RateLimited(route, scope string) {
	t.metrics.rateLimited.WithLabelValues(route, scope).Inc()
}

// ConcurrencyRejected counts a request rejected with 503 by the concurrency limit.
func (t *Telemetry) ConcurrencyRejected() { t.metrics.concurrency.Inc() }

// PanicRecovered counts a handler panic turned into a 500. route must be a
// route template (Route(ctx)).
func (t *Telemetry) PanicRecovered(route string) { t.metrics.panics.WithLabelValues(route).Inc() }

// SignedUp counts a successful sign-up.
func (t *Telemetry) SignedUp() { t.metrics.signups.Inc() }

// LoginAttempt counts a login attempt; result is "success" or "failure"
// (other values are recorded as given, so keep them few and fixed).
func (t *Telemetry) LoginAttempt(result string) { t.metrics.logins.WithLabelValues(result).Inc() }

// ItemCreated counts a created item.
func (t *Telemetry) ItemCreated() { t.metrics.itemsCreated.Inc() }

// ObserveDependency records one call to dependency dep ("database",
// "redis") that took d, in app_dependency_duration_seconds with
// result="success" when err is nil and "error" otherwise. It does not change
// app_dependency_up; use SetDependencyUp for that.
func (t *Telemetry) ObserveDependency(dep string, d time.Duration, err error) {
	result := "success"
	if err != nil {
		result = "error"
	}
	t.metrics.dependencyDur.WithLabelValues(dep, result).Observe(d.Seconds())
}

// SetDependencyUp sets app_dependency_up{dependency=dep} to 1 when up and 0
// when the service runs degraded without it.
func (t *Telemetry) SetDependencyUp(dep string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	t.metrics.dependencyUp.WithLabelValues(dep).Set(v)
}

// CacheRequest counts one read-through cache lookup; result is "hit",
// "miss" or "error".
func (t *Telemetry) CacheRequest(cache, result string) {
	t.metrics.cacheRequests.WithLabelValues(cache, result).Inc()
}

// RateLimitFallback counts a rate-limit decision made without the shared
// store; mode is "open" (allowed) or "closed" (rejected).
func (t *Telemetry) RateLimitFallback(mode string) {
	t.metrics.rlFallback.WithLabelValues(mode).Inc()
}

// DBPoolStats is a snapshot of a database connection pool, as reported by
// pgxpool.Stat or sql.DBStats.
type DBPoolStats struct {
	Acquired     int64         // connections in use
	Idle         int64         // idle connections
	Total        int64         // open connections
	Max          int64         // configured maximum; 0 when unlimited
	WaitCount    uint64        // acquires that had to wait, since start
	WaitDuration time.Duration // total time spent waiting, since start
}

// RegisterDBPool exposes app_db_pool_connections{db,state},
// app_db_pool_wait_total{db} and app_db_pool_wait_seconds_total{db},
// calling stats at scrape time. db names the store ("sqlite", "postgres").
// It fails if a pool with the same db is already registered.
func (t *Telemetry) RegisterDBPool(db string, stats func() DBPoolStats) error {
	if stats == nil {
		return errors.New("register db pool: nil stats func")
	}
	if err := t.Registry.Register(newDBPoolCollector(db, stats)); err != nil {
		return fmt.Errorf("register db pool %q: %w", db, err)
	}
	return nil
}

// RedisPoolStats is a snapshot of a go-redis pool (redis.PoolStats).
type RedisPoolStats struct {
	Total, Idle, Stale uint32
}

// RegisterRedisPool exposes app_redis_pool_connections{state}, calling
// stats at scrape time. It fails if called twice.
func (t *Telemetry) RegisterRedisPool(stats func() RedisPoolStats) error {
	if stats == nil {
		return errors.New("register redis pool: nil stats func")
	}
	if err := t.Registry.Register(&redisPoolCollector{stats: stats}); err != nil {
		return fmt.Errorf("register redis pool: %w", err)
	}
	return nil
}

var redisPoolDesc = prometheus.NewDesc("app_redis_pool_connections",
	"go-redis pool connections by state (total, idle, stale).", []string{"state"}, nil)

// dbPoolCollector carries db as a constant label so that one collector per
// store can be registered without descriptor clashes.
type dbPoolCollector struct {
	conns, wait, waitSec *prometheus.Desc
	stats                func() DBPoolStats
}

func newDBPoolCollector(db string, stats func() DBPoolStats) *dbPoolCollector {
	l := prometheus.Labels{"db": db}
	return &dbPoolCollector{
		conns: prometheus.NewDesc("app_db_pool_connections",
			"Database pool connections by state (acquired, idle, total, max).", []string{"state"}, l),
		wait: prometheus.NewDesc("app_db_pool_wait_total",
			"Connection acquires that had to wait for a free connection.", nil, l),
		waitSec: prometheus.NewDesc("app_db_pool_wait_seconds_total",
			"Total time spent waiting for a database connection.", nil, l),
		stats: stats,
	}
}

func (c *dbPoolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.conns
	ch <- c.wait
	ch <- c.waitSec
}

func (c *dbPoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	for _, v := range []struct {
		state string
		n     int64
	}{{"acquired", s.Acquired}, {"idle", s.Idle}, {"total", s.Total}, {"max", s.Max}} {
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(v.n), v.state)
	}
	ch <- prometheus.MustNewConstMetric(c.wait, prometheus.CounterValue, float64(s.WaitCount))
	ch <- prometheus.MustNewConstMetric(c.waitSec, prometheus.CounterValue, s.WaitDuration.Seconds())
}

type redisPoolCollector struct{ stats func() RedisPoolStats }

func (c *redisPoolCollector) Describe(ch chan<- *prometheus.Desc) { ch <- redisPoolDesc }

func (c *redisPoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(redisPoolDesc, prometheus.GaugeValue, float64(s.Total), "total")
	ch <- prometheus.MustNewConstMetric(redisPoolDesc, prometheus.GaugeValue, float64(s.Idle), "idle")
	ch <- prometheus.MustNewConstMetric(redisPoolDesc, prometheus.GaugeValue, float64(s.Stale), "stale")
}
