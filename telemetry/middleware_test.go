package telemetry

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func TestRouteFromPattern(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", Unmatched},
		{"/health", "/health"},
		{"GET /api/v1/items/{id}", "/api/v1/items/{id}"},
		{"DELETE   /api/v1/items/{id}", "/api/v1/items/{id}"},
		{"GET example.com/x/{$}", "example.com/x/{$}"},
	} {
		if got := RouteFromPattern(tc.in); got != tc.want {
			t.Errorf("RouteFromPattern(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNormalizeMethodAndSpanName(t *testing.T) {
	for _, tc := range []struct{ method, route, label, span string }{
		{"GET", "/items/{id}", "GET", "GET /items/{id}"},
		{"PATCH", "/items/{id}", "PATCH", "PATCH /items/{id}"},
		{"get", "/items/{id}", "_OTHER", "HTTP /items/{id}"},
		{"BREW", Unmatched, "_OTHER", "HTTP"},
		{"POST", Unmatched, "POST", "POST"},
	} {
		if got := normalizeMethod(tc.method); got != tc.label {
			t.Errorf("normalizeMethod(%q) = %q, want %q", tc.method, got, tc.label)
		}
		if got := spanName(tc.method, tc.route); got != tc.span {
			t.Errorf("spanName(%q, %q) = %q, want %q", tc.method, tc.route, got, tc.span)
		}
	}
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestServerSpan(t *testing.T) {
	e := newTestEnv(t, nil)
	rec := e.do(t, http.MethodGet, "/items/7")
	spans := e.spans.Ended()
	server := spanNamed(t, spans, "GET /items/{id}")
	child := spanNamed(t, spans, "db.query")

	if server.SpanKind() != trace.SpanKindServer {
		t.Errorf("server span kind %v", server.SpanKind())
	}
	a := attrs(server)
	for k, want := range map[attribute.Key]string{
		"http.route":                "/items/{id}",
		"http.request.method":       "GET",
		"url.path":                  "/items/7",
		"http.response.status_code": "200",
	} {
		if got := a[k].String(); got != want {
			t.Errorf("server span %s = %q, want %q", k, got, want)
		}
	}
	if child.Parent().SpanID() != server.SpanContext().SpanID() {
		t.Errorf("db.query parent %s, want server span %s", child.Parent().SpanID(), server.SpanContext().SpanID())
	}
	if child.SpanKind() != trace.SpanKindInternal {
		t.Errorf("child span kind %v", child.SpanKind())
	}
	want := "00-" + server.SpanContext().TraceID().String() + "-" + server.SpanContext().SpanID().String() + "-01"
	if got := rec.Header().Get("traceresponse"); got != want {
		t.Errorf("traceresponse %q, want %q", got, want)
	}
}

func TestServerSpanUnmatchedAndError(t *testing.T) {
	e := newTestEnv(t, nil)
	e.do(t, http.MethodGet, "/no/such/thing")
	e.do(t, "BREW", "/coffee")
	e.do(t, http.MethodGet, "/fail")
	spans := e.spans.Ended()

	get := spanNamed(t, spans, "GET")
	if _, ok := attrs(get)["http.route"]; ok {
		t.Error("unmatched request has an http.route attribute")
	}
	brew := spanNamed(t, spans, "HTTP")
	if got := attrs(brew)["http.request.method"].String(); got != "_OTHER" {
		t.Errorf("unknown method recorded as %q, want _OTHER", got)
	}
	fail := spanNamed(t, spans, "GET /fail")
	if fail.Status().Code != codes.Error {
		t.Errorf("500 span status %v, want Error", fail.Status())
	}
}

func TestIncomingTraceContext(t *testing.T) {
	e := newTestEnv(t, nil)
	const traceID, parentID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	var gotBaggage string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /b", func(w http.ResponseWriter, r *http.Request) {
		gotBaggage = baggage.FromContext(r.Context()).Member("tenant").Value()
	})
	h := e.tel.Middleware(mux)
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/b", nil)
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	req.Header.Set("baggage", "tenant=acme")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	s := spanNamed(t, e.spans.Ended(), "GET /b")
	if got := s.SpanContext().TraceID().String(); got != traceID {
		t.Errorf("trace ID %s, want the incoming %s", got, traceID)
	}
	if got := s.Parent().SpanID().String(); got != parentID {
		t.Errorf("parent span %s, want %s", got, parentID)
	}
	if !strings.HasPrefix(rec.Header().Get(TraceResponseHeader), "00-"+traceID+"-") {
		t.Errorf("traceresponse %q does not carry trace %s", rec.Header().Get(TraceResponseHeader), traceID)
	}
	if gotBaggage != "acme" {
		t.Errorf("baggage tenant = %q, want acme", gotBaggage)
	}
}

// TestDistrustIncomingTrace: with OTEL_TRUST_INCOMING_TRACE=false the
// server span starts a new trace (its own sampling decision, no baggage)
// and links the caller's span instead of joining its trace.
func TestDistrustIncomingTrace(t *testing.T) {
	e := newTestEnv(t, envMap("OTEL_TRUST_INCOMING_TRACE", "false"))
	const traceID, parentID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	var gotBaggage string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /b", func(w http.ResponseWriter, r *http.Request) {
		gotBaggage = baggage.FromContext(r.Context()).Member("tenant").Value()
	})
	h := e.tel.Middleware(mux)
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/b", nil)
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-00") // not sampled: must not decide for us
	req.Header.Set("baggage", "tenant=acme")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	s := spanNamed(t, e.spans.Ended(), "GET /b")
	if got := s.SpanContext().TraceID().String(); got == traceID || !s.SpanContext().IsValid() {
		t.Errorf("trace ID %s, want a new one", got)
	}
	if s.Parent().IsValid() {
		t.Errorf("parent %v, want a root span", s.Parent())
	}
	if links := s.Links(); len(links) != 1 || links[0].SpanContext.TraceID().String() != traceID || links[0].SpanContext.SpanID().String() != parentID {
		t.Errorf("links %+v, want one to %s/%s", links, traceID, parentID)
	}
	if gotBaggage != "" {
		t.Errorf("baggage tenant = %q, want none from an untrusted caller", gotBaggage)
	}
	if strings.Contains(rec.Header().Get(TraceResponseHeader), traceID) {
		t.Errorf("traceresponse %q carries the caller's trace", rec.Header().Get(TraceResponseHeader))
	}
}

