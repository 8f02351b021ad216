package telemetry

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
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

// Middleware wraps mux with, in order: W3C trace-context and baggage
// extraction and a server span named "<METHOD> <route>" with the HTTP
// semantic-convention attributes (http.route included); the request ID
// (X-Request-Id in and out); the Traceresponse header; RED metrics labelled
// by method, route template and status code, with trace_id/span_id
// exemplars on sampled requests; and one access-log record. The route is
// resolved once, before the handler runs, with mux.Handler(r); unmatched
// paths share route="unmatched" and unknown methods share method="_OTHER".
// A panic escaping mux is recorded as a 500 on the span, metrics and log,
// then re-raised for net/http (or an outer recoverer) to handle.
//
// The server span is built here rather than by otelhttp: the same
// attributes, one ResponseWriter wrapper instead of two, no OTel metric
// instruments (Prometheus has the RED metrics), and the name is known
// before the span starts; see BenchmarkMiddleware.
func (t *Telemetry) Middleware(mux Router) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.serve(w, r, mux)
	})
}

// serverSpan is the start option of every server span, built once.
var serverSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}

// requestState is everything Middleware keeps per request, in one
// allocation: the context value and the ResponseWriter wrapper.
type requestState struct {
	info requestInfo
	rw   responseWriter
}

func (t *Telemetry) serve(w http.ResponseWriter, r *http.Request, mux Router) {
	start := t.now()
	_, pattern := mux.Handler(r)
	route := t.routes.bound(routeFromPattern(pattern))
	method := normalizeMethod(r.Method)

	ctx := r.Context()
	if hasTraceHeaders(r.Header) {
		ctx = t.propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	ctx, span := t.Tracer.Start(ctx, spanName(r.Method, route), serverSpan...)
	sc := span.SpanContext()
	if span.IsRecording() {
		span.SetAttributes(requestAttrs(r, method, route)...)
	}

	st := &requestState{info: requestInfo{route: route, id: RequestID(ctx)}}
	st.rw.ResponseWriter = w
	info := &st.info
	if info.id == "" {
		info.id = r.Header.Get(RequestIDHeader)
		if !validRequestID(info.id) {
			info.id = newRequestID()
		}
	}
	h := w.Header()
	h[RequestIDHeader] = []string{info.id}
	if sc.IsValid() {
		info.spanID = sc.SpanID()
		info.traceHex, info.spanHex = sc.TraceID().String(), sc.SpanID().String()
		h[TraceResponseHeader] = []string{"00-" + info.traceHex + "-" + info.spanHex + "-" + sc.TraceFlags().String()}
	}
	ctx = context.WithValue(ctx, requestInfoKey, info)

	t.metrics.active.Inc()
	completed := false
	defer func() {
		t.metrics.active.Dec()
		code := st.rw.status
		if code == 0 {
			code = http.StatusOK // net/http's default when nothing was written
		}
		var rv any
		if !completed {
			rv = recover()
			code = http.StatusInternalServerError
			span.RecordError(fmt.Errorf("panic: %v", rv), trace.WithStackTrace(true))
		}
		end := t.now()
		elapsed := end.Sub(start)
		if span.IsRecording() {
			if code >= 500 {
				// Server spans mark only 5xx as errors; 4xx are the client's.
				span.SetAttributes(semconv.HTTPResponseStatusCode(code), semconv.ErrorTypeKey.String(strconv.Itoa(code)))
				span.SetStatus(codes.Error, http.StatusText(code))
			} else {
				span.SetAttributes(semconv.HTTPResponseStatusCode(code))
			}
		}
		span.End()

		obs := t.metrics.observers(method, route, code)
		if sc.IsSampled() && obs.exemplarDue(elapsed.Seconds(), end) {
			obs.duration.(prometheus.ExemplarObserver).ObserveWithExemplar(elapsed.Seconds(), prometheus.Labels{
				"trace_id": info.traceHex,
				"span_id":  info.spanHex,
			})
		} else {
			obs.duration.Observe(elapsed.Seconds())
		}
		obs.size.Observe(float64(st.rw.bytes))
		if t.accessLog && t.Logger.Enabled(ctx, slog.LevelInfo) {
			t.Logger.LogAttrs(ctx, slog.LevelInfo, "http request",
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.String("path", r.URL.Path),
				slog.Int("status", code),
				slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
				slog.Int64("bytes", st.rw.bytes),
				slog.String("client_ip", clientIP(r.RemoteAddr)),
				slog.String("user_agent", r.UserAgent()),
			)
		}
		if rv != nil {
			panic(rv)
		}
	}()
	mux.ServeHTTP(st.rw.wrap(), r.WithContext(ctx))
	completed = true
}

// hasTraceHeaders reports whether extraction can find anything, sparing
// the propagators' header canonicalisation on requests without context.
func hasTraceHeaders(h http.Header) bool {
	return len(h["Traceparent"]) > 0 || len(h["Baggage"]) > 0
}

// requestAttrs are the HTTP server span attributes known at the start
// (semantic conventions v1.43). client.address is the TCP peer:
// X-Forwarded-For is not trusted here.
func requestAttrs(r *http.Request, method, route string) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 12)
	if method == "_OTHER" {
		attrs = append(attrs, semconv.HTTPRequestMethodOther, semconv.HTTPRequestMethodOriginal(r.Method))
	} else {
		attrs = append(attrs, semconv.HTTPRequestMethodKey.String(method))
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	attrs = append(attrs, semconv.URLScheme(scheme), semconv.URLPath(r.URL.Path))
	if route != Unmatched {
		attrs = append(attrs, semconv.HTTPRoute(route))
	}
	if host, port := splitHostPort(r.Host); host != "" {
		attrs = append(attrs, semconv.ServerAddress(host))
		if port > 0 {
			attrs = append(attrs, semconv.ServerPort(port))
		}
	}
	// client.address is the peer; network.peer.* would repeat it.
	if peer, _ := splitHostPort(r.RemoteAddr); peer != "" {
		attrs = append(attrs, semconv.ClientAddress(peer))
	}
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, semconv.UserAgentOriginal(ua))
	}
	switch r.ProtoMajor {
	case 1:
		if r.ProtoMinor == 0 {
			attrs = append(attrs, semconv.NetworkProtocolVersion("1.0"))
		} else {
			attrs = append(attrs, semconv.NetworkProtocolVersion("1.1"))
		}
	case 2:
		attrs = append(attrs, semconv.NetworkProtocolVersion("2"))
	case 3:
		attrs = append(attrs, semconv.NetworkProtocolVersion("3"))
	}
	return attrs
}

