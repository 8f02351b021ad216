package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"path"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/glasshouse-dev/glasshouse/app/errtrack"
	"github.com/glasshouse-dev/glasshouse/app/ratelimit"
	"github.com/glasshouse-dev/glasshouse/telemetry"
)

// chain wraps mux in the production middleware, outermost first:
//
//	recoverPanic      last resort, in case telemetry itself panics
//	compress          gzip for bodies >= 1 KiB when the client accepts it; Vary: Accept-Encoding (compress.go)
//	resolveClient     client IP behind TRUSTED_PROXIES (X-Forwarded-For, X-Real-IP) (clientip.go)
//	telemetry         span, request ID, RED metrics, access log (sees every status below),
//	                  X-Process-Time; inside compress, its ResponseWriter is the chain's only wrapper
//	recoverPanic      handler panics -> 500 problem, logged once with the stack and route
//	securityHeaders   nosniff, frame DENY, referrer and permissions policy, CSP, HSTS on TLS
//	allowHost         400 invalid_host for a Host outside ALLOWED_HOSTS, health probes included (hosts.go)
//	cors              allow-list; answers preflights
//	refuseAmbiguousFraming  400 and close for Content-Length with Transfer-Encoding (framing.go)
//	limitBody         414, 431, and 413 past MaxBodyBytes
//	limitClient       per client IP in-flight bound; rate limit per user (valid token) or client IP (edge.go)
//	limitConcurrency  fast 503 past the in-flight limit (health probes exempt)
//	readBody          reads the whole body; 408 below MinBodyRate (edge.go)
//	dispatch          non-canonical paths, 404 and 405 as problem+json; then the mux
//
// So a request takes a concurrency slot only once it has passed its
// client's limits, one client holds at most ConcurrencyLimitPerIP slots,
// and a slot held by a trickling body is freed after BodyRateGrace plus
// the time its bytes take at MinBodyRate. Authentication is per route
// (routes.go); the login handler adds its per-client and per-username
// limits.
func (s *server) chain(mux *http.ServeMux) http.Handler {
	var h http.Handler = http.HandlerFunc(s.dispatch)
	h = s.readBody(h)
	h = s.limitConcurrency(h)
	h = s.limitClient(h)
	h = s.limitBody(h)
	h = s.refuseAmbiguousFraming(h)
	h = s.corsMiddleware(h)
	h = s.allowHost(h)
	h = s.securityHeaders(h)
	h = s.recoverPanic(h)
	if s.opts.Inject != nil {
		h = s.opts.Inject(h)
	}
	h = s.tel.Middleware(routed{next: h, mux: mux}, telemetry.WithProcessTimeHeader(processTimeHeader))
	h = s.resolveClient(h)
	h = compress(h)
	return s.recoverPanic(h)
}

// processTimeHeader is set on every response to the seconds spent before
// its header was written.
const processTimeHeader = "X-Process-Time"

// routed gives telemetry.Middleware the mux's route resolution while the
// request flows through the inner middleware first.
type routed struct {
	next http.Handler
	mux  *http.ServeMux
}

func (rt routed) ServeHTTP(w http.ResponseWriter, r *http.Request) { rt.next.ServeHTTP(w, r) }

func (rt routed) Handler(r *http.Request) (http.Handler, string) { return rt.mux.Handler(r) }

