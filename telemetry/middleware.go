package telemetry

import (
	"context"
	"fmt"
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

// serverSpan is the start option of every server span, built once, and
// serverSpanConfig the configuration it makes.
var (
	serverSpan       = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	serverSpanConfig = trace.NewSpanStartConfig(serverSpan...)
)

// requestState is everything Middleware keeps per request, in one
// allocation: the request context, the ResponseWriter wrapper and the
// response header values it sets.
type requestState struct {
	ctx  requestCtx
	info requestInfo
	rw   responseWriter
	hdr  [3]string // X-Request-Id, Traceresponse, the process-time header
}

// tracedRequestState is requestState with the server span, when the
// tracer is an idTracer.
type tracedRequestState struct {
	requestState
	span idSpan
}

// requestCtx is the request's context: the span's context plus the
// requestInfo (and the idTracer's span), without a context.WithValue
// allocation.
type requestCtx struct {
	context.Context
	info *requestInfo
	span *idSpan
}

func (c *requestCtx) Value(key any) any {
	if key == any(requestInfoKey) {
		return c.info
	}
	if c.span != nil && key == spanKey {
		return trace.Span(c.span)
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
	opts, cfg := serverSpan, &serverSpanConfig
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
			c := trace.NewSpanStartConfig(opts...)
			cfg = &c
		}
	}
	var st *requestState
	var span trace.Span
	if it, ok := t.Tracer.(*idTracer); ok && spanKey != nil {
		// The span shares the request's allocation and the request
		// context answers spanKey with it: no allocation for either.
		ts := &tracedRequestState{}
		st = &ts.requestState
		ctx = it.start(ctx, re.spanNames[mi], cfg, &ts.span)
		span, st.ctx.span = &ts.span, &ts.span
	} else {
		st = &requestState{}
		ctx, span = t.Tracer.Start(ctx, re.spanNames[mi], opts...)
	}
	sc := span.SpanContext()

	st.info = requestInfo{route: re.route, id: RequestID(ctx)}
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
	st.ctx.Context, st.ctx.info = ctx, info
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
				durationUS: elapsed.Microseconds(),
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
