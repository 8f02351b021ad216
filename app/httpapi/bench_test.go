package httpapi

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/app/ratelimit"
	"github.com/glasshouse-dev/glasshouse/telemetry"
)

// discardWriter is a reusable ResponseWriter, so the benchmark measures the
// server, not the recorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkChain compares GET /api/v1/items/{id} on SQLite (one store
// read) served three ways:
//
//	bare   the handler alone, user and path value already in the request
//	auth   requireAuth + the handler (JWT verification is the route's job)
//	full   NewServer: every middleware (telemetry with access log, span,
//	       metrics; security headers; limits; rate limit; routing)
//	full-nolog  the same with ACCESS_LOG=false
//
// and bare-http / full-http: bare (plus routing) and full behind a real
// loopback listener and keep-alive client. make bench runs it and prints
// the throughput ratios (full/bare, full/auth, full-http/bare-http).
func BenchmarkChain(b *testing.B) {
	f := newFixture(b, func(o *Options) {
		o.Telemetry = newTelemetry(b, io.Discard) // the access log is formatted, then discarded
		// The limiter still runs on every request but never rejects one
		// user's million requests.
		o.Limits.User = ratelimit.Limit{Rate: 1 << 30, Period: time.Second, Burst: 1 << 30}
	})
	_, token := f.signup(b, "bench")
	it := f.createItem(b, token, "benchmark item")
	id := strconv.FormatInt(it.ID, 10)
	path := "/api/v1/items/" + id

	run := func(b *testing.B, h http.Handler, r *http.Request) {
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, r)
		if w.code != 0 && w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			clear(w.h)
			w.code = 0
			h.ServeHTTP(w, r)
		}
		b.StopTimer()
		if w.code != 0 && w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}

	b.Run("bare", func(b *testing.B) {
		r := httptest.NewRequest("GET", path, nil)
		r.SetPathValue("id", id)
		r = r.WithContext(context.WithValue(r.Context(), userIDKey, it.OwnerID))
		run(b, handleItemGet(f.srv.log, f.store), r)
	})
	b.Run("auth", func(b *testing.B) {
		r := httptest.NewRequest("GET", path, nil)
		r.SetPathValue("id", id)
		r.Header.Set("Authorization", "Bearer "+token)
		run(b, f.srv.requireAuth(handleItemGet(f.srv.log, f.store)), r)
	})
	b.Run("full", func(b *testing.B) {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Bearer "+token)
		run(b, f.h, r)
	})
	b.Run("full-nolog", func(b *testing.B) {
		// ACCESS_LOG=false: the same chain without the per-request log record.
		tel, err := telemetry.New(context.Background(), telemetry.Config{LogWriter: io.Discard, LogFormat: "json",
			DisableAccessLog: true, Getenv: func(string) string { return "" }})
		if err != nil {
			b.Fatal(err)
		}
		defer tel.Shutdown(context.Background())
		o := f.srv.opts
		o.Telemetry = tel
		s := newServer(o)
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Bearer "+token)
		run(b, s.chain(s.mux), r)
	})

	// The same over a real loopback connection (keep-alive, one client):
	// the throughput a client sees, network stack and net/http included.
	overHTTP := func(b *testing.B, h http.Handler) {
		ts := httptest.NewServer(h)
		defer ts.Close()
		client := ts.Client()
		req, _ := http.NewRequest("GET", ts.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	}
	b.Run("bare-http", func(b *testing.B) {
		mux := http.NewServeMux()
		h := handleItemGet(f.srv.log, f.store)
		mux.Handle("GET /api/v1/items/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userIDKey, it.OwnerID)))
		}))
		overHTTP(b, mux)
	})
	b.Run("full-http", func(b *testing.B) { overHTTP(b, f.h) })
}
