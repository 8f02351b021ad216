package main

import (
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/glasshouse-dev/glasshouse/app/internal/redistest"
	"github.com/glasshouse-dev/glasshouse/app/redislimit"
	"github.com/glasshouse-dev/glasshouse/telemetry"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// apiFamilies runs the whole API (SQLite, Redis cache and shared rate
// limits), drives it through every path that creates a series of its own
// metrics (sign-up, logins that succeed, fail and are rate limited, an
// item created and read through the cache, a Redis outage the cache and
// the limiter fall back from, a database outage answered 503) and returns
// its admin /metrics, parsed.
func apiFamilies(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	api := startDepAPI(t, map[string]string{
		"REDIS_URL":                redistest.URL(t),
		"REDIS_KEY_PREFIX":         redistest.Prefix(t),
		"RATE_LIMIT_REDIS_FAILURE": string(redislimit.FailOpen),
		"RATE_LIMIT_LOGIN":         "2/1m:2",
	})
	token := api.signup(t, "metricsuser") // sign-up, login success
	wrong := `{"username":"metricsuser","password":"Wrong-passw0rd"}`
	for _, want := range []int{http.StatusUnauthorized, http.StatusTooManyRequests} {
		if st, _, b := api.do(t, "POST", "/api/v1/auth/login", "", wrong); st != want {
			t.Fatalf("login with a wrong password: %d %s, want %d", st, b, want)
		}
	}
	_, id := api.createItem(t, token, "counted")
	itemPath := fmt.Sprintf("/api/v1/items/%d", id)
	for range 2 { // a miss, then a hit
		if st, _, b := api.get(t, itemPath, token); st != http.StatusOK {
			t.Fatalf("read: %d %s", st, b)
		}
	}
	fault := func(method, body string) {
		t.Helper()
		req, err := http.NewRequest(method, api.admin+"/debug/fault", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := depClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s /debug/fault: %d", method, resp.StatusCode)
		}
	}
	fault("PUT", `{"outages":["redis"]}`)
	if st, _, b := api.get(t, itemPath, token); st != http.StatusOK { // cache error, limiter fallback
		t.Fatalf("read during a Redis outage: %d %s", st, b)
	}
	fault("PUT", `{"outages":["database"]}`)
	if st, _ := api.createItem(t, token, "lost"); st != http.StatusServiceUnavailable { // a counted server error
		t.Fatalf("create during a database outage: %d, want 503", st)
	}
	fault("DELETE", "")

	resp, err := depClient.Get(api.admin + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// schema writes each family's help, type and sample names with their
// label names, without values: what dashboards, rules and forks depend on,
// and the same on every machine and run.
func schema(families map[string]*dto.MetricFamily) string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(families)) {
		if !deterministic(name) {
			continue
		}
		mf := families[name]
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, mf.GetHelp(), name, strings.ToLower(mf.GetType().String()))
		labels := labelNames(mf)
		series := func(suffix string, labels []string) {
			b.WriteString(name + suffix)
			if len(labels) > 0 {
				b.WriteString("{" + strings.Join(labels, ",") + "}")
			}
			b.WriteByte('\n')
		}
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			series("_bucket", slices.Sorted(slices.Values(append(labels, "le"))))
			series("_sum", labels)
			series("_count", labels)
		} else {
			series("", labels)
		}
	}
	return b.String()
}