// dispatch serves r with the mux, answering what the mux would answer in
// plain text (404, 405, redirects to cleaned paths) with problem+json.
func (s *server) dispatch(w http.ResponseWriter, r *http.Request) {
	// Escaping never adds or removes '/' or '.', so the decoded path is as
	// canonical as the escaped one unless it has escapes that decoding
	// loses (RawPath set), and it costs no escaping pass.
	p := r.URL.Path
	if r.URL.RawPath != "" {
		p = r.URL.EscapedPath()
	}
	if !canonicalPath(p) {
		writeProblem(w, r, Problem{Status: http.StatusNotFound, Code: "not_found", Detail: "no such route"})
		return
	}
	route := telemetry.Route(r.Context())
	if route == "" { // outside telemetry.Middleware (benchmarks of the bare chain)
		if _, p := s.mux.Handler(r); p == "" {
			route = telemetry.Unmatched
		}
	}
	if route == telemetry.Unmatched {
		s.unmatched(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// unmatched tells 405 from 404 the way the mux does, by asking it.
func (s *server) unmatched(w http.ResponseWriter, r *http.Request) {
	h, _ := s.mux.Handler(r)
	probe := &headerProbe{header: http.Header{}}
	h.ServeHTTP(probe, r)
	if probe.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", probe.header.Get("Allow"))
		writeProblem(w, r, Problem{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Detail: "method not allowed on this route; allowed: " + probe.header.Get("Allow")})
		return
	}
	writeProblem(w, r, Problem{Status: http.StatusNotFound, Code: "not_found", Detail: "no such route"})
}

// headerProbe is a ResponseWriter that keeps only the status and headers.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(code int)        { p.status = code }

// canonicalPath reports whether p is already clean (no "//", "." or ".."
// segments), the form ServeMux would otherwise redirect to.
func canonicalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	if !strings.Contains(p, "//") && !strings.Contains(p, "/.") {
		return true // nothing for path.Clean to remove
	}
	c := path.Clean(p)
	if p[len(p)-1] == '/' && c != "/" {
		c += "/"
	}
	return c == p
}

// recoverPanic turns a panic below it into a 500 problem, logged once with
// the stack, counted in app_http_panics_recovered_total, and reported to the
// error tracker (app_errors_total{error_type="panic"}, alerts). A panic with
// http.ErrAbortHandler is re-raised: it is net/http's way to abort a
// response on purpose.
func (s *server) recoverPanic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			rv := recover()
			if rv == nil {
				return
			}
			if rv == http.ErrAbortHandler {
				panic(rv)
			}
			route := telemetry.Route(r.Context())
			if route == "" {
				route = telemetry.Unmatched
			}
			s.tel.PanicRecovered(route)
			if s.opts.Errors != nil {
				// Taken here, in the deferred call, the stack still holds
				// the panicking frames (skip this function).
				s.opts.Errors.Report(errtrack.Event{Route: route, ErrorType: errtrack.TypePanic,
					Err: fmt.Errorf("panic: %v", rv), RequestID: telemetry.RequestID(r.Context()),
					TraceID: traceID(r.Context()), Stack: errtrack.Callers(1)})
			}
			s.log.LogAttrs(r.Context(), slog.LevelError, "panic recovered",
				slog.String("route", route), slog.String("err", fmt.Sprint(rv)), slog.String("stack", string(debug.Stack())))
			writeProblem(w, r, Problem{Status: http.StatusInternalServerError, Code: "internal", Detail: "internal server error"})
		}()
		next.ServeHTTP(w, r)
	})
}

// Content-Security-Policy for JSON responses: nothing may load, nothing may
// frame them. /docs sets its own, listing exactly its script and style.
const apiCSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// headerValue is a response header with a constant value.
type headerValue struct {
	key   string // canonical, as http.Header stores it
	value []string
}

// securityHeaderValues are the headers securityHeaders sets, built once:
// every response shares the value slices. That is safe because a
// handler can only replace them (Set, Del) or append to them (Add, which
// copies: each has capacity 1), never write into them.
func securityHeaderValues(tls bool) (all, api []headerValue) {
	v := func(key, value string) headerValue {
		return headerValue{http.CanonicalHeaderKey(key), []string{value}[:1:1]}
	}
	all = []headerValue{
		v("X-Content-Type-Options", "nosniff"),
		v("X-Frame-Options", "DENY"),
		v("Referrer-Policy", "no-referrer"),
		v("Permissions-Policy", "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()"),
		v("Cross-Origin-Opener-Policy", "same-origin"),
		v("Content-Security-Policy", apiCSP),
	}
	if tls {
		all = append(all, v("Strict-Transport-Security", "max-age=63072000; includeSubDomains"))
	}
	api = append(slices.Clone(all), v("Cache-Control", "no-store"))
	return all, api
}

