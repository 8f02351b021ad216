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
	"time"

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
//
// The ResponseWriter it hands down is the only wrapper a service needs:
// it keeps http.Hijacker, io.ReaderFrom, http.Flusher and Unwrap, so
// anything that must act when the header is written (such as
// WithProcessTimeHeader) belongs here rather than in a second wrapper
// that would hide them.
func (t *Telemetry) Middleware(mux Router, opts ...MiddlewareOption) http.Handler {
	var o middlewareOptions
	for _, opt := range opts {
		opt(&o)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.serve(w, r, mux, &o)
	})
}

// MiddlewareOption configures one Middleware.
type MiddlewareOption func(*middlewareOptions)

type middlewareOptions struct {
	processTimeHeader string // canonical; "" sets none
}

// WithProcessTimeHeader makes Middleware set the response header name
// (such as "X-Process-Time") on every response to the seconds, with
// microsecond resolution, from the start of the request to the moment its
// header is written. Without it no such header is set.
func WithProcessTimeHeader(name string) MiddlewareOption {
	return func(o *middlewareOptions) { o.processTimeHeader = http.CanonicalHeaderKey(name) }
}

// serverSpan is the start option of every server span, built once.
var serverSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}

// requestState is everything Middleware keeps per request, in one
// allocation: the request context, the ResponseWriter wrapper and the
// response header values it sets.
type requestState struct {
	ctx  requestCtx
	info requestInfo
	rw   responseWriter
	hdr  [3]string // X-Request-Id, Traceresponse, the process-time header
}

// requestCtx is the request's context: the span's context plus the
// requestInfo, without a context.WithValue allocation.
type requestCtx struct {
	context.Context
	info *requestInfo
}

func (c *requestCtx) Value(key any) any {
	if key == any(requestInfoKey) {
		return c.info
	}
	return c.Context.Value(key)
}

// attrPool holds the arrays the span attributes are gathered in before
// SetAttributes copies them into the span.
var attrPool = sync.Pool{New: func() any { return new([maxRequestAttrs]attribute.KeyValue) }}

