package telemetry

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// benchItem and benchStore stand in for a realistic handler: one read from
// an in-memory store under a lock and a JSON response.
type benchItem struct {
	ID        string    `json:"id"`
	Title     string    `json:"title"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

type benchStore struct {
	mu    sync.RWMutex
	items map[string]benchItem
}

func benchMux() *http.ServeMux {
	st := &benchStore{items: map[string]benchItem{}}
	for i := range 100 {
		id := strconv.Itoa(i)
		st.items[id] = benchItem{ID: id, Title: "item " + id, Body: "some body text for the item", CreatedAt: time.Unix(1700000000, 0).UTC()}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/items/{id}", func(w http.ResponseWriter, r *http.Request) {
		st.mu.RLock()
		it, ok := st.items[r.PathValue("id")]
		st.mu.RUnlock()
		if !ok {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(it)
	})
	return mux
}

// discardWriter is a reusable ResponseWriter, so the benchmark measures the
// handler chain rather than a recorder's allocations.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

func runBench(b *testing.B, h http.Handler) {
	req := httptest.NewRequest(http.MethodGet, "/api/v1/items/42", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

// BenchmarkMiddleware compares the bare handler with the telemetry
// middleware around it. Run:
//
//	go test -run '^$' -bench Middleware -benchmem -count 6 ./telemetry/
func BenchmarkMiddleware(b *testing.B) {
	newTel := func(b *testing.B, cfg Config) *Telemetry {
		cfg.LogWriter, cfg.LogFormat = io.Discard, "json"
		if cfg.Getenv == nil {
			cfg.Getenv = envMap()
		}
		tel, err := New(b.Context(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = tel.Shutdown(b.Context()) })
		return tel
	}
	b.Run("bare", func(b *testing.B) {
		runBench(b, benchMux())
	})
	b.Run("telemetry", func(b *testing.B) {
		runBench(b, newTel(b, Config{}).Middleware(benchMux()))
	})
	b.Run("telemetry_no_access_log", func(b *testing.B) {
		runBench(b, newTel(b, Config{DisableAccessLog: true}).Middleware(benchMux()))
	})
	b.Run("telemetry_unsampled", func(b *testing.B) {
		runBench(b, newTel(b, Config{Getenv: envMap("OTEL_TRACES_SAMPLER", "always_off")}).Middleware(benchMux()))
	})
	// The variants make bench-http compares over HTTP: (b) tracing off,
	// (c) tracing and access log off.
	b.Run("telemetry_tracing_off", func(b *testing.B) {
		runBench(b, newTel(b, Config{Getenv: envMap("OTEL_SDK_DISABLED", "true")}).Middleware(benchMux()))
	})
	b.Run("telemetry_tracing_and_access_log_off", func(b *testing.B) {
		runBench(b, newTel(b, Config{DisableAccessLog: true, Getenv: envMap("OTEL_SDK_DISABLED", "true")}).Middleware(benchMux()))
	})
}

// BenchmarkMiddlewareParallel is BenchmarkMiddleware from GOMAXPROCS
// goroutines at once, to expose contention on the shared series cache,
// histograms and exemplar slots.
func BenchmarkMiddlewareParallel(b *testing.B) {
	run := func(b *testing.B, h http.Handler) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			req := httptest.NewRequest(http.MethodGet, "/api/v1/items/42", nil)
			w := &discardWriter{h: http.Header{}}
			for pb.Next() {
				clear(w.h)
				h.ServeHTTP(w, req)
			}
		})
	}
	b.Run("bare", func(b *testing.B) { run(b, benchMux()) })
	b.Run("telemetry", func(b *testing.B) {
		tel, err := New(b.Context(), Config{LogWriter: io.Discard, LogFormat: "json", Getenv: envMap()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = tel.Shutdown(b.Context()) })
		run(b, tel.Middleware(benchMux()))
	})
}
