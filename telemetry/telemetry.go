// Package telemetry gives a Go HTTP service traces, metrics and logs that
// agree with each other: an OpenTelemetry tracer provider configured from the
// standard OTEL_* variables, a non-global Prometheus registry with RED
// metrics (exemplars carrying trace IDs), system and runtime collectors, and
// a slog logger whose records carry trace_id, span_id and request_id.
//
// It must not import anything from this repository's app/ tree.
//
// CONTRACT STUB: the exported API below is fixed so app/ can be wired while
// the implementation is written. Bodies are placeholders.
package telemetry

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// Config configures New. The zero value is usable: JSON logs at info level to
// os.Stdout, no trace export, access log on.
type Config struct {
	ServiceName    string // default "glasshouse-api"; OTEL_SERVICE_NAME wins
	ServiceVersion string
	Environment    string // "development", "production", ...

	LogLevel  slog.Level
	LogFormat string    // "auto" (tint on a terminal, JSON otherwise), "json", "text"
	LogWriter io.Writer // default os.Stdout

	// LogFile, when set, also writes JSON logs to a rotating file.
	LogFile           string
	LogFileMaxSizeMB  int
	LogFileMaxBackups int

	// AccessLog enables one record per request. It is on unless DisableAccessLog.
	DisableAccessLog bool

	// Getenv reads OTEL_* variables; nil means os.Getenv.
	Getenv func(string) string
}

// Telemetry owns the tracer provider, the registry and the logger.
type Telemetry struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry
	Tracer   trace.Tracer
}

// New builds the telemetry stack. Call Shutdown to flush spans.
func New(ctx context.Context, cfg Config) (*Telemetry, error) { panic("stub") }

// Shutdown flushes and stops exporters, honouring ctx's deadline.
func (t *Telemetry) Shutdown(ctx context.Context) error { panic("stub") }

// Router is what Middleware needs from the request router: *http.ServeMux
// satisfies it. Handler reports the matched pattern ("" when none).
type Router interface {
	http.Handler
	Handler(r *http.Request) (h http.Handler, pattern string)
}

// Middleware wraps mux with tracing (server span "<METHOD> <route>"), RED
// metrics labelled by route template, the trace-ID response header and the
// access log. Unmatched paths share route="unmatched".
func (t *Telemetry) Middleware(mux Router) http.Handler { panic("stub") }

// MetricsHandler serves the registry (OpenMetrics with exemplars when asked).
func (t *Telemetry) MetricsHandler() http.Handler { panic("stub") }

// WithRequestID returns ctx carrying the request ID that log records and
// spans pick up.
func WithRequestID(ctx context.Context, id string) context.Context { panic("stub") }

// RequestID returns the request ID in ctx, or "".
func RequestID(ctx context.Context) string { panic("stub") }

// Route returns the route template Middleware resolved for this request, or "".
func Route(ctx context.Context) string { panic("stub") }

// SystemStats is what /health/detailed reports about the host and process.
type SystemStats struct {
	CPUPercent       float64 `json:"cpu_percent"`
	MemoryUsedBytes  uint64  `json:"memory_used_bytes"`
	MemoryAvailBytes uint64  `json:"memory_available_bytes"`
	ProcessRSSBytes  uint64  `json:"process_rss_bytes"`
	Goroutines       int     `json:"goroutines"`
}

// SystemStats reads the same gopsutil source as the system gauges.
func (t *Telemetry) SystemStats(ctx context.Context) (SystemStats, error) { panic("stub") }

// Span starts a child span named name (e.g. "db.query", "password.hash").
func (t *Telemetry) Span(ctx context.Context, name string) (context.Context, trace.Span) {
	panic("stub")
}

// Counters the app increments. Each is safe for concurrent use.
func (t *Telemetry) RateLimited(route, scope string)                          { panic("stub") }
func (t *Telemetry) ConcurrencyRejected()                                     { panic("stub") }
func (t *Telemetry) PanicRecovered(route string)                              { panic("stub") }
func (t *Telemetry) SignedUp()                                                { panic("stub") }
func (t *Telemetry) LoginAttempt(result string)                               { panic("stub") }
func (t *Telemetry) ItemCreated()                                             { panic("stub") }
func (t *Telemetry) ObserveDependency(dep string, d time.Duration, err error) { panic("stub") }