func (t *Telemetry) serve(w http.ResponseWriter, r *http.Request, mux Router, o *middlewareOptions) {
	start := t.now()
	_, pattern := mux.Handler(r)
	re := t.routes.lookup(pattern)
	mi := methodIndex(r.Method)

	ctx := r.Context()
	opts := serverSpan
	if hasTraceHeaders(r.Header) {
		incoming := t.propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
		if !t.distrust {
			ctx = incoming
		} else if sc := trace.SpanContextFromContext(incoming); sc.IsValid() {
			// An edge service does not let a client choose its trace
			// ID or sampling decision (nor its baggage): the span starts
			// a new trace that links the caller's.
			opts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithNewRoot(),
				trace.WithLinks(trace.Link{SpanContext: sc})}
		}
	}
	ctx, span := t.Tracer.Start(ctx, re.spanNames[mi], opts...)
	sc := span.SpanContext()

	st := &requestState{info: requestInfo{route: re.route, id: RequestID(ctx)}}
	st.rw.ResponseWriter = w
	if o.processTimeHeader != "" {
		st.rw.timeHeader, st.rw.now, st.rw.start, st.rw.timeValue = o.processTimeHeader, t.now, start, st.hdr[2:3:3]
	}
	info := &st.info
	generateID := false
	if info.id == "" {
		info.id = firstValue(r.Header, RequestIDHeader)
		generateID = !validRequestID(info.id)
	}
	h := w.Header()
	if sc.IsValid() {
		// One string holds the traceresponse value, the hex IDs (its
		// substrings) and a generated request ID.
		tid, sid := sc.TraceID(), sc.SpanID()
		var buf [traceresponseLen + requestIDLen]byte
		b := append(buf[:0], "00-"...)
		b = appendHex(b, tid[:])
		b = append(b, '-')
		b = appendHex(b, sid[:])
		b = append(b, '-')
		f := byte(sc.TraceFlags())
		b = append(b, hexDigits[f>>4], hexDigits[f&0xF])
		if generateID {
			b = appendRequestID(b)
		}
		ids := string(b)
		info.spanID = sid
		info.traceHex, info.spanHex = ids[3:35], ids[36:52]
		st.hdr[1] = ids[:traceresponseLen]
		h[TraceResponseHeader] = st.hdr[1:2:2]
		if generateID {
			info.id = ids[traceresponseLen:]
		}
	} else if generateID {
		info.id = newRequestID()
	}
	st.hdr[0] = info.id
	h[RequestIDHeader] = st.hdr[0:1:1]
	st.ctx = requestCtx{Context: ctx, info: info}
	ctx = &st.ctx

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
				span.SetStatus(codes.Error, http.StatusText(code))
			}
			attrs := attrPool.Get().(*[maxRequestAttrs]attribute.KeyValue)
			span.SetAttributes(requestAttrs(attrs[:0], r, mi, re, code)...)
			clear(attrs[:])
			attrPool.Put(attrs)
		}
		span.End()

		method := methodLabels[mi]
		obs := t.metrics.observers(method, re.route, code)
		if sc.IsSampled() && obs.exemplarDue(elapsed.Seconds(), end) {
			obs.duration.(prometheus.ExemplarObserver).ObserveWithExemplar(elapsed.Seconds(), prometheus.Labels{
				"trace_id": info.traceHex,
				"span_id":  info.spanHex,
			})
		} else {
			obs.duration.Observe(elapsed.Seconds())
		}
		obs.size.Observe(float64(st.rw.bytes))
		if t.accessLog {
			if !t.realClock {
				end = time.Now() // the record's time is the wall clock's, as slog's
			}
			a := accessRecord{
				time:       end,
				method:     r.Method,
				route:      re.route,
				path:       r.URL.Path,
				status:     code,
				durationMS: float64(elapsed.Microseconds()) / 1000,
				bytes:      st.rw.bytes,
				clientIP:   ClientIP(r),
				userAgent:  firstValue(r.Header, "User-Agent"),
				requestID:  info.id,
			}
			if sc.IsValid() {
				a.traceID, a.spanID = info.traceHex, info.spanHex
			}
			logAccess(ctx, t.Logger.Handler(), &a)
		}
		if rv != nil {
			panic(rv)
		}
	}()
	mux.ServeHTTP(st.rw.wrap(), r.WithContext(ctx))
	completed = true
	if st.rw.status == 0 && st.rw.timeHeader != "" {
		// Nothing was written: net/http will send 200 once the handler
		// returns; send it now so that it carries the header.
		st.rw.WriteHeader(http.StatusOK)
	}
}

const (
	traceresponseLen = len("00-") + 32 + 1 + 16 + 1 + 2
	requestIDLen     = 16
)

