package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// fakeClock is a Config.Now that only moves when a test advances it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// envMap is a Config.Getenv backed by a map, so tests never read the
// real environment.
func envMap(kv ...string) func(string) string {
	m := make(map[string]string)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// syncBuffer is an io.Writer safe for the concurrent writes of a server.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testEnv is a Telemetry with a span recorder, a log buffer and a fake
// clock, around a small ServeMux of its own (not app/).
type testEnv struct {
	tel     *Telemetry
	spans   *tracetest.SpanRecorder
	logs    *syncBuffer
	clock   *fakeClock
	handler http.Handler
}

func newTestEnv(t *testing.T, getenv func(string) string, mutate ...func(*Config)) *testEnv {
	t.Helper()
	if getenv == nil {
		getenv = envMap()
	}
	e := &testEnv{spans: tracetest.NewSpanRecorder(), logs: &syncBuffer{}, clock: newFakeClock()}
	cfg := Config{
		ServiceVersion: "v1.2.3",
		LogFormat:      "json",
		LogWriter:      e.logs,
		Getenv:         getenv,
		Now:            e.clock.Now,
		SpanProcessors: []sdktrace.SpanProcessor{e.spans},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	tel, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	e.tel = tel
	e.handler = tel.Middleware(testMux(tel, e.clock))
	return e
}

// testMux stands in for an API: a few routes with path values, a child
// span, a log line from the handler, an error, a panic and a slow route
// whose latency is set on the fake clock.
func testMux(tel *Telemetry, clock *fakeClock) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		ctx, span := tel.Span(r.Context(), "db.query")
		tel.Logger.InfoContext(ctx, "item read", "item_id", r.PathValue("id"))
		span.End()
		clock.Advance(30 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q}`, r.PathValue("id"))
	})
	mux.HandleFunc("POST /items", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		clock.Advance(120 * time.Millisecond)
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, strings.Repeat("x", 300))
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		clock.Advance(600 * time.Millisecond)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) {
		clock.Advance(2 * time.Millisecond)
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) {
		panic("handler bug")
	})
	return mux
}

// do serves one request in-process and returns the recorded response.
func (e *testEnv) do(t *testing.T, method, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	return rec
}

// scrape serves /metrics with the given Accept header.
func scrape(t *testing.T, tel *Telemetry, accept string) string {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: status %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// logLines decodes every JSON log line written so far.
func logLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(s) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %q", err, line)
		}
		out = append(out, m)
	}
	return out
}

// spanNamed returns the one recorded span called name.
func spanNamed(t *testing.T, spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		var names []string
		for _, s := range spans {
			names = append(names, s.Name())
		}
		t.Fatalf("spans named %q: got %d, want 1 (all: %q)", name, len(found), names)
	}
	return found[0]
}
