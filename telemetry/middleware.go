package telemetry

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/felixge/httpsnoop"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Unmatched is the route label of requests no pattern matched (404s, 405s),
// so random paths cannot add series.
const Unmatched = "unmatched"

// TraceResponseHeader is the response header carrying the request's trace
// context, W3C Trace Context Level 2 "traceresponse":
// "00-<32 hex trace-id>-<16 hex span-id>-<2 hex flags>". The trace ID is the
// second dash-separated field; paste it into the trace UI.
const TraceResponseHeader = "Traceresponse"

// RequestIDHeader is read from requests (when well formed) and always set on
// responses.
const RequestIDHeader = "X-Request-Id"

// Router is what Middleware needs from the request router: *http.ServeMux
// satisfies it. Handler reports the matched pattern ("" when none).
type Router interface {
	http.Handler
	Handler(r *http.Request) (h http.Handler, pattern string)
}

// Middleware wraps mux with, in order: W3C trace-context extraction and a
// server span named "<METHOD> <route>" (otelhttp, semantic-convention
// attributes plus http.route); the request ID (X-Request-Id in and out); the
// Traceresponse header; RED metrics labelled by method, route template and
// status code, with trace_id/span_id exemplars on sampled requests; and one
// access-log record. The route is resolved once, before the handler runs,
// with mux.Handler(r); unmatched paths share route="unmatched" and unknown
// methods share method="_OTHER". A panic escaping mux is recorded as a 500
// on the span, metrics and log, then re-raised for net/http (or an outer
// recoverer) to handle.
func (t *Telemetry) Middleware(mux Router) http.Handler {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.serve(w, r, mux)
	})
	traced := otelhttp.NewHandler(inner, "http.server",
		otelhttp.WithTracerProvider(t.tp),
		otelhttp.WithPropagators(t.propagator),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			return spanName(r.Method, Route(r.Context()))
		}),
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		ctx := withRoute(r.Context(), t.routes.bound(routeFromPattern(pattern)))
		traced.ServeHTTP(w, r.WithContext(ctx))
	})
}

// serve runs inside the server span.
func (t *Telemetry) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	start := t.now()
	ctx := r.Context()
	route := Route(ctx)
	method := normalizeMethod(r.Method)
	span := trace.SpanFromContext(ctx)
	sc := span.SpanContext()
	if route != Unmatched {
		span.SetAttributes(semconv.HTTPRoute(route))
	}

	id := RequestID(ctx)
	if id == "" {
		id = r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			id = newRequestID()
		}
		ctx = WithRequestID(ctx, id)
		r = r.WithContext(ctx)
	}
	h := w.Header()
	h.Set(RequestIDHeader, id)
	if sc.IsValid() {
		h.Set(TraceResponseHeader, traceResponse(sc))
	}

	t.metrics.active.Inc()
	rec := &recorder{}
	completed := false
	defer func() {
		t.metrics.active.Dec()
		code := rec.status
		if code == 0 {
			code = http.StatusOK // net/http's default when nothing was written
		}
		var rv any
		if !completed {
			rv = recover()
			code = http.StatusInternalServerError
			span.SetStatus(codes.Error, "panic")
			span.RecordError(fmt.Errorf("panic: %v", rv), trace.WithStackTrace(true))
		}
		elapsed := t.now().Sub(start)
		codeStr := strconv.Itoa(code)
		obs := t.metrics.duration.WithLabelValues(method, route, codeStr)
		if sc.IsSampled() {
			obs.(prometheus.ExemplarObserver).ObserveWithExemplar(elapsed.Seconds(), prometheus.Labels{
				"trace_id": sc.TraceID().String(),
				"span_id":  sc.SpanID().String(),
			})
		} else {
			obs.Observe(elapsed.Seconds())
		}
		t.metrics.size.WithLabelValues(method, route, codeStr).Observe(float64(rec.bytes))
		if t.accessLog && t.Logger.Enabled(ctx, slog.LevelInfo) {
			t.Logger.LogAttrs(ctx, slog.LevelInfo, "http request",
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.String("path", r.URL.Path),
				slog.Int("status", code),
				slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
				slog.Int64("bytes", rec.bytes),
				slog.String("client_ip", clientIP(r.RemoteAddr)),
				slog.String("user_agent", r.UserAgent()),
			)
		}
		if rv != nil {
			panic(rv)
		}
	}()
	next.ServeHTTP(rec.wrap(w), r)
	completed = true
}