// firstValue is h.Get(key) for a key already in canonical form, without
// canonicalising it again.
func firstValue(h http.Header, key string) string {
	if vs := h[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// hasTraceHeaders reports whether extraction can find anything, sparing
// the propagators' header canonicalisation on requests without context.
func hasTraceHeaders(h http.Header) bool {
	return len(h["Traceparent"]) > 0 || len(h["Baggage"]) > 0
}

// maxRequestAttrs bounds what requestAttrs appends.
const maxRequestAttrs = 13

// requestAttrs appends the HTTP server span attributes (semantic
// conventions v1.43) to attrs: all of them at once, when the response is
// known, so that the span copies them in one allocation. client.address is
// ClientIP(r): the TCP peer unless a proxy-aware resolver set another with
// WithClientIP, in which case network.peer.address keeps the peer.
func requestAttrs(attrs []attribute.KeyValue, r *http.Request, mi int, re *routeEntry, code int) []attribute.KeyValue {
	if mi == methodOther {
		attrs = append(attrs, semconv.HTTPRequestMethodOther, semconv.HTTPRequestMethodOriginal(r.Method))
	} else {
		attrs = append(attrs, methodAttrs[mi])
	}
	if r.TLS != nil {
		attrs = append(attrs, schemeHTTPS)
	} else {
		attrs = append(attrs, schemeHTTP)
	}
	attrs = append(attrs, semconv.URLPath(r.URL.Path))
	if re.route != Unmatched {
		attrs = append(attrs, re.routeAttr)
	}
	if host, port := splitHostPort(r.Host); host != "" {
		attrs = append(attrs, semconv.ServerAddress(host))
		if port > 0 {
			attrs = append(attrs, semconv.ServerPort(port))
		}
	}
	// client.address is the peer unless a resolver found the client
	// behind a proxy; network.peer.address would otherwise repeat it.
	peer, _ := splitHostPort(r.RemoteAddr)
	if client, ok := r.Context().Value(clientIPKey{}).(string); ok && client != peer {
		attrs = append(attrs, semconv.ClientAddress(client))
		if peer != "" {
			attrs = append(attrs, semconv.NetworkPeerAddress(peer))
		}
	} else if peer != "" {
		attrs = append(attrs, semconv.ClientAddress(peer))
	}
	if ua := firstValue(r.Header, "User-Agent"); ua != "" {
		attrs = append(attrs, semconv.UserAgentOriginal(ua))
	}
	switch r.ProtoMajor {
	case 1:
		if r.ProtoMinor == 0 {
			attrs = append(attrs, protocol10)
		} else {
			attrs = append(attrs, protocol11)
		}
	case 2:
		attrs = append(attrs, protocol2)
	case 3:
		attrs = append(attrs, protocol3)
	}
	attrs = append(attrs, semconv.HTTPResponseStatusCode(code))
	if code >= 500 {
		attrs = append(attrs, semconv.ErrorTypeKey.String(strconv.Itoa(code)))
	}
	return attrs
}

// Attributes that are the same for many requests, built once.
var (
	schemeHTTP  = semconv.URLScheme("http")
	schemeHTTPS = semconv.URLScheme("https")
	protocol10  = semconv.NetworkProtocolVersion("1.0")
	protocol11  = semconv.NetworkProtocolVersion("1.1")
	protocol2   = semconv.NetworkProtocolVersion("2")
	protocol3   = semconv.NetworkProtocolVersion("3")
)

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

	// With WithProcessTimeHeader: the header's name, the clock, the
	// request's start and the header's value slice.
	timeHeader string
	now        func() time.Time
	start      time.Time
	timeValue  []string
}

// begin records the final status just before the header is written and
// sets the process-time header, if any.
func (rw *responseWriter) begin(code int) {
	rw.status = code
	if rw.timeHeader != "" {
		var buf [32]byte
		rw.timeValue[0] = string(strconv.AppendFloat(buf[:0], rw.now().Sub(rw.start).Seconds(), 'f', 6, 64))
		rw.Header()[rw.timeHeader] = rw.timeValue
	}
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
	if rw.status == 0 {
		switch {
		case code >= 200:
			rw.begin(code)
		case code == http.StatusSwitchingProtocols:
			rw.status = code
		}
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *responseWriter) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.begin(http.StatusOK)
	}
	n, err := rw.ResponseWriter.Write(b)
	rw.bytes += int64(n)
	return n, err
}

func (rw *responseWriter) WriteString(s string) (int, error) {
	if rw.status == 0 {
		rw.begin(http.StatusOK)
	}
	n, err := io.WriteString(rw.ResponseWriter, s)
	rw.bytes += int64(n)
	return n, err
}

