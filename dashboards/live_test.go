package dashboards

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/internal/integration"
	"github.com/glasshouse-dev/glasshouse/internal/testenv"
)

// The live test's bounds: everything runs on loopback and stops by itself.
const (
	liveRateInterval = "20s"             // $__rate_interval: 20 scrapes at 1s
	liveDeadline     = 150 * time.Second // from first traffic to giving up on a query
	livePoll         = 2 * time.Second   // between evaluation rounds
	liveMaxRequests  = 20000             // hard cap on driver requests
	liveLoadDuration = 3 * time.Minute   // load generator run (killed earlier)
	liveHTTPTimeout  = 10 * time.Second

	// The request mix: liveSlowClients clients upload bodies with a
	// liveSlowPause pause (slower than the 250ms latency SLO threshold),
	// and each round of fast requests ends with liveBurst more slow
	// uploads at once, past the concurrency limit (liveConcurrency in
	// flight), so the API rejects some with 503. Well over 14.4% of non-5xx
	// requests are slow and several percent of all requests are 503:
	// enough for both SLOs' fast-burn alerts (14.4x budget) to go pending.
	liveSlowClients = 6
	liveSlowPause   = 300 * time.Millisecond
	liveBurst       = 6
	liveConcurrency = 8
	livePause       = 300 * time.Millisecond
)

// liveAllow lists queries allowed to return no data in the live run, each
// with the reason the data genuinely cannot exist there. Keys are
// "<dashboard uid>/<panel title>/<refId>". Conditional entries are added in
// TestLive (no Redis, no load generator).
var liveAllow = map[string]string{
	"glasshouse-red/Recovered panics/A":                       "no handler panics in a healthy API; app_http_panics_recovered_total{route} appears only after one",
	"glasshouse-runtime/Rate-limit decisions without Redis/A": "app_ratelimit_fallback_total{mode} appears only while Redis is unreachable",
	"glasshouse-loadtest/Iterations and dropped iterations/B": "the generator drops iterations only when every VU is busy; a 2 iterations/s run never does, and k6_dropped_iterations_total appears with the first drop",
}