// recorder captures the final status code and the body bytes written.
type recorder struct {
	status int
	bytes  int64
}

func (rec *recorder) wrap(w http.ResponseWriter) http.ResponseWriter {
	return httpsnoop.Wrap(w, httpsnoop.Hooks{
		WriteHeader: func(next httpsnoop.WriteHeaderFunc) httpsnoop.WriteHeaderFunc {
			return func(code int) {
				// 1xx responses (103 Early Hints) are not the final status.
				if rec.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
					rec.status = code
				}
				next(code)
			}
		},
		Write: func(next httpsnoop.WriteFunc) httpsnoop.WriteFunc {
			return func(b []byte) (int, error) {
				if rec.status == 0 {
					rec.status = http.StatusOK
				}
				n, err := next(b)
				rec.bytes += int64(n)
				return n, err
			}
		},
		WriteString: func(next httpsnoop.WriteStringFunc) httpsnoop.WriteStringFunc {
			return func(s string) (int, error) {
				if rec.status == 0 {
					rec.status = http.StatusOK
				}
				n, err := next(s)
				rec.bytes += int64(n)
				return n, err
			}
		},
		ReadFrom: func(next httpsnoop.ReadFromFunc) httpsnoop.ReadFromFunc {
			return func(src io.Reader) (int64, error) {
				if rec.status == 0 {
					rec.status = http.StatusOK
				}
				n, err := next(src)
				rec.bytes += n
				return n, err
			}
		},
	})
}

// routeFromPattern turns a ServeMux pattern into the route label:
// "GET /api/v1/items/{id}" -> "/api/v1/items/{id}", "" -> "unmatched".
func routeFromPattern(p string) string {
	if p == "" {
		return Unmatched
	}
	if i := strings.IndexAny(p, " \t"); i >= 0 {
		p = strings.TrimLeft(p[i:], " \t")
	}
	return p
}

// routeSet bounds the route label whatever the Router returns. ServeMux
// returns registered patterns, except for one corner: a CONNECT request
// redirected to a trailing-slash pattern reports the redirect target path.
// After max distinct values every new one is recorded as "unmatched" and a
// warning is logged once.
type routeSet struct {
	max    int
	seen   sync.Map // route -> struct{}
	mu     sync.Mutex
	n      int
	warned bool
	log    *slog.Logger
}

func (rs *routeSet) bound(route string) string {
	if route == Unmatched {
		return route
	}
	if _, ok := rs.seen.Load(route); ok {
		return route
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if _, ok := rs.seen.Load(route); ok {
		return route
	}
	if rs.n >= rs.max {
		if !rs.warned {
			rs.warned = true
			rs.log.Warn("too many distinct routes; new ones are labelled unmatched", "max_routes", rs.max, "route", route)
		}
		return Unmatched
	}
	rs.n++
	rs.seen.Store(route, struct{}{})
	return route
}

// normalizeMethod bounds the method label: the nine RFC 9110/5789 methods
// keep their name, anything else is "_OTHER" (OpenTelemetry semconv).
func normalizeMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

// spanName follows the HTTP semantic conventions: "{method} {route}", just
// "{method}" without a route, and "HTTP" for unknown methods.
func spanName(method, route string) string {
	m := normalizeMethod(method)
	if m == "_OTHER" {
		m = "HTTP"
	}
	if route == "" || route == Unmatched {
		return m
	}
	return m + " " + route
}

func traceResponse(sc trace.SpanContext) string {
	var b [55]byte
	s := append(b[:0], "00-"...)
	s = append(s, sc.TraceID().String()...)
	s = append(s, '-')
	s = append(s, sc.SpanID().String()...)
	s = append(s, '-')
	s = append(s, sc.TraceFlags().String()...)
	return string(s)
}

// validRequestID accepts 1 to 128 characters of [A-Za-z0-9._:-], so a
// client-chosen ID can be logged and echoed without escaping.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// newRequestID returns 16 random hex digits. It need not be unguessable,
// only unique enough to find one request's log lines.
func newRequestID() string {
	var b [16]byte
	return string(strconv.AppendUint(b[:0], rand.Uint64()|1<<63, 16)) // fixed width: top bit set
}

// clientIP is the peer address without the port. Proxy headers such as
// X-Forwarded-For are not trusted here; a deployment behind a proxy should
// rewrite RemoteAddr in an outer middleware it controls.
func clientIP(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}
