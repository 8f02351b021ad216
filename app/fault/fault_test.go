package fault_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/fault"
)

// fixedRand returns v forever.
func fixedRand(v float64) func() float64 { return func() float64 { return v } }

// byHeader takes the route from a test header, standing in for telemetry.Route.
func byHeader(r *http.Request) string { return r.Header.Get("X-Route") }

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "handled") })

func serve(t *testing.T, h http.Handler, route string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), "GET", "/x", nil)
	req.Header.Set("X-Route", route)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestErrorsPerRoute(t *testing.T) {
	var r atomic.Value
	r.Store(0.4)
	inj := fault.New(fault.Options{Route: byHeader, Rand: func() float64 { return r.Load().(float64) }})
	if err := inj.Set(fault.Config{Errors: []fault.ErrorFault{
		{Route: "/api/v1/items", Ratio: 0.5, Status: 503},
		{Route: "*", Ratio: 0.3},
	}}); err != nil {
		t.Fatal(err)
	}
	h := inj.Middleware(okHandler)

	rec := serve(t, h, "/api/v1/items")
	if rec.Code != 503 || rec.Header().Get("X-Fault-Injected") != "error" || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("injected response = %d %v", rec.Code, rec.Header())
	}
	var p map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p["code"] != "fault_injected" || p["status"] != 503.0 {
		t.Errorf("problem body = %s (%v)", rec.Body, err)
	}
	// 0.4 >= 0.3: the catch-all rule lets this one through.
	if rec := serve(t, h, "/health"); rec.Code != 200 || rec.Body.String() != "handled" {
		t.Errorf("/health = %d %q, want the handler", rec.Code, rec.Body)
	}
	r.Store(0.2)
	if rec := serve(t, h, "/health"); rec.Code != 500 {
		t.Errorf("/health with rand 0.2 = %d, want the default injected 500", rec.Code)
	}
	r.Store(0.6)
	if rec := serve(t, h, "/api/v1/items"); rec.Code != 200 {
		t.Errorf("/api/v1/items with rand 0.6 = %d, want 200 (ratio 0.5)", rec.Code)
	}
	if got := inj.Config().Errors[1].Status; got != 500 {
		t.Errorf("Config() reports status %d for the default, want 500", got)
	}
}

// TestLatency uses a synctest bubble: the injected delay is measured on the
// fake clock, exactly.
func TestLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inj := fault.New(fault.Options{Route: byHeader, Rand: fixedRand(0)})
		if err := inj.Set(fault.Config{Latency: []fault.LatencyFault{{Route: "/slow", Delay: fault.Duration(300 * time.Millisecond), Ratio: 1}}}); err != nil {
			t.Fatal(err)
		}
		h := inj.Middleware(okHandler)
		start := time.Now()
		if rec := serve(t, h, "/slow"); rec.Code != 200 {
			t.Fatalf("status %d", rec.Code)
		}
		if got := time.Since(start); got != 300*time.Millisecond {
			t.Errorf("delay = %v, want 300ms", got)
		}
		start = time.Now()
		serve(t, h, "/fast")
		if got := time.Since(start); got != 0 {
			t.Errorf("other route delayed %v", got)
		}
	})
}

func TestLatencyCanceledClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inj := fault.New(fault.Options{Route: byHeader, Rand: fixedRand(0)})
		if err := inj.Set(fault.Config{Latency: []fault.LatencyFault{{Route: "*", Delay: fault.Duration(time.Minute), Ratio: 1}}}); err != nil {
			t.Fatal(err)
		}
		var sawCanceled bool
		h := inj.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sawCanceled = r.Context().Err() != nil
		}))
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(2*time.Second, cancel)
		start := time.Now()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(ctx, "GET", "/", nil))
		if got := time.Since(start); got != 2*time.Second || !sawCanceled {
			t.Errorf("returned after %v (canceled seen: %v), want 2s and a canceled context", got, sawCanceled)
		}
	})
}

// TestDefaultRoute checks the default route function inside a ServeMux:
// the pattern without its method.
func TestDefaultRoute(t *testing.T) {
	inj := fault.New(fault.Options{Rand: fixedRand(0)})
	if err := inj.Set(fault.Config{Errors: []fault.ErrorFault{{Route: "/api/v1/items/{id}", Ratio: 1, Status: 502}}}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/items/{id}", inj.Middleware(okHandler))
	mux.Handle("GET /health", inj.Middleware(okHandler))
	for path, want := range map[string]int{"/api/v1/items/42": 502, "/health": 200} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != want {
			t.Errorf("GET %s = %d, want %d", path, rec.Code, want)
		}
	}
}

