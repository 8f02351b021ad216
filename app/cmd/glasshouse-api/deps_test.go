package main

// Failure tests for the API on real PostgreSQL and Redis: the API is
// started through run, reaching each server through a loopback proxy the
// test cuts (connections closed, new ones refused, or held without an
// answer) and restores. Shared servers are never stopped, so other tests
// using them are undisturbed.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/fault"
	"github.com/glasshouse-dev/glasshouse/app/internal/redistest"
	"github.com/glasshouse-dev/glasshouse/app/internal/tcpproxy"
	"github.com/glasshouse-dev/glasshouse/app/postgres"
	"github.com/glasshouse-dev/glasshouse/app/postgres/pgtest"
	"github.com/glasshouse-dev/glasshouse/app/ratelimit"
	"github.com/glasshouse-dev/glasshouse/app/redislimit"
	"github.com/glasshouse-dev/glasshouse/internal/freeport"
	"github.com/glasshouse-dev/glasshouse/internal/syncbuf"
	"github.com/glasshouse-dev/glasshouse/internal/testenv"
	"github.com/glasshouse-dev/glasshouse/telemetry"
)

// depAPI is one API started through run.
type depAPI struct {
	base, admin string
	logs        *syncbuf.Buffer
	// retry429, while set, makes do repeat a request answered 429 for up
	// to 10 s. A test that runs a fail-closed limiter with a short
	// REDIS_TIMEOUT (to cut Redis later) sets it while Redis is up and no
	// limit it sets is near: a Redis call slowed past that timeout on a
	// loaded machine makes the limiter refuse everything for its cooldown.
	retry429 bool
}

func depFreeAddr(t *testing.T) string {
	t.Helper()
	return freeport.Addr(t)
}