func (s *server) securityHeaders(next http.Handler) http.Handler {
	all, api := securityHeaderValues(s.opts.TLS)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hs := all
		if strings.HasPrefix(r.URL.Path, "/api/") {
			hs = api
		}
		h := w.Header()
		for _, hv := range hs {
			h[hv.key] = hv.value
		}
		next.ServeHTTP(w, r)
	})
}

// corsMiddleware allows the configured origins (none by default). Other
// origins get no CORS headers, so browsers block them; their preflights get
// a 403 problem.
func (s *server) corsMiddleware(next http.Handler) http.Handler {
	if len(s.cors) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		h := w.Header()
		h.Add("Vary", "Origin")
		allowed := origin != "" && (s.anyCORS || s.cors[origin])
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		if !allowed {
			if preflight {
				writeProblem(w, r, Problem{Status: http.StatusForbidden, Code: "cors_origin_not_allowed",
					Detail: "this origin may not call the API"})
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if s.anyCORS {
			h.Set("Access-Control-Allow-Origin", "*")
		} else {
			h.Set("Access-Control-Allow-Origin", origin)
		}
		if preflight {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id, Traceparent, Tracestate")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers",
			"X-Request-Id, Traceresponse, X-Process-Time, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Location")
		next.ServeHTTP(w, r)
	})
}

// limitConcurrency answers 503 at once when ConcurrencyLimit requests are
// already in flight, instead of queueing them until clients time out.
// Health probes are exempt so an overloaded instance is not also killed.
func (s *server) limitConcurrency(next http.Handler) http.Handler {
	limit := int64(s.opts.ConcurrencyLimit)
	if limit <= 0 {
		return next
	}
	var inFlight atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/health") {
			next.ServeHTTP(w, r)
			return
		}
		if inFlight.Add(1) > limit {
			inFlight.Add(-1)
			s.tel.ConcurrencyRejected()
			w.Header().Set("Retry-After", "1")
			writeProblem(w, r, Problem{Status: http.StatusServiceUnavailable, Code: "overloaded",
				Detail: "the server is at its concurrency limit; retry shortly"})
			return
		}
		defer inFlight.Add(-1)
		next.ServeHTTP(w, r)
	})
}

// Request-line and header limits applied by the app, below the server's
// MaxHeaderBytes, so that oversized requests still get a problem+json
// answer. Requests beyond the server's MaxHeaderBytes are answered by
// net/http itself (plain-text 431) before any handler runs.
const (
	maxURLBytes    = 8 << 10
	maxHeaderBytes = 16 << 10
)

// limitBody rejects overlong URLs (414) and header sections (431), bodies
// declared larger than MaxBodyBytes (413) at once, and cuts off undeclared
// ones at the limit (decode then answers 413).
func (s *server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.RequestURI) > maxURLBytes {
			writeProblem(w, r, Problem{Status: http.StatusRequestURITooLong, Code: "uri_too_long",
				Detail: fmt.Sprintf("the request URI is longer than %d bytes", maxURLBytes)})
			return
		}
		if headerBytes(r.Header) > maxHeaderBytes {
			writeProblem(w, r, Problem{Status: http.StatusRequestHeaderFieldsTooLarge, Code: "headers_too_large",
				Detail: fmt.Sprintf("the request headers are larger than %d bytes", maxHeaderBytes)})
			return
		}
		if r.ContentLength > s.opts.MaxBodyBytes {
			writeProblem(w, r, Problem{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
				Detail: fmt.Sprintf("request body is larger than %d bytes", s.opts.MaxBodyBytes)})
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

func headerBytes(h http.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4 // ": " and CRLF
		}
	}
	return n
}

