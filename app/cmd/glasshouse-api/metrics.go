package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// depMetrics are what dependencyHealth learns about the API's
// dependencies: app_dependency_up and app_dependency_duration_seconds.
type depMetrics struct {
	up       *prometheus.GaugeVec
	duration *prometheus.HistogramVec
}

// newDepMetrics registers the dependency metrics on reg.
func newDepMetrics(reg prometheus.Registerer) (*depMetrics, error) {
	m := &depMetrics{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "app_dependency_up",
			Help: "1 when the last check of a dependency succeeded, 0 when the service runs degraded without it.",
		}, []string{"dependency"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "app_dependency_duration_seconds",
			Help:    "Duration of calls to a dependency by dependency and result (success, error).",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
		}, []string{"dependency", "result"}),
	}
	for _, c := range []prometheus.Collector{m.up, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register dependency metrics: %w", err)
		}
	}
	return m, nil
}

// observe records one call to dep that took d, with result "success" when
// err is nil and "error" otherwise.
func (m *depMetrics) observe(dep string, d time.Duration, err error) {
	result := "success"
	if err != nil {
		result = "error"
	}
	m.duration.WithLabelValues(dep, result).Observe(d.Seconds())
}

// setUp sets app_dependency_up{dependency=dep} to 1 when up, else 0.
func (m *depMetrics) setUp(dep string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.up.WithLabelValues(dep).Set(v)
}

// dbPoolStats is a snapshot of a database connection pool, as reported by
// pgxpool.Stat or sql.DBStats.
type dbPoolStats struct {
	Acquired     int64         // connections in use
	Idle         int64         // idle connections
	Total        int64         // open connections
	Max          int64         // configured maximum; 0 when unlimited
	WaitCount    uint64        // acquires that had to wait, since start
	WaitDuration time.Duration // total time spent waiting, since start
}

// registerDBPool exposes app_db_pool_connections{db,state},
// app_db_pool_wait_total{db} and app_db_pool_wait_seconds_total{db},
// calling stats at scrape time. db names the store ("sqlite",
// "postgres"). It fails if a pool with the same db is already registered.
func registerDBPool(reg prometheus.Registerer, db string, stats func() dbPoolStats) error {
	if stats == nil {
		return errors.New("register db pool: nil stats func")
	}
	if err := reg.Register(newDBPoolCollector(db, stats)); err != nil {
		return fmt.Errorf("register db pool %q: %w", db, err)
	}
	return nil
}

// dbPoolCollector carries db as a constant label so that one collector per
// store can be registered without descriptor clashes.
type dbPoolCollector struct {
	conns, wait, waitSec *prometheus.Desc
	stats                func() dbPoolStats
}

func newDBPoolCollector(db string, stats func() dbPoolStats) *dbPoolCollector {
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

// redisPoolStats is a snapshot of a go-redis pool (redis.PoolStats).
type redisPoolStats struct {
	Total, Idle, Stale uint32
}

// registerRedisPool exposes app_redis_pool_connections{state}, calling
// stats at scrape time. It fails if called twice on one registry.
func registerRedisPool(reg prometheus.Registerer, stats func() redisPoolStats) error {
	if stats == nil {
		return errors.New("register redis pool: nil stats func")
	}
	if err := reg.Register(&redisPoolCollector{stats: stats}); err != nil {
		return fmt.Errorf("register redis pool: %w", err)
	}
	return nil
}

var redisPoolDesc = prometheus.NewDesc("app_redis_pool_connections",
	"go-redis pool connections by state (total, idle, stale).", []string{"state"}, nil)

type redisPoolCollector struct{ stats func() redisPoolStats }

func (c *redisPoolCollector) Describe(ch chan<- *prometheus.Desc) { ch <- redisPoolDesc }

func (c *redisPoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(redisPoolDesc, prometheus.GaugeValue, float64(s.Total), "total")
	ch <- prometheus.MustNewConstMetric(redisPoolDesc, prometheus.GaugeValue, float64(s.Idle), "idle")
	ch <- prometheus.MustNewConstMetric(redisPoolDesc, prometheus.GaugeValue, float64(s.Stale), "stale")
}