func TestSetRejectsBadConfig(t *testing.T) {
	inj := fault.New(fault.Options{})
	inj.Store("database", &fakeStore{})
	good := fault.Config{Errors: []fault.ErrorFault{{Route: "*", Ratio: 0.1}}}
	if err := inj.Set(good); err != nil {
		t.Fatal(err)
	}
	bad := fault.Config{
		Latency: []fault.LatencyFault{
			{Route: "", Delay: fault.Duration(time.Second), Ratio: 1},
			{Route: "api/items", Delay: 0, Ratio: 0},
			{Route: "/a", Delay: fault.Duration(2 * time.Hour), Ratio: 2},
			{Route: "/a", Delay: fault.Duration(time.Second), Ratio: 1},
		},
		Errors:  []fault.ErrorFault{{Route: "*", Ratio: -1, Status: 404}},
		Outages: []string{"redis", "database", "database"},
	}
	err := inj.Set(bad)
	if err == nil {
		t.Fatal("Set accepted a bad config")
	}
	for _, want := range []string{
		"latency[0].route: required",
		`latency[1].route: "api/items" must be a route template`,
		"latency[1].ratio: 0 must be in (0, 1]",
		"latency[1].delay: 0s must be in (0, 1m0s]",
		"latency[2].delay: 2h0m0s must be in",
		"latency[2].ratio: 2 must be",
		`latency[3].route: "/a" appears twice`,
		"errors[0].ratio: -1 must be",
		"errors[0].status: 404 must be a 5xx status",
		`outages[0]: unknown dependency "redis" (known: database)`,
		`outages[2]: "database" appears twice`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if diff := cmp.Diff(good.Errors[0].Route, inj.Config().Errors[0].Route); diff != "" || len(inj.Config().Errors) != 1 {
		t.Errorf("a rejected Set changed the config: %+v", inj.Config())
	}
}

type fakeStore struct{ calls, closes atomic.Int32 }

func (f *fakeStore) CreateUser(context.Context, *app.User) error { f.calls.Add(1); return nil }
func (f *fakeStore) UserByID(context.Context, int64) (app.User, error) {
	f.calls.Add(1)
	return app.User{ID: 1}, nil
}
func (f *fakeStore) UserByUsername(context.Context, string) (app.User, error) {
	f.calls.Add(1)
	return app.User{ID: 1}, nil
}
func (f *fakeStore) CreateItem(context.Context, *app.Item) error { f.calls.Add(1); return nil }
func (f *fakeStore) Item(context.Context, int64, int64) (app.Item, error) {
	f.calls.Add(1)
	return app.Item{ID: 1}, nil
}
func (f *fakeStore) ListItems(context.Context, int64, app.Page) ([]app.Item, int, error) {
	f.calls.Add(1)
	return []app.Item{{ID: 1}}, 1, nil
}
func (f *fakeStore) UpdateItem(context.Context, *app.Item) error    { f.calls.Add(1); return nil }
func (f *fakeStore) DeleteItem(context.Context, int64, int64) error { f.calls.Add(1); return nil }
func (f *fakeStore) Ping(context.Context) error                     { f.calls.Add(1); return nil }
func (f *fakeStore) Close() error                                   { f.closes.Add(1); return nil }

// storeCalls calls every Store method except Close and returns their errors.
func storeCalls(ctx context.Context, s app.Store) []error {
	_, e1 := s.UserByID(ctx, 1)
	_, e2 := s.UserByUsername(ctx, "a")
	_, e3 := s.Item(ctx, 1, 1)
	_, _, e4 := s.ListItems(ctx, 1, app.Page{Limit: 1})
	return []error{s.CreateUser(ctx, &app.User{}), e1, e2, s.CreateItem(ctx, &app.Item{}), e3, e4,
		s.UpdateItem(ctx, &app.Item{}), s.DeleteItem(ctx, 1, 1), s.Ping(ctx)}
}

func TestStoreOutage(t *testing.T) {
	inj := fault.New(fault.Options{})
	next := &fakeStore{}
	s := inj.Store("database", next)
	for i, err := range storeCalls(t.Context(), s) {
		if err != nil {
			t.Errorf("call %d without outage: %v", i, err)
		}
	}
	if err := inj.Set(fault.Config{Outages: []string{"database"}}); err != nil {
		t.Fatal(err)
	}
	before := next.calls.Load()
	for i, err := range storeCalls(t.Context(), s) {
		if !errors.Is(err, app.ErrUnavailable) {
			t.Errorf("call %d during outage: %v, want app.ErrUnavailable", i, err)
		}
	}
	if next.calls.Load() != before {
		t.Error("calls reached the store during the outage")
	}
	if err := s.Close(); err != nil || next.closes.Load() != 1 {
		t.Errorf("Close during outage: %v, closes %d", err, next.closes.Load())
	}
	inj.Reset()
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping after Reset: %v", err)
	}
}