type ctxKey int

const userIDKey ctxKey = iota

// userID returns the authenticated caller set by requireAuth.
func userID(ctx context.Context) int64 {
	id, _ := ctx.Value(userIDKey).(int64)
	return id
}

// requireAuth accepts "Authorization: Bearer <access token>" and puts the
// user ID in the context; anything else is a 401 with WWW-Authenticate.
func (s *server) requireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if userID(r.Context()) != 0 { // verified by limitClient
			next.ServeHTTP(w, r)
			return
		}
		var auth string
		if vs := r.Header["Authorization"]; len(vs) > 0 { // canonical key: no Get
			auth = vs[0]
		}
		token, ok := bearer(auth)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="glasshouse"`)
			writeProblem(w, r, Problem{Status: http.StatusUnauthorized, Code: "unauthorized",
				Detail: "send an access token: Authorization: Bearer <token>"})
			return
		}
		id, err := s.opts.Tokens.Verify(token)
		if err != nil {
			s.log.LogAttrs(r.Context(), slog.LevelDebug, "token rejected", slog.String("err", err.Error()))
			w.Header().Set("WWW-Authenticate", `Bearer realm="glasshouse", error="invalid_token"`)
			writeProblem(w, r, Problem{Status: http.StatusUnauthorized, Code: "invalid_token",
				Detail: "the access token is invalid or expired"})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userIDKey, id)))
	})
}

// bearer extracts the token from an Authorization header value.
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// allow asks the limiter about key (which starts with "scope:"), sets the
// RateLimit-* headers, and on rejection writes the 429 and returns false.
// A zero Limit disables the check. If the limiter fails, the request is
// allowed (fail open) and the failure logged: a limiter outage must not
// become an API outage.
func (s *server) allow(w http.ResponseWriter, r *http.Request, scope, key string, l ratelimit.Limit) bool {
	if l == (ratelimit.Limit{}) {
		return true
	}
	d, err := s.opts.Limiter.Allow(r.Context(), key, l)
	if err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "rate limiter failed; allowing", slog.String("scope", scope), slog.String("err", err.Error()))
		return true
	}
	// The three values share one string and one slice array.
	var buf [64]byte
	b := strconv.AppendInt(buf[:0], int64(d.Limit), 10)
	n1 := len(b)
	b = strconv.AppendInt(b, int64(max(d.Remaining, 0)), 10)
	n2 := len(b)
	b = strconv.AppendInt(b, ceilSeconds(d.ResetAfter), 10)
	vals, hv := string(b), new([3]string)
	hv[0], hv[1], hv[2] = vals[:n1], vals[n1:n2], vals[n2:]
	h := w.Header()
	h["Ratelimit-Limit"] = hv[0:1:1] // canonical keys: RateLimit-Limit etc.
	h["Ratelimit-Remaining"] = hv[1:2:2]
	h["Ratelimit-Reset"] = hv[2:3:3]
	if d.Allowed {
		return true
	}
	route := telemetry.Route(r.Context())
	if route == "" {
		route = telemetry.RouteFromPattern(r.Pattern)
	}
	s.metrics.rateLimited(route, scope)
	if r.ContentLength != 0 && !bodyRead(r) {
		h.Set("Connection", "close") // do not wait for the body at the client's pace
	}
	h.Set("Retry-After", strconv.FormatInt(max(ceilSeconds(d.RetryAfter), 1), 10))
	writeProblem(w, r, Problem{Status: http.StatusTooManyRequests, Code: "rate_limited",
		Detail: fmt.Sprintf("too many requests; retry in %d s", max(ceilSeconds(d.RetryAfter), 1))})
	return false
}

func ceilSeconds(d time.Duration) int64 { return int64(math.Ceil(d.Seconds())) }