// startDepAPI runs the API with env on free loopback ports and waits until
// /health/ready answers 200.
//
// With REDIS_URL but no REDIS_TIMEOUT in env, Redis calls get
// testenv.RedisHangGuard, in REDIS_TIMEOUT and in the client's timeouts (see
// testenv.RedisHangGuardURL): those tests assert outcomes that need Redis to answer
// (cache hits, shared quotas), and the defaults (100 ms, and the client's
// 1 s) can expire on a loaded machine and make the API bypass the cache and
// fall back from the shared limits for a second. Tests that cut or stall
// Redis set REDIS_TIMEOUT themselves.
func startDepAPI(t *testing.T, env map[string]string) *depAPI {
	t.Helper()
	e := map[string]string{
		"ADDR": depFreeAddr(t), "ADMIN_ADDR": depFreeAddr(t), "DATA_DIR": t.TempDir(),
		"LOG_FORMAT": "json", "ACCESS_LOG": "false",
		// These tests cut dependencies and read the health report right
		// after: a result cached for the default second would still show
		// the state from before the cut.
		"READY_CACHE_TTL": "1ms",
	}
	for k, v := range env {
		e[k] = v
	}
	if _, ok := env["REDIS_TIMEOUT"]; !ok && e["REDIS_URL"] != "" {
		e["REDIS_TIMEOUT"] = testenv.RedisHangGuard.String()
		e["REDIS_URL"] = testenv.RedisHangGuardURL(t, e["REDIS_URL"])
	}
	a := &depAPI{base: "http://" + e["ADDR"], admin: "http://" + e["ADMIN_ADDR"], logs: &syncbuf.Buffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"glasshouse-api", "-env-file="}, func(k string) string { return e[k] },
			strings.NewReader(""), a.logs, a.logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("run did not return within 30s of cancel")
		}
		if t.Failed() {
			t.Logf("API logs:\n%s", a.logs)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if st, _, _ := a.get(t, "/health/ready", ""); st == http.StatusOK {
			return a
		}
		select {
		case err := <-done:
			t.Fatalf("run returned before ready: %v\n%s", err, a.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 30s:\n%s", a.logs)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// client bounds every request: a request that would hang fails the test.
var depClient = &http.Client{Timeout: 15 * time.Second}

// do sends a request (again while it is answered 429 and a.retry429 is
// set) and returns the status, headers and body. A transport error
// (including the 15 s bound) is status 0.
func (a *depAPI) do(t *testing.T, method, path, token, body string) (int, http.Header, []byte) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st, h, b := a.doOnce(t, method, path, token, body)
		if st != http.StatusTooManyRequests || !a.retry429 || time.Now().After(deadline) {
			return st, h, b
		}
	}
}

func (a *depAPI) doOnce(t *testing.T, method, path, token, body string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := depClient.Do(req)
	if err != nil {
		return 0, nil, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func (a *depAPI) get(t *testing.T, path, token string) (int, http.Header, []byte) {
	t.Helper()
	return a.do(t, http.MethodGet, path, token, "")
}

// signup creates a user and returns a token for it.
func (a *depAPI) signup(t *testing.T, name string) string {
	t.Helper()
	body := fmt.Sprintf(`{"username":%q,"email":"%s@example.com","password":"Passw0rd!x"}`, name, name)
	if st, _, b := a.do(t, "POST", "/api/v1/users", "", body); st != http.StatusCreated {
		t.Fatalf("signup: %d %s", st, b)
	}
	st, _, b := a.do(t, "POST", "/api/v1/auth/login", "", fmt.Sprintf(`{"username":%q,"password":"Passw0rd!x"}`, name))
	if st != http.StatusOK {
		t.Fatalf("login: %d %s", st, b)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("login body %s: %v", b, err)
	}
	return tok.AccessToken
}

func (a *depAPI) createItem(t *testing.T, token, name string) (int, int64) {
	t.Helper()
	st, _, b := a.do(t, "POST", "/api/v1/items", token, fmt.Sprintf(`{"name":%q,"description":"d"}`, name))
	if st != http.StatusCreated {
		return st, 0
	}
	var it struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(b, &it); err != nil {
		t.Fatalf("create item body %s: %v", b, err)
	}
	return st, it.ID
}

// metric returns the value of the series name{labels} on the admin
// listener's /metrics, and whether it exists.
func (a *depAPI) metric(t *testing.T, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	resp, err := depClient.Get(a.admin + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	mf, ok := families[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		for k, v := range labels {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

// within polls f every 50 ms until it returns nil, failing the test with
// f's last error after d. It returns how long it took.
func within(t *testing.T, d time.Duration, what string, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := f()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type problem struct {
	Status int               `json:"status"`
	Code   string            `json:"code"`
	Detail string            `json:"detail"`
	Checks map[string]string `json:"checks"`
}

func decodeProblem(t *testing.T, h http.Header, b []byte) problem {
	t.Helper()
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("Content-Type %q, want application/problem+json; body %s", ct, b)
	}
	var p problem
	if err := json.Unmarshal(b, &p); err != nil {
		t.Errorf("problem body %s: %v", b, err)
	}
	return p
}

func TestPostgresOutageThroughTheAPI(t *testing.T) {
	short := map[string]string{"DB_QUERY_TIMEOUT": "1s", "DB_CONNECT_TIMEOUT": "500ms"}
	for _, tc := range []struct {
		name string
		mode tcpproxy.Mode
		env  map[string]string
	}{
		{"refused", tcpproxy.Refuse, short},
		{"hung", tcpproxy.Blackhole, short},
		// The defaults (5 s query timeout, 2 s connect timeout, 2 s
		// readiness checks) meet "503 within 5 s" on their own.
		{"hung with default timeouts", tcpproxy.Blackhole, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			direct := pgtest.NewDatabase(t)
			p, err := tcpproxy.Start(pgtest.Host(t, direct))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			env := map[string]string{
				"DATABASE_URL":       pgtest.WithHost(t, direct, p.Addr()),
				"DB_MIN_CONNS":       "2",
				"DB_MAX_CONNS":       "8",
				"RATE_LIMIT_ENABLED": "false",
			}
			for k, v := range tc.env {
				env[k] = v
			}
			api := startDepAPI(t, env)
			token := api.signup(t, "pgowner")
			st, id := api.createItem(t, token, "before")
			if st != http.StatusCreated {
				t.Fatalf("create item: %d", st)
			}
			if v, ok := api.metric(t, "app_db_pool_connections", map[string]string{"db": "postgres", "state": "max"}); !ok || v != 8 {
				t.Errorf(`app_db_pool_connections{db="postgres",state="max"} = %v (present %v), want 8`, v, ok)
			}

			p.Set(tc.mode)
			took := within(t, 5*time.Second, "/health/ready turns 503", func() error {
				st, h, b := api.get(t, "/health/ready", "")
				if st != http.StatusServiceUnavailable {
					return fmt.Errorf("status %d", st)
				}
				pr := decodeProblem(t, h, b)
				if !strings.Contains(pr.Detail, "database") || !strings.HasPrefix(pr.Checks["database"], "unhealthy: ") {
					return fmt.Errorf("503 does not name the database: %s", b)
				}
				return nil
			})
			t.Logf("readiness 503 naming the database %v after the cut", took.Round(time.Millisecond))

			// Requests that need the database get a 503 problem, bounded by
			// the query timeout (the client gives up at 15 s: a hang).
			var wg sync.WaitGroup
			for _, req := range []struct{ method, path, body string }{
				{"GET", fmt.Sprintf("/api/v1/items/%d", id), ""},
				{"GET", "/api/v1/items", ""},
				{"POST", "/api/v1/items", `{"name":"during"}`},
				{"GET", "/api/v1/users/me", ""},
			} {
				wg.Go(func() {
					start := time.Now()
					st, h, b := api.do(t, req.method, req.path, token, req.body)
					if st != http.StatusServiceUnavailable {
						t.Errorf("%s %s with the database down: %d %s, want 503", req.method, req.path, st, b)
						return
					}
					if pr := decodeProblem(t, h, b); pr.Status != 503 || h.Get("Retry-After") == "" {
						t.Errorf("%s %s: problem %+v, Retry-After %q", req.method, req.path, pr, h.Get("Retry-After"))
					}
					t.Logf("%s %s: 503 after %v", req.method, req.path, time.Since(start).Round(time.Millisecond))
				})
			}
			wg.Wait()
			if v, ok := api.metric(t, "app_dependency_up", map[string]string{"dependency": "database"}); !ok || v != 0 {
				t.Errorf(`app_dependency_up{dependency="database"} = %v (present %v), want 0`, v, ok)
			}
			st, _, b := api.get(t, "/health/detailed", "")
			if st != http.StatusOK || !bytes.Contains(b, []byte(`"status":"unhealthy"`)) {
				t.Errorf("/health/detailed with the database down: %d %s", st, b)
			}

			p.Set(tcpproxy.Forward)
			took = within(t, 5*time.Second, "the API recovers", func() error {
				if st, _, b := api.get(t, "/health/ready", ""); st != http.StatusOK {
					return fmt.Errorf("ready: %d %s", st, b)
				}
				if st, _, b := api.get(t, fmt.Sprintf("/api/v1/items/%d", id), token); st != http.StatusOK {
					return fmt.Errorf("item: %d %s", st, b)
				}
				return nil
			})
			t.Logf("recovered %v after the database came back", took.Round(time.Millisecond))
			within(t, 5*time.Second, "app_dependency_up back to 1", func() error {
				if v, _ := api.metric(t, "app_dependency_up", map[string]string{"dependency": "database"}); v != 1 {
					return fmt.Errorf("value %v", v)
				}
				return nil
			})
		})
	}
}

// Clients keep creating items through the API while the database drops
// out and returns. Afterwards every 201 is in the database exactly once,
// nothing is stored twice, and every failure was a 503.
func TestPostgresOutageLosesNoCommittedWrite(t *testing.T) {
	direct := pgtest.NewDatabase(t)
	p, err := tcpproxy.Start(pgtest.Host(t, direct))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	api := startDepAPI(t, map[string]string{
		"DATABASE_URL": pgtest.WithHost(t, direct, p.Addr()), "DB_MIN_CONNS": "2", "DB_MAX_CONNS": "8",
		"DB_QUERY_TIMEOUT": "1s", "DB_CONNECT_TIMEOUT": "500ms", "RATE_LIMIT_ENABLED": "false",
	})
	token := api.signup(t, "writer")

	var (
		mu       sync.Mutex
		acked    = map[string]int64{}
		statuses = map[int]int{}
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w%d-%d", w, i)
				st, id := api.createItem(t, token, name)
				mu.Lock()
				statuses[st]++
				if st == http.StatusCreated {
					acked[name] = id
				}
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	time.Sleep(400 * time.Millisecond)
	p.Set(tcpproxy.Refuse)
	time.Sleep(time.Second)
	p.Set(tcpproxy.Forward)
	within(t, 5*time.Second, "recover", func() error {
		if st, _, b := api.get(t, "/health/ready", ""); st != http.StatusOK {
			return fmt.Errorf("%d %s", st, b)
		}
		return nil
	})
	time.Sleep(400 * time.Millisecond)
	close(stop)
	wg.Wait()

	for st, n := range statuses {
		if st != http.StatusCreated && st != http.StatusServiceUnavailable {
			t.Errorf("%d writes answered %d; want only 201 or 503", n, st)
		}
	}
	if statuses[http.StatusServiceUnavailable] == 0 {
		t.Error("no write failed: the outage did not happen")
	}

	check, err := postgres.Open(t.Context(), postgres.Config{URL: direct, MinConns: 1, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	rows, err := check.Pool().Query(t.Context(), `SELECT name, count(*), min(id) FROM items GROUP BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	stored := map[string]int64{}
	for rows.Next() {
		var (
			name string
			n    int
			id   int64
		)
		if err := rows.Scan(&name, &n, &id); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("item %q stored %d times", name, n)
		}
		stored[name] = id
	}
	for name, id := range acked {
		if stored[name] != id {
			t.Errorf("acknowledged item %q (id %d) lost", name, id)
		}
	}
	t.Logf("statuses %v; stored %d, acknowledged %d (in doubt: %d)", statuses, len(stored), len(acked), len(stored)-len(acked))
}

func TestRedisOutageThroughTheAPI(t *testing.T) {
	for _, mode := range []redislimit.Mode{redislimit.FailOpen, redislimit.FailClosed} {
		t.Run(string(mode), func(t *testing.T) {
			target := redistest.Addr(t)
			p, err := tcpproxy.Start(target)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			o := redistest.Options(t, p.Addr())
			api := startDepAPI(t, map[string]string{
				"REDIS_URL":                fmt.Sprintf("redis://%s/%d", p.Addr(), o.DB),
				"REDIS_KEY_PREFIX":         redistest.Prefix(t),
				"RATE_LIMIT_REDIS_FAILURE": string(mode),
				"RATE_LIMIT_USER":          "100/1s:100",
				"READY_CACHE_TTL":          "1ms", // /health/detailed must run the checks, not reuse start-up's
				// The default: cut off, requests must give up on Redis
				// quickly. Until the cut, it can also expire on a loaded
				// machine, so that phase retries what the fallback refuses
				// and polls for the cache hits.
				"REDIS_TIMEOUT": "100ms",
			})
			api.retry429 = true
			token := api.signup(t, "cacheuser")
			_, id := api.createItem(t, token, "cached")
			itemPath := fmt.Sprintf("/api/v1/items/%d", id)
			within(t, 10*time.Second, "two cache hits before the cut", func() error {
				if st, _, b := api.get(t, itemPath, token); st != http.StatusOK {
					t.Fatalf("read: %d %s", st, b)
				}
				if v, _ := api.metric(t, "app_cache_requests_total", map[string]string{"cache": "items", "result": "hit"}); v < 2 {
					return fmt.Errorf("cache hits = %v", v)
				}
				return nil
			})
			api.retry429 = false

			for _, cut := range []tcpproxy.Mode{tcpproxy.Refuse, tcpproxy.Blackhole} {
				p.Set(cut)
				statuses := map[int]int{}
				for range 20 {
					start := time.Now()
					st, h, b := api.get(t, itemPath, token)
					statuses[st]++
					if st >= 500 || st == 0 {
						t.Errorf("read with Redis down (%s, cut %d): %d %s", mode, cut, st, b)
					}
					if st == http.StatusTooManyRequests && h.Get("Retry-After") == "" {
						t.Errorf("429 without Retry-After")
					}
					if took := time.Since(start); took > 5*time.Second {
						t.Errorf("read with Redis down took %v", took)
					}
				}
				switch mode {
				case redislimit.FailOpen:
					if statuses[http.StatusOK] != 20 {
						t.Errorf("fail-open with Redis down (cut %d): statuses %v, want 20 × 200 from the in-process limits", cut, statuses)
					}
				case redislimit.FailClosed:
					if statuses[http.StatusTooManyRequests] != 20 {
						t.Errorf("fail-closed with Redis down (cut %d): statuses %v, want 20 × 429", cut, statuses)
					}
				}
				t.Logf("mode %s, cut %d: statuses %v", mode, cut, statuses)
			}

			// Readiness stays 200 (Redis is optional); the report and the
			// metrics show the degradation.
			if st, _, b := api.get(t, "/health/ready", ""); st != http.StatusOK {
				t.Errorf("/health/ready with Redis down: %d %s, want 200", st, b)
			}
			st, _, b := api.get(t, "/health/detailed", "")
			var detailed struct {
				Status string         `json:"status"`
				Checks map[string]any `json:"checks"`
				Deps   []struct {
					Name, Status string
					Optional     bool
				} `json:"dependencies"`
			}
			if err := json.Unmarshal(b, &detailed); err != nil || st != http.StatusOK {
				t.Fatalf("/health/detailed: %d %s", st, b)
			}
			var redisStatus string
			for _, c := range detailed.Deps {
				if c.Name == "redis" {
					redisStatus = c.Status
				}
			}
			if detailed.Status != "degraded" || redisStatus != "degraded" || detailed.Checks["redis"] != "unhealthy: unavailable" {
				t.Errorf("/health/detailed with Redis down: %s", b)
			}
			if v, ok := api.metric(t, "app_dependency_up", map[string]string{"dependency": "redis"}); !ok || v != 0 {
				t.Errorf(`app_dependency_up{dependency="redis"} = %v (present %v), want 0`, v, ok)
			}
			if v, _ := api.metric(t, "app_ratelimit_fallback_total", map[string]string{"mode": string(mode)}); v < 1 {
				t.Errorf(`app_ratelimit_fallback_total{mode=%q} = %v, want > 0`, mode, v)
			}
			if v, _ := api.metric(t, "app_cache_requests_total", map[string]string{"cache": "items", "result": "error"}); mode == redislimit.FailOpen && v < 1 {
				t.Errorf(`app_cache_requests_total{result="error"} = %v, want > 0`, v)
			}

			p.Set(tcpproxy.Forward)
			// A guard well past the one-second cooldowns: a call that
			// overruns the short timeout now starts another.
			took := within(t, 10*time.Second, "Redis back in use", func() error {
				// Traffic brings Redis back into use (after the cache's and
				// limiter's cooldowns) and reports it; no probe needed.
				st, h, b := api.get(t, itemPath, token)
				if st != http.StatusOK || h.Get("RateLimit-Limit") != "100" {
					return fmt.Errorf("read: %d %s", st, b)
				}
				if v, _ := api.metric(t, "app_dependency_up", map[string]string{"dependency": "redis"}); v != 1 {
					return fmt.Errorf("app_dependency_up{redis} = %v", v)
				}
				return nil
			})
			t.Logf("Redis in use again %v after it returned", took.Round(time.Millisecond))
		})
	}
}

// An outage injected at /debug/fault takes the paths of a real one: the
// cache and the rate limiter fall back (no 5xx), /health/detailed and
// app_dependency_up show Redis down, and all of it clears when the fault is
// removed.
func TestRedisFaultInjection(t *testing.T) {
	api := startDepAPI(t, map[string]string{
		"REDIS_URL":                redistest.URL(t),
		"REDIS_KEY_PREFIX":         redistest.Prefix(t),
		"RATE_LIMIT_REDIS_FAILURE": string(redislimit.FailOpen),
		"RATE_LIMIT_USER":          "100/1s:100",
		"READY_CACHE_TTL":          "1ms", // /health/detailed must run the checks, not reuse start-up's
	})
	token := api.signup(t, "faultuser")
	_, id := api.createItem(t, token, "cached")
	itemPath := fmt.Sprintf("/api/v1/items/%d", id)
	if st, _, b := api.get(t, itemPath, token); st != http.StatusOK {
		t.Fatalf("read: %d %s", st, b)
	}
	counter := func(name string, labels map[string]string) float64 {
		v, _ := api.metric(t, name, labels)
		return v
	}
	cacheErr := map[string]string{"cache": "items", "result": "error"}
	fallback := map[string]string{"mode": string(redislimit.FailOpen)}
	errs0, fb0 := counter("app_cache_requests_total", cacheErr), counter("app_ratelimit_fallback_total", fallback)

	setFault := func(method, body string) {
		t.Helper()
		req, err := http.NewRequest(method, api.admin+"/debug/fault", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := depClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s /debug/fault %s: %d %s", method, body, resp.StatusCode, b)
		}
	}
	setFault("PUT", `{"outages":["redis"]}`)
	for range 5 {
		if st, _, b := api.get(t, itemPath, token); st != http.StatusOK {
			t.Errorf("read during an injected Redis outage: %d %s, want 200", st, b)
		}
	}
	if v := counter("app_cache_requests_total", cacheErr); v <= errs0 {
		t.Errorf(`app_cache_requests_total{result="error"} = %v, want > %v: the cache still used Redis`, v, errs0)
	}
	if v := counter("app_ratelimit_fallback_total", fallback); v <= fb0 {
		t.Errorf(`app_ratelimit_fallback_total = %v, want > %v: the limiter still used Redis`, v, fb0)
	}
	if st, _, b := api.get(t, "/health/detailed", ""); st != http.StatusOK || !strings.Contains(string(b), `"degraded"`) {
		t.Errorf("/health/detailed during an injected Redis outage: %d %s, want 200 degraded", st, b)
	}
	if v, ok := api.metric(t, "app_dependency_up", map[string]string{"dependency": "redis"}); !ok || v != 0 {
		t.Errorf(`app_dependency_up{dependency="redis"} = %v (present %v), want 0`, v, ok)
	}

	setFault("DELETE", "")
	within(t, 5*time.Second, "Redis back in use", func() error {
		st, _, b := api.get(t, itemPath, token)
		if st != http.StatusOK {
			return fmt.Errorf("read: %d %s", st, b)
		}
		if v, _ := api.metric(t, "app_dependency_up", map[string]string{"dependency": "redis"}); v != 1 {
			return fmt.Errorf("app_dependency_up{redis} = %v", v)
		}
		return nil
	})
}

// Two API instances sharing one Redis share the user's quota.
func TestRateLimitSharedAcrossInstances(t *testing.T) {
	redistest.URL(t)
	pgURL := pgtest.NewDatabase(t) // both instances need the same users
	env := map[string]string{
		"DATABASE_URL":     pgURL,
		"DB_MIN_CONNS":     "1",
		"DB_MAX_CONNS":     "4",
		"REDIS_URL":        redistest.URL(t),
		"REDIS_KEY_PREFIX": redistest.Prefix(t),
		"RATE_LIMIT_USER":  "1/1h:6",
		"JWT_SECRET":       strings.Repeat("k", 40),
	}
	a, b := startDepAPI(t, env), startDepAPI(t, env)
	token := a.signup(t, "quota")
	statuses := map[int]int{}
	for i := range 10 {
		api := a
		if i%2 == 1 {
			api = b
		}
		st, _, body := api.get(t, "/api/v1/users/me", token)
		if st != http.StatusOK && st != http.StatusTooManyRequests {
			t.Fatalf("request %d: %d %s", i, st, body)
		}
		statuses[st]++
	}
	if statuses[http.StatusOK] != 6 || statuses[http.StatusTooManyRequests] != 4 {
		t.Errorf("10 requests over two instances against a burst of 6: %v, want 6 × 200 and 4 × 429", statuses)
	}
}

func TestConfigDependencySettings(t *testing.T) {
	env := map[string]string{
		"DB_MIN_CONNS": "3", "DB_MAX_CONNS": "9", "DB_QUERY_TIMEOUT": "1500ms", "DB_MAX_CONN_LIFETIME": "1h",
		"RATE_LIMIT_REDIS_FAILURE": "closed", "CACHE_TTL": "2m", "REDIS_TIMEOUT": "50ms",
	}
	cfg, err := parseConfig([]string{"x", "-env-file="}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := dbConfig{MinConns: 3, MaxConns: 9, QueryTimeout: 1500 * time.Millisecond, MaxConnLifetime: time.Hour}
	if cfg.DB != want || cfg.RedisFailure != redislimit.FailClosed || cfg.CacheTTL != 2*time.Minute ||
		cfg.RedisTimeout != 50*time.Millisecond || cfg.RedisKeyPrefix != "glasshouse:" {
		t.Errorf("config: DB %+v, failure %q, ttl %v, timeout %v, prefix %q", cfg.DB, cfg.RedisFailure, cfg.CacheTTL, cfg.RedisTimeout, cfg.RedisKeyPrefix)
	}

	bad := map[string]string{
		"DB_MIN_CONNS": "0", "DB_MAX_CONNS": "many", "DB_QUERY_TIMEOUT": "-1s", "DB_CONNECT_TIMEOUT": "soon",
		"RATE_LIMIT_REDIS_FAILURE": "maybe", "CACHE_TTL": "0s",
	}
	_, err = parseConfig([]string{"x", "-env-file="}, func(k string) string { return bad[k] }, io.Discard)
	if err == nil {
		t.Fatal("bad dependency settings accepted")
	}
	for k := range bad {
		if !strings.Contains(err.Error(), k+":") {
			t.Errorf("error does not report %s:\n%v", k, err)
		}
	}
}

func TestBadDependencyURLsFailStartClearly(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"DATABASE_URL": "mysql://u:hunter2@db/app"}, "DATABASE_URL: want a postgres:// URL"},
		{map[string]string{"DATABASE_URL": "postgres://u:hunter2@127.0.0.1:notaport/app"}, "DATABASE_URL"},
		{map[string]string{"REDIS_URL": "redis://u:hunter2@127.0.0.1:notaport/0"}, "REDIS_URL"},
		{map[string]string{"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL"},
	} {
		e := map[string]string{"ADDR": "127.0.0.1:0", "ADMIN_ADDR": "", "DATA_DIR": t.TempDir(), "LOG_FORMAT": "json"}
		for k, v := range tc.env {
			e[k] = v
		}
		var logs syncbuf.Buffer
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		err := run(ctx, []string{"glasshouse-api", "-env-file="}, func(k string) string { return e[k] }, strings.NewReader(""), &logs, &logs)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want an error containing %q", tc.env, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(logs.String(), "hunter2") {
			t.Errorf("%v: the password leaked: %v\n%s", tc.env, err, logs.String())
		}
	}
}

// openDeps with PostgreSQL and Redis produces query spans under the
// request's span for both, and exports both pools' metrics.
func TestDepsSpansAndPoolMetrics(t *testing.T) {
	redisURL := redistest.URL(t)
	pgURL := pgtest.NewDatabase(t)
	rec := tracetest.NewSpanRecorder()
	tel, err := telemetry.New(t.Context(), telemetry.Config{LogWriter: io.Discard, LogFormat: "json",
		Getenv: func(string) string { return "" }, SpanProcessors: []sdktrace.SpanProcessor{rec}})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.WithoutCancel(t.Context()))
	cfg := config{
		DatabaseURL: telemetry.Secret(pgURL),
		// Exact cache counts below: Redis calls get a hang guard, not a
		// timeout a loaded machine can reach (see startDepAPI).
		RedisURL:       telemetry.Secret(testenv.RedisHangGuardURL(t, redisURL)),
		RedisKeyPrefix: redistest.Prefix(t), CacheTTL: time.Minute, RedisTimeout: testenv.RedisHangGuard,
		RedisFailure: redislimit.FailOpen, DB: dbConfig{MinConns: 1, MaxConns: 4},
	}
	d, err := openDeps(t.Context(), cfg, tel, fault.New(fault.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	store, limiter, checks := d.Store, d.Limiter, d.Checks
	defer func() {
		if err := d.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	if len(checks) != 2 || checks[0].Name != "database" || checks[0].Optional || checks[1].Name != "redis" || !checks[1].Optional {
		t.Errorf("checks = %+v, want required database and optional redis", checks)
	}

	ctx, parent := tel.Tracer.Start(t.Context(), "request")
	u := app.User{Username: "spans", Email: "spans@example.com", PasswordHash: "h"}
	if err := store.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	it := app.Item{OwnerID: u.ID, Name: "traced"}
	if err := store.CreateItem(ctx, &it); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := store.Item(ctx, u.ID, it.ID); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := limiter.Allow(ctx, "user:1", ratelimit.Limit{Rate: 1, Period: time.Second, Burst: 1}); err != nil || !d.Allowed {
		t.Fatalf("limiter: %+v, %v", d, err)
	}
	parent.End()

	children := map[string]map[string]string{}
	var redisSpans int
	for _, sp := range rec.Ended() {
		if sp.Parent().SpanID() != parent.SpanContext().SpanID() {
			continue
		}
		attrs := map[string]string{}
		for _, kv := range sp.Attributes() {
			attrs[string(kv.Key)] = kv.Value.String()
		}
		children[sp.Name()] = attrs
		if attrs["db.system"] == "redis" || attrs["db.system.name"] == "redis" {
			redisSpans++
		}
	}
	for _, name := range []string{"INSERT users", "INSERT items", "SELECT items"} {
		if a, ok := children[name]; !ok || a["db.system.name"] != "postgresql" {
			t.Errorf("no PostgreSQL span %q under the request (children: %v)", name, keys(children))
		}
	}
	// An MGET per read, the fill and the rate-limit script.
	if redisSpans < 4 {
		t.Errorf("%d Redis spans under the request, want >= 4 (children: %v)", redisSpans, keys(children))
	}

	got := map[string]float64{}
	mfs, err := tel.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, lp := range m.GetLabel() {
				key += "," + lp.GetName() + "=" + lp.GetValue()
			}
			got[key] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	if v := got["app_db_pool_connections,db=postgres,state=max"]; v != 4 {
		t.Errorf(`app_db_pool_connections{db="postgres",state="max"} = %v, want 4`, v)
	}
	if v := got["app_db_pool_connections,db=postgres,state=total"]; v < 1 {
		t.Errorf(`app_db_pool_connections{db="postgres",state="total"} = %v, want >= 1`, v)
	}
	if _, ok := got["app_db_pool_wait_seconds_total,db=postgres"]; !ok {
		t.Error("app_db_pool_wait_seconds_total{db=\"postgres\"} missing")
	}
	if v := got["app_redis_pool_connections,state=total"]; v < 1 {
		t.Errorf(`app_redis_pool_connections{state="total"} = %v, want >= 1`, v)
	}
	if got["app_cache_requests_total,cache=items,result=hit"] != 1 || got["app_cache_requests_total,cache=items,result=miss"] != 1 {
		t.Errorf("cache counts: hit %v miss %v, want 1 and 1",
			got["app_cache_requests_total,cache=items,result=hit"], got["app_cache_requests_total,cache=items,result=miss"])
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