func TestRequestID(t *testing.T) {
	e := newTestEnv(t, nil)
	hex16 := regexp.MustCompile(`^[0-9a-f]{16}$`)

	if got := e.do(t, http.MethodGet, "/items/1", RequestIDHeader, "abc-123_X.y:z").Header().Get(RequestIDHeader); got != "abc-123_X.y:z" {
		t.Errorf("well-formed incoming ID not kept: got %q", got)
	}
	for _, bad := range []string{"", "has space", "quote\"", strings.Repeat("a", 129), "ünïcode"} {
		got := e.do(t, http.MethodGet, "/items/1", RequestIDHeader, bad).Header().Get(RequestIDHeader)
		if !hex16.MatchString(got) {
			t.Errorf("incoming ID %q: response ID %q, want 16 generated hex digits", bad, got)
		}
	}
	a := e.do(t, http.MethodGet, "/items/1").Header().Get(RequestIDHeader)
	b := e.do(t, http.MethodGet, "/items/1").Header().Get(RequestIDHeader)
	if a == b {
		t.Errorf("two requests share generated ID %q", a)
	}

	// An outer middleware that already chose an ID wins.
	outer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.handler.ServeHTTP(w, r.WithContext(WithRequestID(r.Context(), "from-outer")))
	})
	rec := httptest.NewRecorder()
	outer.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/items/1", nil))
	if got := rec.Header().Get(RequestIDHeader); got != "from-outer" {
		t.Errorf("outer ID replaced: got %q", got)
	}
	if RequestID(context.Background()) != "" || Route(context.Background()) != "" {
		t.Error("empty context yields a request ID or route")
	}
}

func TestRouteInContext(t *testing.T) {
	e := newTestEnv(t, nil)
	var got []string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /r/{id}", func(w http.ResponseWriter, r *http.Request) { got = append(got, Route(r.Context())) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { got = append(got, Route(r.Context())) })
	h := e.tel.Middleware(mux)
	for _, p := range []string{"/r/1", "/other"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(t.Context(), http.MethodGet, p, nil))
	}
	if want := []string{"/r/{id}", "/"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Route(ctx) = %q, want %q", got, want)
	}
}

