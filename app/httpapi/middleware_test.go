package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/ratelimit"
)

func TestRequestIDAndProcessTime(t *testing.T) {
	f := newFixture(t)
	w := f.do(t, req{method: "GET", path: "/health", hdr: []string{"X-Request-Id", "client-chosen.id_1:2"}})
	if got := w.Header().Get("X-Request-Id"); got != "client-chosen.id_1:2" {
		t.Errorf("well-formed incoming X-Request-Id not echoed: %q", got)
	}
	for _, bad := range []string{strings.Repeat("a", 200), "has space", "semi;colon", "<script>"} {
		w := f.do(t, req{method: "GET", path: "/nope", hdr: []string{"X-Request-Id", bad}})
		got := w.Header().Get("X-Request-Id")
		if got == "" || got == bad {
			t.Errorf("malformed X-Request-Id %q: response carries %q, want a generated one", bad, got)
		}
		if p := problemOf(t, w); p.RequestID != got {
			t.Errorf("problem request_id %q != header %q", p.RequestID, got)
		}
	}
	if pt := w.Header().Get("X-Process-Time"); !strings.HasPrefix(pt, "0.") {
		t.Errorf("X-Process-Time = %q, want seconds", pt)
	}
	if !strings.Contains(f.logs.String(), `"request_id":"client-chosen.id_1:2"`) {
		t.Error("the access log does not carry the request ID")
	}
}

func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t)
	w := f.do(t, req{method: "GET", path: "/api/v1/items"})
	h := w.Header()
	for name, want := range map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Content-Security-Policy": apiCSP,
		"Cache-Control":           "no-store",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if !strings.Contains(h.Get("Permissions-Policy"), "camera=()") {
		t.Errorf("Permissions-Policy = %q", h.Get("Permissions-Policy"))
	}
	if h.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS sent over plain HTTP")
	}
	tlsF := newFixture(t, func(o *Options) { o.TLS = true })
	if got := tlsF.do(t, req{method: "GET", path: "/health"}).Header().Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") {
		t.Errorf("HSTS with TLS = %q", got)
	}
}

// TestSecurityHeaderValuesAreNotShared: every response shares the
// security headers' value slices, so a handler that adds to or replaces
// one must not change what the next response gets.
func TestSecurityHeaderValuesAreNotShared(t *testing.T) {
	f := newFixture(t)
	meddle := f.srv.securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("X-Frame-Options", "SAMEORIGIN")
		h.Set("Content-Security-Policy", "default-src 'self'")
		h["Referrer-Policy"] = append(h["Referrer-Policy"], "origin")
		h.Del("Cache-Control")
	}))
	plain := f.srv.securityHeaders(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for range 2 {
		meddle.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/v1/items", nil))
	}
	w := httptest.NewRecorder()
	plain.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/items", nil))
	for name, want := range map[string][]string{
		"X-Frame-Options":         {"DENY"},
		"Content-Security-Policy": {apiCSP},
		"Referrer-Policy":         {"no-referrer"},
		"Cache-Control":           {"no-store"},
	} {
		if got := w.Header()[name]; !slices.Equal(got, want) {
			t.Errorf("after handlers changed it, %s = %q, want %q", name, got, want)
		}
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/nope", 404, ""},
		{"GET", "/api/v1/items/", 404, ""},
		{"GET", "/api/v1//items", 404, ""},         // would be a redirect from the mux
		{"GET", "/api/v1/users/../items", 404, ""}, // likewise
		{"PATCH", "/api/v1/items/1", 405, "DELETE, GET, HEAD, PUT"},
		{"DELETE", "/api/v1/users", 405, "POST"},
		{"POST", "/health", 405, "GET, HEAD"},
	} {
		r := req{method: tt.method, path: tt.path}
		w := f.do(t, r)
		if w.Code != tt.status || w.Header().Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d Allow %q, want %d %q", tt.method, tt.path, w.Code, w.Header().Get("Allow"), tt.status, tt.allow)
		}
	}
	if got := metric(t, f.tel.Registry, "http_server_request_duration_seconds", map[string]string{"route": "unmatched"}); got < 1 {
		t.Error("unmatched requests are not labelled route=unmatched")
	}
}

