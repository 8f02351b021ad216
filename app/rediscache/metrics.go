package rediscache

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is the Recorder that exposes lookups as
// app_cache_requests_total{cache,result}. Build it once per registry with
// NewMetrics and pass it to every cache as Options.Recorder.
type Metrics struct {
	requests *prometheus.CounterVec
}

// NewMetrics registers app_cache_requests_total on reg. It fails if the
// registry already has it.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "app_cache_requests_total",
		Help: "Read-through cache lookups by cache and result (hit, miss, error).",
	}, []string{"cache", "result"})}
	if err := reg.Register(m.requests); err != nil {
		return nil, fmt.Errorf("register cache metrics: %w", err)
	}
	return m, nil
}

// CacheRequest counts one lookup of cache; result is "hit", "miss" or "error".
func (m *Metrics) CacheRequest(cache, result string) {
	m.requests.WithLabelValues(cache, result).Inc()
}