func TestPanicIsRecordedAndReraised(t *testing.T) {
	e := newTestEnv(t, nil)
	func() {
		defer func() {
			if v := recover(); v != "handler bug" {
				t.Errorf("recovered %v, want the handler's panic re-raised", v)
			}
		}()
		e.do(t, http.MethodGet, "/panic")
		t.Error("middleware swallowed the panic")
	}()
	body := scrape(t, e.tel, "")
	if !strings.Contains(body, `http_server_request_duration_seconds_count{code="500",method="GET",route="/panic"} 1`) {
		t.Error("panicking request not counted as a 500")
	}
	if !strings.Contains(body, "http_server_active_requests 0") {
		t.Error("active requests not decremented after a panic")
	}
	s := spanNamed(t, e.spans.Ended(), "GET /panic")
	if s.Status().Code != codes.Error {
		t.Errorf("span status %v, want Error", s.Status())
	}
	if len(s.Events()) == 0 || s.Events()[0].Name != "exception" {
		t.Errorf("span events %v, want an exception event", s.Events())
	}
	var access map[string]any
	for _, l := range logLines(t, e.logs.String()) {
		if l["msg"] == "http request" {
			access = l
		}
	}
	if access == nil || access["status"] != float64(500) {
		t.Errorf("access log %v, want status 500", access)
	}
}

func TestStatusAndBytes(t *testing.T) {
	e := newTestEnv(t, nil)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /nothing", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /created", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		w.WriteHeader(http.StatusAccepted) // superfluous, ignored by net/http too
		_, _ = w.Write([]byte("abc"))
	})
	mux.HandleFunc("GET /hints", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusEarlyHints)
		_, _ = io.WriteString(w, "hello") // implicit 200
	})
	mux.HandleFunc("GET /copy", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Flusher); !ok {
			t.Error("wrapped writer lost http.Flusher")
		}
		_, _ = io.Copy(w, strings.NewReader(strings.Repeat("z", 1000))) // ReadFrom on a real connection
	})
	done := make(chan struct{}, 1)
	srv := httptest.NewUnstartedServer(signalDone(e.tel.Middleware(mux), done))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the superfluous WriteHeader is on purpose
	srv.Start()
	t.Cleanup(srv.Close)
	for _, p := range []string{"/nothing", "/created", "/hints", "/copy"} {
		resp, err := srv.Client().Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		<-done
	}
	body := scrape(t, e.tel, "")
	for _, want := range []string{
		`http_server_response_body_size_bytes_sum{code="200",method="GET",route="/nothing"} 0`,
		`http_server_response_body_size_bytes_sum{code="201",method="GET",route="/created"} 3`,
		`http_server_response_body_size_bytes_sum{code="200",method="GET",route="/hints"} 5`,
		`http_server_response_body_size_bytes_sum{code="200",method="GET",route="/copy"} 1000`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestActiveRequests(t *testing.T) {
	e := newTestEnv(t, nil)
	var during float64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /a", func(w http.ResponseWriter, r *http.Request) {
		during = testutil.ToFloat64(e.tel.metrics.active)
	})
	e.tel.Middleware(mux).ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/a", nil))
	if during != 1 {
		t.Errorf("active requests during the request = %v, want 1", during)
	}
	if after := testutil.ToFloat64(e.tel.metrics.active); after != 0 {
		t.Errorf("active requests after = %v, want 0", after)
	}
}

// rawPathRouter reports the raw path as the pattern, like a careless router.
type rawPathRouter struct{ h http.HandlerFunc }

func (rr rawPathRouter) ServeHTTP(w http.ResponseWriter, r *http.Request) { rr.h(w, r) }

func (rr rawPathRouter) Handler(r *http.Request) (http.Handler, string) { return rr.h, r.URL.Path }

func TestMaxRoutes(t *testing.T) {
	e := newTestEnv(t, nil, func(c *Config) { c.MaxRoutes = 2 })
	var routes []string
	h := e.tel.Middleware(rawPathRouter{func(w http.ResponseWriter, r *http.Request) {
		routes = append(routes, Route(r.Context()))
	}})
	for _, p := range []string{"/a", "/b", "/c", "/a", "/d"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(t.Context(), http.MethodGet, p, nil))
	}
	if got, want := strings.Join(routes, " "), "/a /b unmatched /a unmatched"; got != want {
		t.Errorf("routes %q, want %q", got, want)
	}
	if n := strings.Count(e.logs.String(), "too many distinct routes"); n != 1 {
		t.Errorf("route-limit warning logged %d times, want once", n)
	}
}

