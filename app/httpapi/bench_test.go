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
//
// then what the full chain costs without parts of telemetry, to show where
// its overhead goes (none of these is a default):
//
//	full-nolog       ACCESS_LOG=false
//	full-unsampled   OTEL_TRACES_SAMPLER=always_off: span IDs, no recording
//	full-notrace     OTEL_SDK_DISABLED=true: no spans at all
//
// bare-par / full-par: bare and full from GOMAXPROCS goroutines at once
// (b.RunParallel), the throughput of a busy server on this machine's cores;
// and bare-http / full-http: bare (plus routing) and full behind a real
// loopback listener and keep-alive client in the same process, with
// bare-http-headers in between: bare sending the full chain's response
// headers. make bench runs it and prints the throughput ratios (full/bare
// first).
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

	bareRequest := func() *http.Request {
		r := httptest.NewRequest("GET", path, nil)
		r.SetPathValue("id", id)
		return r.WithContext(context.WithValue(r.Context(), userIDKey, it.OwnerID))
	}
	fullRequest := func() *http.Request {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Bearer "+token)
		return r
	}
	// variant is the full chain on the same store with telemetry built
	// from cfg and env (the OTEL_* variables).
	variant := func(b *testing.B, cfg telemetry.Config, env ...string) http.Handler {
		vars := map[string]string{}
		for i := 0; i+1 < len(env); i += 2 {
			vars[env[i]] = env[i+1]
		}
		cfg.LogWriter, cfg.LogFormat, cfg.ServiceVersion = io.Discard, "json", "test"
		cfg.Getenv = func(k string) string { return vars[k] }
		tel, err := telemetry.New(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { tel.Shutdown(context.Background()) })
		o := f.srv.opts
		o.Telemetry = tel
		s := newServer(o)
		return s.chain(s.mux)
	}

	check := func(b *testing.B, code int) {
		if code != 0 && code != http.StatusOK {
			b.Fatalf("status %d", code)
		}
	}
	run := func(b *testing.B, h http.Handler, r *http.Request) {
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, r)
		check(b, w.code)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			clear(w.h)
			w.code = 0
			h.ServeHTTP(w, r)
		}
		b.StopTimer()
		check(b, w.code)
	}
	runParallel := func(b *testing.B, h http.Handler, newRequest func() *http.Request) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			r := newRequest()
			w := &discardWriter{h: http.Header{}}
			for pb.Next() {
				clear(w.h)
				w.code = 0
				h.ServeHTTP(w, r)
				if w.code != 0 && w.code != http.StatusOK {
					b.Errorf("status %d", w.code)
					return
				}
			}
		})
	}

	bare := handleItemGet(f.srv.errs, f.store)
	b.Run("bare", func(b *testing.B) { run(b, bare, bareRequest()) })
	b.Run("auth", func(b *testing.B) {
		r := httptest.NewRequest("GET", path, nil)
		r.SetPathValue("id", id)
		r.Header.Set("Authorization", "Bearer "+token)
		run(b, f.srv.requireAuth(bare), r)
	})
	b.Run("full", func(b *testing.B) { run(b, f.h, fullRequest()) })
	b.Run("full-nolog", func(b *testing.B) {
		run(b, variant(b, telemetry.Config{DisableAccessLog: true}), fullRequest())
	})
	b.Run("full-unsampled", func(b *testing.B) {
		run(b, variant(b, telemetry.Config{}, "OTEL_TRACES_SAMPLER", "always_off"), fullRequest())
	})
	b.Run("full-notrace", func(b *testing.B) {
		run(b, variant(b, telemetry.Config{}, "OTEL_SDK_DISABLED", "true"), fullRequest())
	})
	b.Run("bare-par", func(b *testing.B) { runParallel(b, bare, bareRequest) })
	b.Run("full-par", func(b *testing.B) { runParallel(b, f.h, fullRequest) })

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
	bareMux := func(header http.Header) http.Handler {
		mux := http.NewServeMux()
		mux.Handle("GET /api/v1/items/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			for k, v := range header {
				h[k] = v
			}
			bare.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userIDKey, it.OwnerID)))
		}))
		return mux
	}
	b.Run("bare-http", func(b *testing.B) { overHTTP(b, bareMux(nil)) })
	b.Run("bare-http-headers", func(b *testing.B) {
		// The bare handler sending the response headers the full chain
		// sends (security, rate-limit, request and trace IDs, process
		// time), copied from one full response: what the headers alone
		// cost the server and the in-process client, without middleware.
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, fullRequest())
		hdr := w.Header().Clone()
		hdr.Del("Content-Type") // the handler sets it
		overHTTP(b, bareMux(hdr))
	})
	b.Run("full-http", func(b *testing.B) { overHTTP(b, f.h) })
}
