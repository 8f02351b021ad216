// Package telemetry gives a Go HTTP service traces, metrics and logs that
// agree with each other: an OpenTelemetry tracer provider configured from the
// standard OTEL_* variables, a non-global Prometheus registry with RED
// metrics (exemplars carrying trace IDs), system and runtime collectors, and
// a slog logger whose records carry trace_id, span_id and request_id.
//
// It imports nothing from this repository, app/ included (TestImports):
// services import telemetry, never the other way round. It sets no globals (no
// otel.SetTracerProvider, no prometheus.DefaultRegisterer); callers pass
// TracerProvider and Registry to the libraries that need them.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// Config configures New. The zero value is usable: logs at info level to
// os.Stdout (JSON unless stdout is a terminal), no trace export, access log
// on, system gauges sampled at most once a second.
type Config struct {
	ServiceName    string // default "unknown_service:<executable>", as OpenTelemetry's; OTEL_SERVICE_NAME wins
	ServiceVersion string // default: the main module version from the build info
	Environment    string // "development", "production", ...; "production" forces JSON logs in "auto"

	LogLevel  slog.Level
	LogFormat string    // "auto" or "" (tint on a terminal, JSON otherwise), "json", "text" (tint)
	LogWriter io.Writer // default os.Stdout

	// LogFile, when set, writes JSON logs to a rotating file (lumberjack)
	// instead of LogWriter: LogFileMaxSizeMB per file (default 100),
	// keeping LogFileMaxBackups old files (default 5). One sink keeps each
	// record to one write; LogFileTee also keeps LogWriter, at the cost of
	// a second write (and encoding) per record.
	LogFile           string
	LogFileMaxSizeMB  int
	LogFileMaxBackups int
	LogFileTee        bool

	// LogBufferBytes, when positive, buffers log output up to that many
	// bytes, flushed at least every 100 ms and by Shutdown, so a busy
	// service makes a few large writes instead of one per record. A
	// graceful stop loses nothing; a crash loses at most the last 100 ms.
	// Zero (the default) writes each record at once.
	LogBufferBytes int

	// AccessLog enables one record per request. It is on unless DisableAccessLog.
	DisableAccessLog bool

	// Getenv reads OTEL_* variables; nil means os.Getenv.
	Getenv func(string) string

	// Now is the clock used for request durations and the system-stats
	// cache; nil means time.Now. Tests pass a fake clock.
	Now func() time.Time

	// SystemStatsTTL is how long one gopsutil reading is reused by scrapes
	// and SystemStats; zero means one second, negative disables caching.
	SystemStatsTTL time.Duration

	// MaxRoutes caps the distinct values of the route label, a guard for
	// routers that report raw paths; zero means 1000.
	MaxRoutes int

	// SpanProcessors are added to the tracer provider next to the exporter's
	// processor, e.g. a tracetest.SpanRecorder in tests.
	SpanProcessors []sdktrace.SpanProcessor
}

// Telemetry owns the tracer provider, the registry and the logger. Its
// methods are safe for concurrent use. Build it with New, stop it with
// Shutdown.
type Telemetry struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry
	Tracer   trace.Tracer

	now        func() time.Time
	realClock  bool // now is time.Now, so its readings can stamp log records
	tp         trace.TracerProvider
	propagator propagation.TextMapPropagator
	distrust   bool // OTEL_TRUST_INCOMING_TRACE=false
	accessLog  bool
	metrics    *metrics
	routes     *routeSet
	system     *systemSampler

	reopenLog func() error // nil without LogFile

	mu          sync.Mutex // guards shutdownFns
	shutdownFns []func(context.Context) error
}

// ReopenLogFile closes Config.LogFile so that the next record opens the
// path again: call it on SIGHUP after logrotate has moved the file away
// (the usual "create" mode, no copytruncate). Records buffered by
// LogBufferBytes reach whichever file is open when they are flushed.
// Without a LogFile it does nothing. Safe for concurrent use.
func (t *Telemetry) ReopenLogFile() error {
	if t.reopenLog == nil {
		return nil
	}
	return t.reopenLog()
}