// deterministic reports whether a family is the same on every machine:
// the Go runtime, process and host collectors and the build info are not.
func deterministic(name string) bool {
	for _, p := range []string{"go_", "process_", "system_", "app_build_info"} {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	return true
}

// labelNames returns the sorted label names of mf's series (the union, so
// that a label one series lacks still shows).
func labelNames(mf *dto.MetricFamily) []string {
	var names []string
	for _, m := range mf.GetMetric() {
		for _, lp := range m.GetLabel() {
			if !slices.Contains(names, lp.GetName()) {
				names = append(names, lp.GetName())
			}
		}
	}
	slices.Sort(names)
	return names
}

// TestAPIMetrics keeps the whole API's /metrics, as assembled here from
// telemetry and the app packages that register their own metrics, equal
// to testdata/metrics.golden (names, types, help and labels), and checks
// the app README's metric table against the families telemetry does not
// register itself.
func TestAPIMetrics(t *testing.T) {
	families := apiFamilies(t)

	t.Run("golden", func(t *testing.T) {
		got := schema(families)
		golden := filepath.Join("testdata", "metrics.golden")
		if *update {
			if err := os.MkdirAll("testdata", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test ./app/cmd/glasshouse-api -run TestAPIMetrics -update)", err)
		}
		if diff := cmp.Diff(string(want), got); diff != "" {
			t.Errorf("/metrics differs from %s (-want +got):\n%s", golden, diff)
		}
	})

	t.Run("README table", func(t *testing.T) {
		own := telemetryFamilies(t)
		documented := readmeMetrics(t, filepath.Join("..", "..", "README.md"))
		for name, mf := range families {
			if own[name] {
				continue
			}
			doc, ok := documented[name]
			if !ok {
				t.Errorf("%s is registered by the API but not in app/README.md's metrics table", name)
				continue
			}
			if typ := strings.ToLower(mf.GetType().String()); typ != doc.typ {
				t.Errorf("%s is a %s, app/README.md says %s", name, typ, doc.typ)
			}
			if got := labelNames(mf); !slices.Equal(got, doc.labels) {
				t.Errorf("%s has labels %v, app/README.md says %v", name, got, doc.labels)
			}
		}
		for name := range documented {
			if _, ok := families[name]; !ok {
				t.Errorf("app/README.md documents %s, which the API does not expose", name)
			}
		}
	})
}

// telemetryFamilies returns the families telemetry registers by itself
// (documented in its own README), including vectors that have no series
// until a request or a hook creates one.
func telemetryFamilies(t *testing.T) map[string]bool {
	t.Helper()
	tel, err := telemetry.New(t.Context(), telemetry.Config{LogWriter: io.Discard, LogFormat: "json",
		Getenv: func(string) string { return "" }, SystemStatsTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(t.Context()) })
	tel.ConcurrencyRejected()
	tel.PanicRecovered("/x")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /x", func(http.ResponseWriter, *http.Request) {})
	tel.Middleware(mux).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	mfs, err := tel.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	own := map[string]bool{}
	for _, mf := range mfs {
		own[mf.GetName()] = true
	}
	// Host CPU utilisation appears only once CPU time has passed.
	own["system_cpu_utilization_ratio"] = true
	return own
}

type readmeRow struct {
	typ    string
	labels []string
}

// readmeMetrics parses the metric rows of a README table:
// | `name` | type | labels (examples in parentheses) | ...
func readmeMetrics(t *testing.T, path string) map[string]readmeRow {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rowRE := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| (counter|gauge|histogram) \\| ([^|]*) \\|")
	labelRE := regexp.MustCompile("`([a-z_]+)`")
	examplesRE := regexp.MustCompile(`\([^)]*\)`)
	rows := map[string]readmeRow{}
	for _, m := range rowRE.FindAllStringSubmatch(string(b), -1) {
		var labels []string
		for _, l := range labelRE.FindAllStringSubmatch(examplesRE.ReplaceAllString(m[3], ""), -1) {
			labels = append(labels, l[1])
		}
		slices.Sort(labels)
		rows[m[1]] = readmeRow{m[2], labels}
	}
	if len(rows) < 5 {
		t.Fatalf("found only %d metric rows in %s; has the table's format changed?", len(rows), path)
	}
	return rows
}

func TestRegisterPoolTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	stats := func() dbPoolStats { return dbPoolStats{} }
	if err := registerDBPool(reg, "postgres", stats); err != nil {
		t.Fatal(err)
	}
	if err := registerDBPool(reg, "sqlite", stats); err != nil {
		t.Errorf("second store: %v", err)
	}
	if err := registerDBPool(reg, "postgres", stats); err == nil {
		t.Error("registering postgres twice: no error")
	}
	if err := registerDBPool(reg, "x", nil); err == nil {
		t.Error("nil stats func: no error")
	}
	redis := func() redisPoolStats { return redisPoolStats{Total: 5, Idle: 4, Stale: 1} }
	if err := registerRedisPool(reg, redis); err != nil {
		t.Fatal(err)
	}
	if err := registerRedisPool(reg, redis); err == nil {
		t.Error("registering the Redis pool twice: no error")
	}
	want := `# HELP app_redis_pool_connections go-redis pool connections by state (total, idle, stale).
# TYPE app_redis_pool_connections gauge
app_redis_pool_connections{state="idle"} 4
app_redis_pool_connections{state="stale"} 1
app_redis_pool_connections{state="total"} 5
# HELP app_db_pool_wait_total Connection acquires that had to wait for a free connection.
# TYPE app_db_pool_wait_total counter
app_db_pool_wait_total{db="postgres"} 0
app_db_pool_wait_total{db="sqlite"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "app_redis_pool_connections", "app_db_pool_wait_total"); err != nil {
		t.Error(err)
	}
}
