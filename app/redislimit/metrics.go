package redislimit

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is the Recorder that exposes fallback decisions as
// app_ratelimit_fallback_total{mode}. Build it once per registry with
// NewMetrics and pass it as FallbackOptions.Recorder.
type Metrics struct {
	fallbacks *prometheus.CounterVec
}

// NewMetrics registers app_ratelimit_fallback_total on reg. It fails if
// the registry already has it.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "app_ratelimit_fallback_total",
		Help: "Rate-limit decisions made without the shared store, by fallback mode (open, closed).",
	}, []string{"mode"})}
	if err := reg.Register(m.fallbacks); err != nil {
		return nil, fmt.Errorf("register rate-limit fallback metrics: %w", err)
	}
	return m, nil
}

// RateLimitFallback counts one decision made without the shared limiter;
// mode is "open" (allowed) or "closed" (rejected).
func (m *Metrics) RateLimitFallback(mode string) {
	m.fallbacks.WithLabelValues(mode).Inc()
}