// New builds the telemetry stack from cfg and the OTEL_* variables read
// through cfg.Getenv. It reports every configuration problem at once. Call
// Shutdown to flush spans and close the log file.
func New(ctx context.Context, cfg Config) (*Telemetry, error) {
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	realClock := cfg.Now == nil
	if realClock {
		cfg.Now = time.Now
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = defaultServiceName()
	}
	if cfg.ServiceVersion == "" {
		cfg.ServiceVersion = mainVersion()
	}
	t := &Telemetry{
		Registry:   prometheus.NewRegistry(),
		now:        cfg.Now,
		realClock:  realClock,
		accessLog:  !cfg.DisableAccessLog,
		propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}

	var errs []error
	logger, closeLog, reopenLog, err := newLogger(cfg)
	if err != nil {
		errs = append(errs, err)
	}
	t.metrics = newMetrics(t.Registry, cfg.ServiceVersion)
	tcfg, err := traceConfigFromEnv(cfg)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		if closeLog != nil {
			_ = closeLog(ctx)
		}
		return nil, fmt.Errorf("telemetry config: %w", errors.Join(errs...))
	}
	t.Logger = logger
	t.reopenLog = reopenLog
	t.distrust = tcfg.distrust
	if cfg.MaxRoutes <= 0 {
		cfg.MaxRoutes = 1000
	}
	t.routes = newRouteSet(cfg.MaxRoutes, logger)
	if closeLog != nil {
		t.shutdownFns = append(t.shutdownFns, closeLog)
	}

	tp, shutdownTP, err := newTracerProvider(ctx, tcfg, cfg.SpanProcessors, t.metrics, logger)
	if err != nil {
		_ = t.Shutdown(ctx)
		return nil, err
	}
	t.tp = tp
	t.Tracer = tp.Tracer(instrumentationName)
	// Flush spans before closing the log file so export errors still log.
	t.shutdownFns = append([]func(context.Context) error{shutdownTP}, t.shutdownFns...)

	logger.LogAttrs(ctx, slog.LevelDebug, "telemetry ready",
		slog.Bool("tracing_disabled", tcfg.disabled),
		slog.String("otlp_endpoint", redactURL(tcfg.endpointURL)),
		slog.String("otlp_protocol", tcfg.protocol),
		slog.String("sampler", tcfg.sampler.Description()),
		slog.Bool("access_log", t.accessLog),
	)

	t.system = newSystemSampler(ctx, cfg.Now, cfg.SystemStatsTTL, gopsutilSources(ctx))
	if err := t.Registry.Register(newSystemCollector(t.system)); err != nil {
		_ = t.Shutdown(ctx)
		return nil, fmt.Errorf("register system collector: %w", err)
	}
	return t, nil
}

// defaultServiceName is OpenTelemetry's fallback service.name:
// "unknown_service:" and the executable's name.
func defaultServiceName() string {
	if len(os.Args) > 0 && os.Args[0] != "" {
		return "unknown_service:" + filepath.Base(os.Args[0])
	}
	return "unknown_service"
}

// CheckEnv reports every malformed OTEL_* variable read through getenv
// (os.Getenv if nil), as New would, without building anything: a service
// calls it while validating its own settings so that all configuration
// problems are reported together, before anything starts. Each problem is
// a separate error in the returned errors.Join, starting with the
// variable's name.
func CheckEnv(getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	_, err := traceConfigFromEnv(Config{Getenv: getenv})
	return err
}

// Shutdown flushes queued spans and stops the exporter, then closes the log
// file, honouring ctx's deadline. Spans still queued when ctx expires are
// lost. It is safe to call more than once; later calls do nothing.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	t.mu.Lock()
	fns := t.shutdownFns
	t.shutdownFns = nil
	t.mu.Unlock()
	var errs []error
	for _, fn := range fns {
		if err := fn(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("telemetry shutdown: %w", err)
	}
	return nil
}

// redactURL hides a password in an endpoint URL; "" stays "" (no export).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// TracerProvider returns the provider behind Tracer, for libraries that take
// one and pass the trace on (an otelhttp client transport); database and
// cache clients take ClientTracerProvider. It is never nil.
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.tp }