func (rw *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if rw.status == 0 {
		rw.begin(http.StatusOK)
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
		rw.begin(http.StatusOK)
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

// RouteFromPattern turns a ServeMux pattern (Request.Pattern) into the
// route label Middleware uses: "GET /api/v1/items/{id}" ->
// "/api/v1/items/{id}", "" (no pattern matched) -> Unmatched.
func RouteFromPattern(p string) string {
	if p == "" {
		return Unmatched
	}
	if i := strings.IndexAny(p, " \t"); i >= 0 {
		p = strings.TrimLeft(p[i:], " \t")
	}
	return p
}

// routeEntry is what Middleware needs per route, computed once: the label,
// the span name for each method and the http.route attribute.
type routeEntry struct {
	route     string
	spanNames [methodOther + 1]string // by methodIndex
	routeAttr attribute.KeyValue
}

func newRouteEntry(route string) *routeEntry {
	e := &routeEntry{route: route, routeAttr: semconv.HTTPRoute(route)}
	for i, m := range methodLabels {
		e.spanNames[i] = spanName(m, route)
	}
	return e
}

// routeSet bounds the route label whatever the Router returns. ServeMux
// returns registered patterns, except for one corner: a CONNECT request
// redirected to a trailing-slash pattern reports the redirect target path.
// After max distinct values every new one is recorded as "unmatched" and a
// warning is logged once.
type routeSet struct {
	max       int
	unmatched *routeEntry
	log       *slog.Logger

	// byPattern caches lookup for patterns whose route was accepted; at
	// most maxPatterns of them, so it stays bounded too.
	byPattern   sync.Map // pattern -> *routeEntry
	maxPatterns int

	mu       sync.Mutex // guards the rest
	routes   map[string]*routeEntry
	patterns int
	warned   bool
}

func newRouteSet(max int, log *slog.Logger) *routeSet {
	return &routeSet{
		max:         max,
		maxPatterns: 4 * max,
		unmatched:   newRouteEntry(Unmatched),
		log:         log,
		routes:      make(map[string]*routeEntry),
	}
}

// lookup returns the entry of the route of a ServeMux pattern ("" when
// nothing matched).
func (rs *routeSet) lookup(pattern string) *routeEntry {
	if pattern == "" {
		return rs.unmatched
	}
	if e, ok := rs.byPattern.Load(pattern); ok {
		return e.(*routeEntry)
	}
	route := RouteFromPattern(pattern)
	if route == Unmatched {
		return rs.unmatched
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	e, ok := rs.routes[route]
	if !ok {
		if len(rs.routes) >= rs.max {
			if !rs.warned {
				rs.warned = true
				rs.log.Warn("too many distinct routes; new ones are labelled unmatched", "max_routes", rs.max, "route", route)
			}
			return rs.unmatched
		}
		e = newRouteEntry(route)
		rs.routes[route] = e
	}
	if rs.patterns < rs.maxPatterns {
		if _, loaded := rs.byPattern.LoadOrStore(pattern, e); !loaded {
			rs.patterns++
		}
	}
	return e
}

// methodLabels are the method label values by methodIndex: the nine
// RFC 9110/5789 methods, then "_OTHER" (OpenTelemetry semconv).
var methodLabels = [...]string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace, "_OTHER",
}

// methodOther is the methodIndex of every method not in methodLabels.
const methodOther = len(methodLabels) - 1

// methodAttrs are the http.request.method attributes by methodIndex.
var methodAttrs = func() (a [methodOther]attribute.KeyValue) {
	for i := range a {
		a[i] = semconv.HTTPRequestMethodKey.String(methodLabels[i])
	}
	return a
}()

func methodIndex(m string) int {
	switch m {
	case http.MethodGet:
		return 0
	case http.MethodHead:
		return 1
	case http.MethodPost:
		return 2
	case http.MethodPut:
		return 3
	case http.MethodPatch:
		return 4
	case http.MethodDelete:
		return 5
	case http.MethodConnect:
		return 6
	case http.MethodOptions:
		return 7
	case http.MethodTrace:
		return 8
	}
	return methodOther
}

// normalizeMethod bounds the method label: the nine RFC 9110/5789 methods
// keep their name, anything else is "_OTHER" (OpenTelemetry semconv).
func normalizeMethod(m string) string { return methodLabels[methodIndex(m)] }

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
	var b [requestIDLen]byte
	return string(appendRequestID(b[:0]))
}

// appendRequestID appends a new request ID to b.
func appendRequestID(b []byte) []byte {
	return strconv.AppendUint(b, rand.Uint64()|1<<63, 16) // fixed width: top bit set
}

// clientIPKey is the context key of WithClientIP.
type clientIPKey struct{}

// WithClientIP returns ctx carrying ip as the request's client address.
// A middleware outside Middleware that knows which proxies to trust sets
// it, so the access log's client_ip, the span's client.address and the
// application's own uses of ClientIP agree on one resolution; telemetry
// itself never reads proxy headers.
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, clientIPKey{}, ip)
}

// ClientIP returns r's client address: the one set with WithClientIP,
// else the TCP peer's host without the port.
func ClientIP(r *http.Request) string {
	if ip, ok := r.Context().Value(clientIPKey{}).(string); ok {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