// TestLive proves every dashboard query returns data: it builds and starts
// the real API on loopback, a real Prometheus scraping it every second with
// the generated SLO rules, optionally the load generator, drives traffic
// with 4xx, 429, 5xx and slow requests, then evaluates every panel query
// (template variables substituted) through Prometheus's HTTP API. A query
// that errors or returns no series fails the test unless liveAllow says why.
// Set TEST_DATABASE_URL / TEST_REDIS_URL to cover the PostgreSQL and Redis
// panels.
func TestLive(t *testing.T) {
	if _, err := exec.LookPath("prometheus"); err != nil {
		integration.Skip(t, "prometheus binary not in PATH (Debian: apt-get install prometheus): skipping the live dashboard check")
	}
	if testing.Short() {
		t.Skip("-short: skipping the live dashboard check (about a minute)")
	}
	spec := loadSpec(t)
	dir := t.TempDir()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}

	apiBin := testenv.BuildBinary(t, root, "./app/cmd/glasshouse-api", dir)
	apiAddr, adminAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	env := []string{
		"ADDR=" + apiAddr, "ADMIN_ADDR=" + adminAddr,
		"DATA_DIR=" + filepath.Join(dir, "data"),
		"APP_ENV=development", "LOG_FORMAT=json", "LOG_LEVEL=info",
		"OTEL_SERVICE_NAME=glasshouse-api",
		"CONCURRENCY_LIMIT=" + strconv.Itoa(liveConcurrency),
		// Every driver request comes from 127.0.0.1: no per-client share,
		// so the bursts reach the concurrency limit itself.
		"CONCURRENCY_LIMIT_PER_IP=0",
	}
	allow := maps.Clone(liveAllow)
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		env = append(env, "DATABASE_URL="+u)
	}
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		env = append(env, "REDIS_URL="+u)
	} else {
		for _, k := range []string{"glasshouse-runtime/Redis pool connections/A", "glasshouse-runtime/Cache lookups by result/A"} {
			allow[k] = "TEST_REDIS_URL unset: the API runs without Redis, so there is no Redis pool and no cache"
		}
	}
	api := testenv.Start(t, dir, "api", apiBin, nil, env)
	waitOK(t, api, "http://"+apiAddr+"/health/ready")

	// The load generator, when its CLI exists.
	loadAddr := ""
	if _, err := os.Stat(filepath.Join(root, "loadtest/cmd/glasshouse-load")); err == nil {
		loadBin := testenv.BuildBinary(t, root, "./loadtest/cmd/glasshouse-load", dir)
		loadAddr = testenv.FreeAddr(t)
		testenv.Start(t, dir, "load", loadBin, loadArgs(root, "http://"+apiAddr, loadAddr), nil)
	} else {
		t.Log("loadtest/cmd/glasshouse-load does not exist yet: the load-test dashboard's k6_* queries are allowed to be empty")
	}

	rulesDir := writeLiveRules(t, root, dir)
	promCfg := filepath.Join(dir, "prometheus.yml")
	writePromConfig(t, promCfg, rulesDir, adminAddr, loadAddr)
	prom := testenv.StartPrometheus(t, promCfg) // with exemplar storage

	// Drive traffic until the evaluation is over.
	ctx, stop := context.WithCancel(t.Context())
	drv := &driver{api: "http://" + apiAddr, client: &http.Client{Timeout: liveHTTPTimeout}}
	var wg sync.WaitGroup
	wg.Go(func() { drv.run(ctx, t) })
	t.Cleanup(func() { stop(); wg.Wait() })

	// The queries, with variables substituted; $slo-dependent ones once
	// per SLO of the spec.
	type liveQuery struct {
		Query
		key, expr, allowed string
		ok                 bool
		last               string
	}
	var qs []*liveQuery
	for _, d := range All(spec) {
		for _, q := range Queries(d) {
			sloValues := []string{""}
			if strings.Contains(q.Expr, "$"+SLOVar) {
				sloValues = nil
				for _, o := range spec.SLOs {
					sloValues = append(sloValues, o.Name)
				}
			}
			for _, sv := range sloValues {
				vars := liveVars(sv)
				e, err := Expand(q.Expr, vars)
				if err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				key := d.UID + "/" + q.Panel + "/" + q.RefID
				lq := &liveQuery{Query: q, key: key, expr: e, allowed: allow[key]}
				if loadAddr == "" && strings.Contains(e, "k6_") {
					lq.allowed = "load generator CLI not available"
				}
				if sv != "" {
					lq.key += " (slo=" + sv + ")"
				}
				qs = append(qs, lq)
			}
		}
	}
	for k := range allow {
		if !slices.ContainsFunc(qs, func(q *liveQuery) bool { return q.key == k }) {
			t.Errorf("allow-list entry %q matches no query: remove it", k)
		}
	}

	deadline := time.Now().Add(liveDeadline)
	for round := 0; ; round++ {
		pending := 0
		for _, q := range qs {
			if q.ok {
				continue
			}
			n, err := promQuery(ctx, prom, q.expr)
			switch {
			case err != nil:
				q.last = err.Error()
			case n == 0:
				q.last = "no series with a value"
			default:
				q.ok, q.last = true, ""
			}
			if !q.ok && q.allowed == "" {
				pending++
			}
		}
		if pending == 0 || time.Now().After(deadline) {
			t.Logf("evaluation round %d: %d queries, %d still without data", round, len(qs), pending)
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(livePoll):
		}
	}
	stats := drv.stats()
	t.Logf("driver: %s", stats)
	passed, allowed := 0, 0
	for _, q := range qs {
		switch {
		case q.ok:
			passed++
			if q.allowed != "" {
				t.Logf("allow-listed query had data anyway: %s", q.key)
			}
		case q.allowed != "":
			allowed++
			t.Logf("allowed empty: %s: %s", q.key, q.allowed)
		default:
			t.Errorf("%s: %s\n  query: %s", q.key, q.last, q.expr)
		}
	}
	t.Logf("%d queries returned data, %d allowed empty, %d failed", passed, allowed, len(qs)-passed-allowed)

	if os.Getenv("TEST_DATABASE_URL") != "" {
		// The pool panels must show PostgreSQL's pool, not SQLite's.
		if n, err := promQuery(ctx, prom, `app_db_pool_connections{job="glasshouse-api",db="postgres"}`); err != nil || n == 0 {
			t.Errorf("TEST_DATABASE_URL is set but app_db_pool_connections has no db=\"postgres\" series (n=%d, err=%v)", n, err)
		}
	}
	checkRules(t, prom)
	checkExemplars(t, prom, drv.traceIDs())
}