func TestCORS(t *testing.T) {
	none := newFixture(t)
	w := none.do(t, req{method: "GET", path: "/health", hdr: []string{"Origin", "https://evil.example"}})
	if w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Error("CORS header sent with no origins configured")
	}
	f := newFixture(t, func(o *Options) { o.CORSOrigins = []string{"https://app.example"} })
	w = f.do(t, req{method: "GET", path: "/health", hdr: []string{"Origin", "https://app.example"}})
	if w.Header().Get("Access-Control-Allow-Origin") != "https://app.example" || !strings.Contains(w.Header().Get("Access-Control-Expose-Headers"), "X-Request-Id") {
		t.Errorf("allowed origin: headers %v", w.Header())
	}
	w = f.do(t, req{method: "OPTIONS", path: "/api/v1/items", hdr: []string{"Origin", "https://app.example", "Access-Control-Request-Method", "POST"}})
	if w.Code != 204 || !strings.Contains(w.Header().Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight: %d %v", w.Code, w.Header())
	}
	w = f.do(t, req{method: "OPTIONS", path: "/api/v1/items", hdr: []string{"Origin", "https://evil.example", "Access-Control-Request-Method", "POST"}})
	if w.Code != 403 || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %d %v", w.Code, w.Header())
	}
	w = f.do(t, req{method: "GET", path: "/health", hdr: []string{"Origin", "https://evil.example"}})
	if w.Header().Get("Access-Control-Allow-Origin") != "" || !strings.Contains(strings.Join(w.Header().Values("Vary"), ","), "Origin") {
		t.Errorf("other origin: %v", w.Header())
	}
}

// blockingStore holds every Item call until release is closed.
type blockingStore struct {
	app.Store
	entered chan struct{}
	release chan struct{}
}

func (s *blockingStore) Item(ctx context.Context, owner, id int64) (app.Item, error) {
	s.entered <- struct{}{}
	<-s.release
	return app.Item{}, app.ErrNotFound
}

func TestConcurrencyLimit(t *testing.T) {
	bs := &blockingStore{entered: make(chan struct{}, 2), release: make(chan struct{})}
	f := newFixture(t, func(o *Options) {
		bs.Store = o.Store
		o.Store = bs
		o.ConcurrencyLimit = 2
		o.Limits = Limits{}
	})
	token, _ := f.tokens.Issue(1)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { f.do(t, req{method: "GET", path: "/api/v1/items/1", token: token}) })
	}
	<-bs.entered
	<-bs.entered // both slots held
	w := f.do(t, req{method: "GET", path: "/api/v1/users/me", token: token})
	if w.Code != 503 || problemOf(t, w).Code != "overloaded" || w.Header().Get("Retry-After") == "" {
		t.Errorf("past the concurrency limit: %d %s, want a fast 503 overloaded", w.Code, w.Body)
	}
	if w := f.do(t, req{method: "GET", path: "/health/live"}); w.Code != 200 {
		t.Errorf("health probe at the limit: %d, want 200 (exempt)", w.Code)
	}
	close(bs.release)
	wg.Wait()
	if got := metric(t, f.tel.Registry, "app_http_concurrency_rejected_total", nil); got != 1 {
		t.Errorf("app_http_concurrency_rejected_total = %v, want 1", got)
	}
	if w := f.do(t, req{method: "GET", path: "/health/ready"}); w.Code != 200 {
		t.Errorf("after release: %d", w.Code)
	}
	// The slots were given back: API requests pass the limit again.
	for range 3 {
		if w := f.do(t, req{method: "GET", path: "/api/v1/users/me", token: token}); w.Code == 503 {
			t.Errorf("after release: %d %s, want the slots free again", w.Code, w.Body)
		}
	}
}

type failingLimiter struct{}

func (failingLimiter) Allow(context.Context, string, ratelimit.Limit) (ratelimit.Decision, error) {
	return ratelimit.Decision{}, errors.New("redis: connection refused")
}

func TestLimiterFailureFailsOpen(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Limiter = failingLimiter{} })
	if w := f.do(t, req{method: "GET", path: "/openapi.json"}); w.Code != 200 {
		t.Errorf("with a failing limiter: %d, want 200", w.Code)
	}
	if !strings.Contains(f.logs.String(), "rate limiter failed") {
		t.Error("limiter failure not logged")
	}
}

func TestHeaderAndURLLimits(t *testing.T) {
	f := newFixture(t)
	w := f.do(t, req{method: "GET", path: "/health/live?x=" + strings.Repeat("a", maxURLBytes)})
	if w.Code != http.StatusRequestURITooLong {
		t.Errorf("long URL: %d, want 414", w.Code)
	}
	w = f.do(t, req{method: "GET", path: "/health/live", hdr: []string{"X-Big", strings.Repeat("b", maxHeaderBytes)}})
	if w.Code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("big header: %d, want 431", w.Code)
	}
}
