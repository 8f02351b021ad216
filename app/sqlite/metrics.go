package sqlite

import (
	"database/sql"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector returns a Prometheus collector exporting the store's connection
// pools (reader pool and single writer, summed) as app_db_pool_* with
// db="sqlite", read from sql.DBStats at scrape time.
func (s *Store) Collector() prometheus.Collector { return poolCollector{s} }

var (
	poolConnsDesc = prometheus.NewDesc("app_db_pool_connections",
		"Database pool connections by state (in_use, idle, total, max).", []string{"db", "state"}, nil)
	poolWaitDesc = prometheus.NewDesc("app_db_pool_wait_total",
		"Connection acquires that had to wait for a free connection.", []string{"db"}, nil)
	poolWaitSecondsDesc = prometheus.NewDesc("app_db_pool_wait_seconds_total",
		"Total time spent waiting for a database connection.", []string{"db"}, nil)
)

type poolCollector struct{ s *Store }

func (poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- poolConnsDesc
	ch <- poolWaitDesc
	ch <- poolWaitSecondsDesc
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	r, w := c.s.r.Stats(), c.s.w.Stats()
	sum := sql.DBStats{
		MaxOpenConnections: r.MaxOpenConnections + w.MaxOpenConnections,
		OpenConnections:    r.OpenConnections + w.OpenConnections,
		InUse:              r.InUse + w.InUse,
		Idle:               r.Idle + w.Idle,
		WaitCount:          r.WaitCount + w.WaitCount,
		WaitDuration:       r.WaitDuration + w.WaitDuration,
	}
	for _, m := range []struct {
		state string
		v     int
	}{{"in_use", sum.InUse}, {"idle", sum.Idle}, {"total", sum.OpenConnections}, {"max", sum.MaxOpenConnections}} {
		ch <- prometheus.MustNewConstMetric(poolConnsDesc, prometheus.GaugeValue, float64(m.v), "sqlite", m.state)
	}
	ch <- prometheus.MustNewConstMetric(poolWaitDesc, prometheus.CounterValue, float64(sum.WaitCount), "sqlite")
	ch <- prometheus.MustNewConstMetric(poolWaitSecondsDesc, prometheus.CounterValue, sum.WaitDuration.Seconds(), "sqlite")
}