// splitHostPort splits "host:port", "[v6]:port" or a bare host; port is
// -1 when absent or malformed.
func splitHostPort(hp string) (string, int) {
	if strings.IndexByte(hp, ':') < 0 {
		return hp, -1 // the common "example.com": spare SplitHostPort's error
	}
	host, ps, err := net.SplitHostPort(hp)
	if err != nil {
		return strings.Trim(hp, "[]"), -1
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port <= 0 || port > 65535 {
		return host, -1
	}
	return host, port
}

// responseWriter records the final status code and the body bytes
// written. It keeps the optional interfaces handlers rely on: Flush
// (a no-op when the connection cannot flush), io.ReaderFrom and
// io.StringWriter (delegated when the underlying writer has them), Hijack
// (through hijackWriter, only when the underlying writer can), and Unwrap
// for http.ResponseController.
type responseWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

// hijackWriter adds http.Hijacker for writers that support it (HTTP/1).
type hijackWriter struct{ *responseWriter }

func (rw *responseWriter) wrap() http.ResponseWriter {
	if _, ok := rw.ResponseWriter.(http.Hijacker); ok {
		return hijackWriter{rw}
	}
	return rw
}

func (rw *responseWriter) WriteHeader(code int) {
	// 1xx responses (103 Early Hints) are not the final status.
	if rw.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		rw.status = code
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *responseWriter) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	n, err := rw.ResponseWriter.Write(b)
	rw.bytes += int64(n)
	return n, err
}

func (rw *responseWriter) WriteString(s string) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	n, err := io.WriteString(rw.ResponseWriter, s)
	rw.bytes += int64(n)
	return n, err
}

func (rw *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := rw.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src) // sendfile/splice on a TCP connection
	} else {
		n, err = io.Copy(writerOnly{rw.ResponseWriter}, src)
	}
	rw.bytes += n
	return n, err
}

func (rw *responseWriter) Flush() {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	_ = http.NewResponseController(rw.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// Hijack hands the connection over; the request is recorded with status
// 101 unless a status was written before.
func (hw hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := hw.ResponseWriter.(http.Hijacker).Hijack()
	if err == nil && hw.status == 0 {
		hw.status = http.StatusSwitchingProtocols
	}
	return conn, brw, err
}

// writerOnly hides ReadFrom so io.Copy does not recurse into it.
type writerOnly struct{ io.Writer }

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