// liveVars are the template variable values of the live run: job, the
// SLO service, instance and route as Grafana's defaults (All), a rate interval that suits a 1s
// scrape, and one SLO.
func liveVars(sloName string) map[string]string {
	return map[string]string{
		"__rate_interval": liveRateInterval, "__range": "5m", "__interval": "1s",
		"job": DefaultJob, "instance": ".+", "route": ".+", "loadjob": DefaultLoadJob, "scenario": ".*",
		SLOVar: sloName, ServiceVar: "glasshouse-api",
	}
}

// loadArgs runs the load generator's "average" scenario (a ramping
// arrival rate, so schedule lag is measured) at a low rate against api, with
// its Prometheus endpoint on addr, long enough to outlive the evaluation.
func loadArgs(root, api, addr string) []string {
	return []string{"-target", api, "-scenario", "average", "-rate", "2", "-users", "3",
		"-duration", liveLoadDuration.String(), "-slo", filepath.Join(root, "alerts/slo.yaml"),
		"-prometheus", "-prometheus-addr", addr, "-quiet"}
}

// waitOK waits until u answers 200, for at most 30s (a hang guard); it
// fails the test when p exits first.
func waitOK(t *testing.T, p *testenv.Process, u string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := testenv.WaitReady(ctx, p, u); err != nil {
		t.Fatal(err)
	}
}

// writeLiveRules copies alerts/generated/*.yaml into dir/rules with every
// group evaluated each second. Rule names and expressions are untouched;
// only the period group's 1m interval would otherwise delay the period
// series past the test's patience.
func writeLiveRules(t *testing.T, root, dir string) string {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(root, "alerts/generated/*.yaml"))
	if len(paths) == 0 {
		t.Fatal("no rule files under alerts/generated: run `make rules`")
	}
	return testenv.RulesEverySecond(t, filepath.Join(dir, "rules"), paths)
}