func TestAccessLogSwitch(t *testing.T) {
	on := newTestEnv(t, nil)
	on.do(t, http.MethodGet, "/slow")
	off := newTestEnv(t, nil, func(c *Config) { c.DisableAccessLog = true })
	off.do(t, http.MethodGet, "/slow")
	if !strings.Contains(on.logs.String(), `"msg":"http request"`) {
		t.Error("access log missing when enabled")
	}
	if off.logs.String() != "" {
		t.Errorf("access log written when disabled: %s", off.logs.String())
	}
}

// signalDone reports on done each time h has returned.
func signalDone(h http.Handler, done chan<- struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- struct{}{} }()
		h.ServeHTTP(w, r)
	})
}

func TestWriterInterfaces(t *testing.T) {
	e := newTestEnv(t, nil)
	done := make(chan struct{}, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hijack", func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
		_ = brw.Flush()
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetWriteDeadline through Unwrap: %v", err)
		}
		_, _ = io.WriteString(w, "chunk")
		if err := rc.Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
	})
	srv := httptest.NewServer(signalDone(e.tel.Middleware(mux), done))
	t.Cleanup(srv.Close)
	for _, p := range []string{"/hijack", "/stream"} {
		resp, err := srv.Client().Get(srv.URL + p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		<-done // the client can finish before the middleware has recorded
	}
	body := scrape(t, e.tel, "")
	for _, want := range []string{
		`http_server_request_duration_seconds_count{code="101",method="GET",route="/hijack"} 1`,
		`http_server_response_body_size_bytes_sum{code="200",method="GET",route="/stream"} 5`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// A writer that cannot hijack is not made to look as if it could.
	var isHijacker bool
	mux2 := http.NewServeMux()
	mux2.HandleFunc("GET /x", func(w http.ResponseWriter, r *http.Request) { _, isHijacker = w.(http.Hijacker) })
	e.tel.Middleware(mux2).ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/x", nil))
	if isHijacker {
		t.Error("wrapper claims http.Hijacker over a ResponseRecorder")
	}
}

// TestProcessTimeHeader: WithProcessTimeHeader sets the header to the
// fake clock's elapsed seconds on every kind of response (a body, a bare
// status, nothing written, an error); without it no such header is set.
func TestProcessTimeHeader(t *testing.T) {
	e := newTestEnv(t, nil)
	mux := testMux(e.tel, e.clock)
	mux.HandleFunc("GET /empty", func(http.ResponseWriter, *http.Request) { e.clock.Advance(time.Millisecond) })
	mux.HandleFunc("GET /hints", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusEarlyHints) // not the final header
		e.clock.Advance(3 * time.Millisecond)
		w.WriteHeader(http.StatusAccepted)
	})
	with := e.tel.Middleware(mux, WithProcessTimeHeader("x-process-time"))
	without := e.tel.Middleware(mux)
	for _, tc := range []struct {
		target string
		code   int
		want   string
	}{
		{"/items/1", 200, "0.030000"},
		{"/slow", 204, "0.600000"},
		{"/empty", 200, "0.001000"},
		{"/fail", 500, "0.002000"},
		{"/hints", 103, "0.003000"}, // the recorder keeps the first status; the header is the final one's
		{"/nope", 404, "0.000000"},
	} {
		w := httptest.NewRecorder()
		with.ServeHTTP(w, httptest.NewRequest("GET", tc.target, nil))
		if w.Code != tc.code || w.Header().Get("X-Process-Time") != tc.want {
			t.Errorf("GET %s: %d, X-Process-Time %q; want %d, %q", tc.target, w.Code, w.Header().Get("X-Process-Time"), tc.code, tc.want)
		}
		w = httptest.NewRecorder()
		without.ServeHTTP(w, httptest.NewRequest("GET", tc.target, nil))
		if v, ok := w.Header()["X-Process-Time"]; ok {
			t.Errorf("GET %s without the option: X-Process-Time %q", tc.target, v)
		}
	}
}