// SpansRecorded reports whether spans are recorded: an OTLP endpoint or
// Config.SpanProcessors is configured and tracing is not disabled.
func (t *Telemetry) SpansRecorded() bool {
	_, sdk := t.tp.(*sdktrace.TracerProvider)
	return sdk
}

// ClientTracerProvider is the provider to give clients whose spans carry
// nothing beyond the process: database and cache clients (redisotel, a pgx
// QueryTracer, a store's span per query). When spans are recorded it is
// TracerProvider. When they are not, such a span would only cost its IDs,
// a sampling decision and allocations, for no one to read: about 200 ns
// and 300 B for a store's span with three attributes, against 55 ns and
// 112 B for the stand-in (BenchmarkClientSpan). Its spans are then
// non-recording stand-ins for the caller's span, as the API's no-op tracer
// makes under a non-recording parent: anything logged inside a client call
// still carries the request's trace and span IDs, and a client that ends
// "its" span through the context ends only the stand-in. Clients that
// propagate context to another service (an HTTP client) should take
// TracerProvider, whose span IDs reach the callee.
func (t *Telemetry) ClientTracerProvider() trace.TracerProvider {
	if t.SpansRecorded() {
		return t.tp
	}
	return passProvider{}
}

// passProvider's tracer starts no span: Start returns the context with a
// non-recording span carrying the caller's span context, in one
// allocation, without reading the options, drawing IDs or asking a
// sampler.
type passProvider struct{ embedded.TracerProvider }

func (passProvider) Tracer(string, ...trace.TracerOption) trace.Tracer { return passTracer{} }

type passTracer struct{ embedded.Tracer }

func (passTracer) Start(ctx context.Context, _ string, _ ...trace.SpanStartOption) (context.Context, trace.Span) {
	if ctx == nil {
		ctx = context.Background()
	}
	c := &spanCtx{Context: ctx, span: idSpan{sc: trace.SpanContextFromContext(ctx)}}
	return c.carrier(), &c.span
}

// Propagator returns the W3C trace-context and baggage propagator that
// Middleware uses to read incoming headers; use it for outgoing requests.
func (t *Telemetry) Propagator() propagation.TextMapPropagator { return t.propagator }

// MetricsHandler serves the registry: OpenMetrics (with exemplars) when the
// scraper asks for it, the Prometheus text format otherwise. Serve it on an
// admin listener only.
func (t *Telemetry) MetricsHandler() http.Handler { return t.metrics.handler }

// Span starts a child span of the span in ctx named name (e.g. "db.query",
// "password.hash"). The caller must End the returned span; it may add
// attributes and record errors on it.
func (t *Telemetry) Span(ctx context.Context, name string) (context.Context, trace.Span) {
	return t.Tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindInternal))
}

type ctxKey int

const (
	requestIDKey ctxKey = iota
	requestInfoKey
)

// requestInfo is what Middleware puts in the request context, in one value.
// The hex IDs of the server span are kept so that exemplars and log
// records of the same span do not encode them again.
type requestInfo struct {
	route             string
	id                string
	spanID            trace.SpanID
	traceHex, spanHex string
}

// WithRequestID returns ctx carrying the request ID that log records and
// the access log pick up. Middleware uses an ID already in the context
// (from an outer middleware), else a well-formed incoming X-Request-Id,
// else a generated one; an ID set inside the handler with WithRequestID
// applies to that handler's own log records.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// RequestID returns the request ID in ctx, or "".
func RequestID(ctx context.Context) string {
	if id, ok := ctx.Value(requestIDKey).(string); ok {
		return id
	}
	if info, ok := ctx.Value(requestInfoKey).(*requestInfo); ok {
		return info.id
	}
	return ""
}

// Route returns the route template Middleware resolved for this request
// ("/api/v1/items/{id}", or "unmatched"), or "" outside Middleware.
func Route(ctx context.Context) string {
	if info, ok := ctx.Value(requestInfoKey).(*requestInfo); ok {
		return info.route
	}
	return ""
}