func writePromConfig(t *testing.T, path, rulesDir, admin, load string) {
	t.Helper()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %s/*.yaml
scrape_configs:
  - job_name: %s
    static_configs:
      - targets: [%q]
`, rulesDir, DefaultJob, admin)
	if load != "" {
		cfg += fmt.Sprintf(`  - job_name: %s
    static_configs:
      - targets: [%q]
`, DefaultLoadJob, load)
	}
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// promQuery evaluates expr now and returns how many series (or a scalar)
// carry a value that is not NaN: a panel of NaN shows nothing. (An
// infinite value counts: unlike testenv's Query, which leaves it out.)
func promQuery(ctx context.Context, prom *testenv.Prometheus, expr string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, liveHTTPTimeout)
	defer cancel()
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := prom.API(ctx, "/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return 0, err
	}
	switch data.ResultType {
	case "vector":
		var v []struct {
			Value [2]any `json:"value"`
		}
		if err := json.Unmarshal(data.Result, &v); err != nil {
			return 0, err
		}
		n := 0
		for _, s := range v {
			if f, err := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64); err == nil && !math.IsNaN(f) {
				n++
			}
		}
		return n, nil
	case "scalar":
		return 1, nil
	default:
		return 0, fmt.Errorf("unexpected result type %q", data.ResultType)
	}
}

// checkRules fails when Prometheus reports a generated rule unhealthy.
func checkRules(t *testing.T, prom *testenv.Prometheus) {
	t.Helper()
	var data struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Name      string `json:"name"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"rules"`
		} `json:"groups"`
	}
	ctx, cancel := context.WithTimeout(t.Context(), liveHTTPTimeout)
	defer cancel()
	if err := prom.API(ctx, "/api/v1/rules", nil, &data); err != nil {
		t.Fatalf("rules: %v", err)
	}
	n := 0
	for _, g := range data.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health != "ok" {
				t.Errorf("rule %s/%s health %q: %s", g.Name, r.Name, r.Health, r.LastError)
			}
		}
	}
	if n == 0 {
		t.Error("Prometheus loaded no rules from alerts/generated")
	}
}

// checkExemplars proves the latency panels' exemplars open real traces: the
// exemplars Prometheus stored carry a trace_id that the API returned to the
// driver in a traceresponse header.
func checkExemplars(t *testing.T, prom *testenv.Prometheus, seen map[string]bool) {
	t.Helper()
	expr, _ := Expand(fmt.Sprintf(`http_server_request_duration_seconds_bucket{%s}`, sel), liveVars(""))
	now := time.Now()
	q := url.Values{"query": {expr}, "start": {strconv.FormatInt(now.Add(-10*time.Minute).Unix(), 10)}, "end": {strconv.FormatInt(now.Unix(), 10)}}
	var data []struct {
		Exemplars []struct {
			Labels map[string]string `json:"labels"`
		} `json:"exemplars"`
	}
	ctx, cancel := context.WithTimeout(t.Context(), liveHTTPTimeout)
	defer cancel()
	if err := prom.API(ctx, "/api/v1/query_exemplars", q, &data); err != nil {
		t.Fatalf("query_exemplars: %v", err)
	}
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	total, known := 0, 0
	for _, s := range data {
		for _, e := range s.Exemplars {
			id := e.Labels["trace_id"]
			if !hex32.MatchString(id) {
				t.Errorf("exemplar labels %v: trace_id is not 32 hex digits", e.Labels)
				continue
			}
			total++
			if seen[id] {
				known++
			}
		}
	}
	t.Logf("exemplars: %d stored, %d match a trace ID the API returned", total, known)
	if total == 0 {
		t.Error("Prometheus stored no exemplars: the latency panels cannot link to traces (OpenMetrics scrape and exemplar storage needed)")
	} else if known == 0 {
		t.Error("no exemplar trace_id matches a trace the API reported in traceresponse")
	}
}

// driver sends a bounded, repeating mix of requests: sign-ups, logins
// (some failing, some rate-limited), item CRUD, 404s, 422s, 401s, unmatched
// paths, slow uploads and bursts past the concurrency limit (503).
type driver struct {
	api    string
	client *http.Client

	mu      sync.Mutex
	codes   map[int]int
	ids     map[string]bool
	n, slow int
}

func (d *driver) stats() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var keys []int
	for k := range d.codes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d:%d", k, d.codes[k]))
	}
	return fmt.Sprintf("%d requests (%d slow uploads), status %s", d.n, d.slow, strings.Join(parts, " "))
}

func (d *driver) traceIDs() map[string]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.ids)
}

// do sends one request and returns the status and body (status 0 on a
// transport error or when the request cap is reached).
func (d *driver) do(ctx context.Context, method, path, token string, body any) (int, []byte) {
	d.mu.Lock()
	if d.n >= liveMaxRequests {
		d.mu.Unlock()
		return 0, nil
	}
	d.n++
	d.mu.Unlock()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.api+path, r)
	if err != nil {
		return 0, nil
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	d.mu.Lock()
	if d.codes == nil {
		d.codes, d.ids = map[int]int{}, map[string]bool{}
	}
	d.codes[resp.StatusCode]++
	// traceresponse: 00-<trace id>-<span id>-<flags>
	if parts := strings.Split(resp.Header.Get("traceresponse"), "-"); len(parts) == 4 {
		d.ids[parts[1]] = true
	}
	d.mu.Unlock()
	return resp.StatusCode, b
}

type user struct{ name, password, token string }

func (d *driver) signup(ctx context.Context, t *testing.T) (user, bool) {
	u := user{name: fmt.Sprintf("dash_%d_%d", time.Now().UnixNano()%1e9, rand.IntN(1e6)), password: "Corr3ct-Horse!"}
	code, _ := d.do(ctx, http.MethodPost, "/api/v1/users", "", map[string]string{"username": u.name, "email": u.name + "@example.com", "password": u.password})
	if code != http.StatusCreated {
		t.Logf("sign-up returned %d", code)
		return u, false
	}
	code, b := d.do(ctx, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"username": u.name, "password": u.password})
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &tok) != nil || tok.AccessToken == "" {
		t.Logf("login returned %d", code)
		return u, false
	}
	u.token = tok.AccessToken
	return u, true
}

func (d *driver) run(ctx context.Context, t *testing.T) {
	var users []user
	for range 3 {
		if u, ok := d.signup(ctx, t); ok {
			users = append(users, u)
		}
	}
	if len(users) == 0 {
		t.Errorf("driver: could not sign up and log in any user; the API is not serving")
		return
	}
	// Rate limiting: the login limit (5/min per client and username) turns
	// repeated wrong passwords into 429s and failed logins.
	for range 8 {
		d.do(ctx, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"username": users[0].name, "password": "Wrong-pass1!"})
	}
	// Slow requests: clients that upload their body slowly keep handlers
	// busy for liveSlowPause, so the latency SLO has bad events (and its
	// fast-burn alert goes pending) without any fault injection.
	var wg sync.WaitGroup
	defer wg.Wait()
	for range liveSlowClients {
		wg.Go(func() {
			for ctx.Err() == nil && d.slowUpload(ctx, users[0].token) {
			}
		})
	}
	for i := 0; ctx.Err() == nil; i++ {
		u := users[i%len(users)]
		code, b := d.do(ctx, http.MethodPost, "/api/v1/items", u.token, map[string]string{"name": fmt.Sprintf("item %d", i), "description": "made by the dashboards live test"})
		var it struct {
			ID int64 `json:"id"`
		}
		if code == http.StatusCreated && json.Unmarshal(b, &it) == nil {
			p := fmt.Sprintf("/api/v1/items/%d", it.ID)
			d.do(ctx, http.MethodGet, p, u.token, nil)
			d.do(ctx, http.MethodPut, p, u.token, map[string]string{"name": fmt.Sprintf("item %d v2", i), "description": "updated"})
			if i%2 == 0 {
				d.do(ctx, http.MethodDelete, p, u.token, nil)
			}
		}
		d.do(ctx, http.MethodGet, "/api/v1/items?limit=10", u.token, nil)
		d.do(ctx, http.MethodGet, "/api/v1/users/me", u.token, nil)
		d.do(ctx, http.MethodGet, "/api/v1/items/999999999", u.token, nil)                                  // 404
		d.do(ctx, http.MethodGet, "/api/v1/users/me", "", nil)                                              // 401
		d.do(ctx, http.MethodPost, "/api/v1/users", "", map[string]string{"username": "x", "email": "bad"}) // 422
		d.do(ctx, http.MethodGet, "/no/such/path", "", nil)                                                 // unmatched
		d.do(ctx, http.MethodGet, "/health", "", nil)
		// 5xx: a burst of slow uploads on top of the slow clients holds
		// more requests in flight than the concurrency limit allows, and
		// the API answers the excess with fast 503s.
		var burst sync.WaitGroup
		for range liveBurst {
			burst.Go(func() { d.slowUpload(ctx, u.token) })
		}
		burst.Wait()
		if i%10 == 0 {
			if _, ok := d.signup(ctx, t); !ok && ctx.Err() == nil {
				t.Log("driver: periodic sign-up failed")
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(livePause):
		}
		if d.capped() {
			t.Log("driver: request cap reached")
			return
		}
	}
}

func (d *driver) capped() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n >= liveMaxRequests
}

// slowUpload creates an item whose JSON body arrives in two parts
// liveSlowPause apart. It reports false when the request cap is reached.
func (d *driver) slowUpload(ctx context.Context, token string) bool {
	d.mu.Lock()
	if d.n >= liveMaxRequests {
		d.mu.Unlock()
		return false
	}
	d.n++
	d.mu.Unlock()
	pr, pw := io.Pipe()
	go func() {
		_, _ = io.WriteString(pw, `{"name":"slow upload",`)
		select {
		case <-ctx.Done():
			pw.CloseWithError(ctx.Err())
			return
		case <-time.After(liveSlowPause):
		}
		_, _ = io.WriteString(pw, `"description":"body sent slowly by the dashboards live test"}`)
		pw.Close()
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.api+"/api/v1/items", pr)
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := d.client.Do(req)
	if err != nil {
		pr.CloseWithError(err)
		return ctx.Err() == nil
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d.mu.Lock()
	if d.codes == nil {
		d.codes, d.ids = map[int]int{}, map[string]bool{}
	}
	d.codes[resp.StatusCode]++
	d.slow++
	d.mu.Unlock()
	return true
}