func TestRegisteredOutage(t *testing.T) {
	inj := fault.New(fault.Options{})
	inj.Register("redis")
	inj.Register("queue")
	if got, want := inj.Dependencies(), []string{"queue", "redis"}; !cmp.Equal(got, want) {
		t.Errorf("Dependencies() = %v, want %v", got, want)
	}
	if err := inj.Set(fault.Config{Outages: []string{"unknown"}}); err == nil {
		t.Error("an outage of an unregistered dependency was accepted")
	}
	inj.Register("queue")
	if err := inj.Set(fault.Config{Outages: []string{"queue"}}); err != nil {
		t.Errorf("a Registered dependency was refused: %v", err)
	}
	if err := inj.Err("queue"); !errors.Is(err, app.ErrUnavailable) {
		t.Errorf("Err(queue) = %v", err)
	}
}

func do(t *testing.T, method, url, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestHandler drives /debug/fault over a real listener.
func TestHandler(t *testing.T) {
	inj := fault.New(fault.Options{})
	inj.Store("database", &fakeStore{})
	mux := http.NewServeMux()
	mux.Handle("/debug/fault", inj.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	u := srv.URL + "/debug/fault"

	if code, _, body := do(t, "GET", u, ""); code != 200 || strings.TrimSpace(body) != "{}" {
		t.Errorf("initial GET = %d %s", code, body)
	}
	code, _, body := do(t, "PUT", u, `{"latency":[{"route":"*","delay":"250ms","ratio":0.5}],"errors":[{"route":"/api/v1/items","ratio":1}],"outages":["database"]}`)
	if code != 200 {
		t.Fatalf("PUT = %d %s", code, body)
	}
	var got fault.Config
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	want := fault.Config{
		Latency: []fault.LatencyFault{{Route: "*", Delay: fault.Duration(250 * time.Millisecond), Ratio: 0.5}},
		Errors:  []fault.ErrorFault{{Route: "/api/v1/items", Ratio: 1, Status: 500}},
		Outages: []string{"database"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PUT answer (-want +got):\n%s", diff)
	}
	if !strings.Contains(body, `"delay": "250ms"`) {
		t.Errorf("delay not written as a duration string: %s", body)
	}

	for _, tt := range []struct{ method, body, want string }{
		{"PUT", `{"errors":[{"route":"*","ratio":1.5}]}`, "errors[0].ratio: 1.5"},
		{"POST", `{"latency":[{"route":"*","delay":"soon","ratio":1}]}`, "invalid JSON"},
		{"PUT", `{"errors":[],"bogus":1}`, `unknown field \"bogus\"`},
		{"PUT", `{} {}`, "more than one value"},
		{"PUT", `nope`, "invalid JSON"},
		{"PUT", `{"outages":["cache"]}`, `unknown dependency \"cache\"`},
	} {
		code, h, body := do(t, tt.method, u, tt.body)
		if code != 400 || h.Get("Content-Type") != "application/problem+json" || !strings.Contains(body, tt.want) {
			t.Errorf("%s %s = %d %s %s, want 400 problem containing %q", tt.method, tt.body, code, h.Get("Content-Type"), body, tt.want)
		}
	}
	if diff := cmp.Diff(want, inj.Config()); diff != "" {
		t.Errorf("rejected requests changed the config (-want +got):\n%s", diff)
	}
	if code, h, _ := do(t, "PATCH", u, "{}"); code != 405 || h.Get("Allow") == "" {
		t.Errorf("PATCH = %d Allow %q, want 405 with Allow", code, h.Get("Allow"))
	}
	if code, _, body := do(t, "DELETE", u, ""); code != 200 || strings.TrimSpace(body) != "{}" {
		t.Errorf("DELETE = %d %s", code, body)
	}
	if !inj.Config().Empty() {
		t.Errorf("after DELETE: %+v", inj.Config())
	}
}

// TestConcurrentUse switches faults while requests flow (run with -race).
func TestConcurrentUse(t *testing.T) {
	inj := fault.New(fault.Options{Route: byHeader})
	s := inj.Store("database", &fakeStore{})
	h := inj.Middleware(okHandler)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				rec := serve(t, h, "/api/v1/items")
				if rec.Code != 200 && rec.Code != 500 {
					t.Errorf("status %d", rec.Code)
				}
				_ = s.Ping(context.Background())
			}
		})
	}
	for i := range 200 {
		var err error
		if i%2 == 0 {
			err = inj.Set(fault.Config{Errors: []fault.ErrorFault{{Route: "*", Ratio: 0.5}}, Outages: []string{"database"}})
		} else {
			inj.Reset()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

func FuzzHandler(f *testing.F) {
	f.Add([]byte(`{"latency":[{"route":"*","delay":"1s","ratio":1}]}`))
	f.Add([]byte(`{"errors":[{"route":"/a/{id}","ratio":0.5,"status":503}],"outages":["database"]}`))
	f.Add([]byte(`{"latency":[{"route":"*","delay":"-1ns","ratio":1e308}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		inj := fault.New(fault.Options{})
		inj.Register("database")
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("PUT", "/debug/fault", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		inj.Handler().ServeHTTP(rec, req)
		switch rec.Code {
		case 200:
			// What was accepted must be accepted again (GET output round-trips).
			if err := inj.Set(inj.Config()); err != nil {
				t.Fatalf("accepted config does not round-trip: %v", err)
			}
		case 400:
			if !inj.Config().Empty() {
				t.Fatalf("rejected body changed the config: %+v", inj.Config())
			}
		default:
			t.Fatalf("status %d", rec.Code)
		}
	})
}

// TestHandlerRequiresJSON: a PUT or POST without Content-Type:
// application/json (what an HTML form on another site can send without a
// CORS preflight) is refused with 415 and changes nothing.
func TestHandlerRequiresJSON(t *testing.T) {
	inj := fault.New(fault.Options{})
	srv := httptest.NewServer(inj.Handler())
	t.Cleanup(srv.Close)
	body := `{"errors":[{"route":"*","ratio":1}]}`
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx"} {
		for _, method := range []string{"PUT", "POST"} {
			req, err := http.NewRequestWithContext(t.Context(), method, srv.URL, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnsupportedMediaType || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s with Content-Type %q = %d, want a 415 problem", method, ct, resp.StatusCode)
			}
		}
	}
	if !inj.Config().Empty() {
		t.Errorf("refused requests changed the config: %+v", inj.Config())
	}
	if code, _, b := do(t, "PUT", srv.URL, body); code != 200 {
		t.Errorf("PUT with application/json = %d %s, want 200", code, b)
	}
}

// TestExemptRoutes: no rule reaches an exempt route: "*" skips it and a
// rule naming it is refused.
func TestExemptRoutes(t *testing.T) {
	inj := fault.New(fault.Options{Route: byHeader, Rand: fixedRand(0), Exempt: []string{"/health/live"}})
	if err := inj.Set(fault.Config{Errors: []fault.ErrorFault{{Route: "*", Ratio: 1, Status: 503}}}); err != nil {
		t.Fatal(err)
	}
	h := inj.Middleware(okHandler)
	if rec := serve(t, h, "/health/live"); rec.Code != 200 || rec.Body.String() != "handled" {
		t.Errorf("/health/live under a * rule = %d %q, want the handler", rec.Code, rec.Body)
	}
	if rec := serve(t, h, "/api/v1/items"); rec.Code != 503 {
		t.Errorf("/api/v1/items under a * rule = %d, want 503", rec.Code)
	}
	for _, c := range []fault.Config{
		{Errors: []fault.ErrorFault{{Route: "/health/live", Ratio: 1}}},
		{Latency: []fault.LatencyFault{{Route: "/health/live", Ratio: 1, Delay: fault.Duration(time.Second)}}},
	} {
		if err := inj.Set(c); err == nil || !strings.Contains(err.Error(), "exempt") {
			t.Errorf("Set(%+v) = %v, want an error naming the exempt route", c, err)
		}
	}
}
