package fork

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/glasshouse-dev/glasshouse/alerts/kit"
	"github.com/glasshouse-dev/glasshouse/alerts/rules"
	"github.com/glasshouse-dev/glasshouse/alerts/slo"
	"github.com/glasshouse-dev/glasshouse/dashboards"
	"github.com/glasshouse-dev/glasshouse/internal/testenv"
	"github.com/glasshouse-dev/glasshouse/loadtest"
	"github.com/glasshouse-dev/glasshouse/loadtest/promexport"
	"github.com/glasshouse-dev/glasshouse/loadtest/scenarios"
)

// compress shrinks the SLO windows as the gameday does: 1h/5m become 1m/5s.
const compress = 60

// service is one service under test with its load run.
type service struct {
	name     string // also its Prometheus job and SLO service label
	spec     slo.Spec
	base     string // public URL
	admin    string // admin host:port, scraped as job name
	loadAddr string // the load run's /metrics, scraped as job name+"-load"
	runner   *loadtest.Runner
	result   *loadtest.Result
	runErr   error
}

// emptyAllowed names the panel queries that cannot have data for a job in
// this run, with the reason. Keys are "<job>/<kind>/<panel>/<refId>" (kind:
// red, slo, runtime, loadtest: the dashboard uid without its prefix),
// with "@<slo>" for queries of one SLO.
func emptyAllowed() map[string]string {
	m := map[string]string{}
	allow := func(reason string, jobs []string, keys ...string) {
		for _, j := range jobs {
			for _, k := range keys {
				m[j+"/"+k] = reason
			}
		}
	}
	both := []string{"glasshouse-api", "orders"}
	orders := []string{"orders"}
	api := []string{"glasshouse-api"}
	allow("no handler panics: app_http_panics_recovered_total{route} appears with the first one", both,
		"red/Recovered panics/A")
	allow("app_ratelimit_fallback_total{mode} appears only while Redis is unreachable", both,
		"runtime/Rate-limit decisions without Redis/A")
	allow("the generator drops iterations only when every VU is busy; k6_dropped_iterations_total appears with the first drop", both,
		"loadtest/Iterations and dropped iterations/B")
	allow("no request is rate limited in this run (the load stays far below the limits); app_http_rate_limited_total{route,scope} appears with the first 429", both,
		"red/Rejections: rate limit (429) and concurrency limit (503)/A", "runtime/Rejections/A")
	allow("the API runs on SQLite without REDIS_URL here: no Redis pool and no cache", api,
		"runtime/Redis pool connections/A", "runtime/Cache lookups by result/A")
	var healthy []string
	for _, slo := range []string{"availability", "latency"} {
		healthy = append(healthy, "slo/Burn-rate alerts (all SLOs)/A@"+slo, "slo/Burn-rate alerts/A@"+slo,
			"slo/Time to exhaustion (at the 1h burn rate)/A@"+slo)
	}
	allow("glasshouse-api stays healthy on purpose (its burn alerts must stay quiet): no alert pending or firing, and no budget burning to run out", api, healthy...)
	allow("orders' fault is errors, not latency: its latency SLO does not burn", orders,
		"slo/Burn-rate alerts (all SLOs)/A@latency", "slo/Burn-rate alerts/A@latency",
		"slo/Time to exhaustion (at the 1h burn rate)/A@latency")
	allow("orders has no database, Redis, cache, dependency checks or business counters: the API's app_* series do not exist for it", orders,
		"red/Sign-ups/A", "red/Logins by result/A", "red/Items created/A",
		"runtime/Redis pool connections/A", "runtime/Cache lookups by result/A",
		"runtime/Database pool connections/A", "runtime/Database pool waits/A", "runtime/Database pool waits/B",
		"runtime/Dependency health/A",
	)
	return m
}

// TestFork starts glasshouse-api and examples/orders, a real Prometheus
// scraping them (and their load runs) under their own job names with both
// services' SLO rules (windows compressed 60x), drives load at both with
// thresholds from each one's spec, and injects 50% errors into orders only.
// It asserts that orders' fast-burn page fires and glasshouse-api's burn
// alerts stay quiet, that every panel query of every shared dashboard
// returns data for each job, and that each load run's thresholds are those
// rendered from its own spec.
func TestFork(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the fork proof starts two services, Prometheus and two load runs (about a minute)")
	}
	root := testenv.ModuleRoot(t)
	testenv.Binary(t, "prometheus") // skip early, before building anything
	dir := t.TempDir()
	apiBin := testenv.BuildBinary(t, root, "./app/cmd/glasshouse-api", dir)
	ordersBin := testenv.BuildBinary(t, root, "./examples/orders", dir)
	apiSpec := mustLoad(t, filepath.Join(root, "alerts", "slo.yaml"))
	ordersSpec := mustLoad(t, filepath.Join(root, "examples", "orders", "slo.yaml"))

	api := &service{name: "glasshouse-api", spec: apiSpec}
	orders := &service{name: "orders", spec: ordersSpec}
	svcs := []*service{api, orders}

	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	for _, s := range svcs {
		addr, admin := testenv.FreeAddr(t), testenv.FreeAddr(t)
		s.base, s.admin = "http://"+addr, admin
		env := []string{"ADDR=" + addr, "ADMIN_ADDR=" + admin, "LOG_FORMAT=json", "LOG_LEVEL=warn", "ACCESS_LOG=false", "OTEL_TRACES_EXPORTER=none"}
		bin, ready, args := ordersBin, "http://"+admin+"/metrics", []string(nil)
		if s == api {
			env = append(env, "DATA_DIR="+filepath.Join(dir, "data"), "APP_ENV=development", "SHUTDOWN_TIMEOUT=2s")
			bin, ready, args = apiBin, s.base+"/health/ready", []string{"-env-file="}
		}
		p := testenv.Start(t, dir, s.name, bin, args, env)
		if err := testenv.WaitReady(ctx, p, ready); err != nil {
			t.Fatal(err)
		}
	}

	// Load: the API's own "average" scenario, and a small orders script;
	// both take their thresholds from their service's spec. One user: its
	// sign-up and login hash a password (tens of milliseconds, more on a
	// loaded machine), and a handful of them in a 5 s window of little
	// traffic would look like a latency burn of the API.
	apiTest, err := scenarios.Build("average", scenarios.Config{Target: api.base, SLO: apiSpec, Users: 1, Rate: 4, Duration: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs {
		test := apiTest
		if s == orders {
			test = ordersLoad(orders.base, ordersSpec)
		}
		if s.runner, err = loadtest.New(test, loadtest.RunOptions{}); err != nil {
			t.Fatalf("%s load test: %v", s.name, err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: promexport.Handler(s.runner), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
		s.loadAddr = ln.Addr().String()
	}

	prom := testenv.StartPrometheus(t, writePrometheusConfig(t, root, dir, svcs))
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, s := range svcs {
		wg.Go(func() { s.result, s.runErr = s.runner.Run(loadCtx) })
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			stopLoad()
			wg.Wait()
		}
	}
	t.Cleanup(stop)
	// Some non-2xx answers for the per-route status panels of the API (the
	// scenario's own requests all succeed): unauthenticated item reads, five
	// a second, which also keep the API's SLO windows from being thin.
	go func() {
		for loadCtx.Err() == nil {
			if resp, err := http.Get(api.base + "/api/v1/items/1"); err == nil {
				resp.Body.Close()
			}
			select {
			case <-loadCtx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()

	// Baseline: both jobs serve traffic and report their SLIs.
	waitFor(t, ctx, 90*time.Second, "both services' SLO recording rules have data", func() (bool, error) {
		for _, s := range svcs {
			got, err := prom.Query(ctx, fmt.Sprintf(`slo:sli_error:ratio_rate5s{service=%q} and on() sum(rate(http_server_request_duration_seconds_count{job=%q}[5s])) > 0`, s.name, s.name))
			if err != nil || len(got) == 0 {
				return false, err
			}
		}
		return true, nil
	})
	quietAPI := func() error {
		got, err := prom.Query(ctx, `ALERTS{alertname="SLOErrorBudgetBurn",service="glasshouse-api"}`)
		if err != nil {
			return err
		}
		if len(got) > 0 {
			return fmt.Errorf("glasshouse-api burn alert while only orders is failing: %v", got)
		}
		return nil
	}
	if err := quietAPI(); err != nil {
		t.Fatalf("baseline: %v", err)
	}

	// Fault: half of orders' requests fail; orders pages, the API does not.
	resp, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+orders.admin+"/debug/fault?errors=0.5", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(resp)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("inject fault into orders: %v %v", res, err)
	}
	res.Body.Close()
	injected := time.Now()
	waitFor(t, ctx, 90*time.Second, "orders' availability fast-burn alert firing", func() (bool, error) {
		if err := quietAPI(); err != nil {
			return false, err
		}
		got, err := prom.Query(ctx, `ALERTS{alertname="SLOErrorBudgetBurn",service="orders",slo="availability",long_window="1m",alertstate="firing"}`)
		return len(got) > 0, err
	})
	t.Logf("orders' availability page fired %s after the fault", time.Since(injected).Round(100*time.Millisecond))

	checkDashboards(t, ctx, prom, apiSpec, svcs)
	if err := quietAPI(); err != nil {
		t.Error(err)
	}

	// Thresholds: each run used what its own spec renders to.
	stop()
	want := map[string]map[string][]string{}
	for _, s := range svcs {
		files, err := kit.Render(s.spec, kit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var th struct{ Thresholds map[string][]string }
		if err := json.Unmarshal(files[kit.ThresholdsFile], &th); err != nil {
			t.Fatal(err)
		}
		want[s.name] = th.Thresholds
		if s.result == nil {
			t.Fatalf("%s load run: no result (%v)", s.name, s.runErr)
		}
		got := map[string][]string{}
		for _, r := range s.result.Thresholds {
			got[r.Metric] = append(got[r.Metric], r.Expr)
			t.Logf("%s load threshold %s %s: value %.4g, ok %v", s.name, r.Metric, r.Expr, r.Value, r.OK)
			if s == orders && r.Metric == "http_req_failed" && r.OK {
				t.Errorf("orders' http_req_failed %s passed although half its requests failed for part of the run", r.Expr)
			}
		}
		if !maps.EqualFunc(got, th.Thresholds, slices.Equal) {
			t.Errorf("%s load thresholds = %v, want %v (from %s's spec)", s.name, got, th.Thresholds, s.name)
		}
	}
	committed, err := os.ReadFile(filepath.Join(root, "examples", "orders", "generated", kit.ThresholdsFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(committed, []byte(want["orders"]["http_req_failed"][0])) {
		t.Errorf("committed orders %s does not hold %v", kit.ThresholdsFile, want["orders"])
	}
	if maps.EqualFunc(want["orders"], want["glasshouse-api"], slices.Equal) {
		t.Errorf("both specs render the same thresholds %v: the check cannot tell them apart", want["orders"])
	}
}

func mustLoad(t *testing.T, path string) slo.Spec {
	t.Helper()
	spec, err := slo.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// ordersLoad creates orders and reads them back, with one read of a
// missing order in ten (a 404), at 10 iterations a second.
func ordersLoad(base string, spec slo.Spec) loadtest.Test {
	th, metrics, expected, observe := scenarios.Thresholds(spec, false)
	create := &loadtest.Params{Name: "/orders", Header: http.Header{"Content-Type": {"application/json"}}}
	byID := &loadtest.Params{Name: "/orders/{id}"}
	return loadtest.Test{
		Scenarios: []loadtest.Scenario{{
			Name:         "orders",
			Executor:     loadtest.ConstantArrivalRate{Rate: 10, Duration: 3 * time.Minute, PreAllocatedVUs: 5, MaxVUs: 50},
			GracefulStop: 5 * time.Second,
			Exec: func(ctx context.Context, vu *loadtest.VU) error {
				res := vu.Post(ctx, base+"/orders", []byte(`{"item":"tea","quantity":2}`), create)
				var o struct{ ID int64 }
				if vu.Check("order created", res.Status == http.StatusCreated && json.Unmarshal(res.Body, &o) == nil) {
					res := vu.Get(ctx, base+"/orders/"+strconv.FormatInt(o.ID, 10), byID)
					vu.Check("order read back", res.Status == http.StatusOK)
				}
				if vu.Rand().IntN(10) == 0 {
					vu.Get(ctx, base+"/orders/0", byID)
				}
				return nil
			},
		}},
		Thresholds: th,
		Metrics:    metrics,
		Options:    loadtest.Options{ResponseCallback: expected, OnResponse: observe, Tags: map[string]string{"testid": "orders-fork"}},
	}
}

func writePrometheusConfig(t *testing.T, root, dir string, svcs []*service) string {
	t.Helper()
	var ruleFiles, scrapes strings.Builder
	for _, s := range svcs {
		// The alerts with windows compressed 60x, as in the gameday.
		b, err := rules.Generate(s.spec, rules.Options{Compress: compress, Source: s.name})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, s.name+"-slo-rules.yaml")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		// The recording rules with their real window names, which the SLO
		// dashboard reads (a 1h rate over a minute of data is still a
		// ratio), evaluated every second; their alerts are left out.
		f, err := rules.Build(s.spec, rules.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for gi := range f.Groups {
			f.Groups[gi].Interval = ""
			f.Groups[gi].Rules = slices.DeleteFunc(f.Groups[gi].Rules, func(r rules.Rule) bool { return r.Alert != "" })
		}
		b, err = yaml.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		rec := filepath.Join(dir, s.name+"-slo-records.yaml")
		if err := os.WriteFile(rec, b, 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&ruleFiles, "  - %s\n  - %s\n", p, rec)
		fmt.Fprintf(&scrapes, "  - job_name: %s\n    static_configs: [{targets: ['%s']}]\n", s.name, s.admin)
		fmt.Fprintf(&scrapes, "  - job_name: %s-load\n    static_configs: [{targets: ['%s']}]\n", s.name, s.loadAddr)
	}
	// Each service's symptom alerts load beside its SLO rules, unchanged.
	fmt.Fprintf(&ruleFiles, "  - %s\n  - %s\n", filepath.Join(root, "alerts", "symptoms.yaml"),
		filepath.Join(root, "examples", "orders", "generated", kit.SymptomsFile))
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\nrule_files:\n%sscrape_configs:\n%s",
		ruleFiles.String(), scrapes.String())
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkDashboards evaluates every panel query of every shared dashboard
// (dashboards/json, generated from alerts/slo.yaml), and of orders' own
// generated set for orders, for each service's job,
// its SLO service label, its load job and each SLO, every 2 s until all
// have data or the deadline passes. An error, or no data where the
// allow-list gives no reason, fails the test.
func checkDashboards(t *testing.T, ctx context.Context, prom *testenv.Prometheus, spec slo.Spec, svcs []*service) {
	type set struct {
		spec slo.Spec
		ds   []*dashboards.Dashboard
	}
	t.Helper()
	type query struct{ key, expr string }
	var qs []query
	for _, s := range svcs {
		seen := map[string]bool{}
		for _, o := range spec.SLOs {
			vars := map[string]string{
				"__rate_interval": "10s", "__range": "5m", "__interval": "1s",
				"job": s.name, dashboards.ServiceVar: s.name, "instance": ".+", "route": ".+",
				"loadjob": s.name + "-load", "scenario": ".*", dashboards.SLOVar: o.Name,
			}
			sets := []set{{spec, dashboards.All(spec)}}
			if s.spec.Service != spec.Service {
				sets = append(sets, set{s.spec, dashboards.Service(s.spec)})
			}
			for _, set := range sets {
				for _, d := range set.ds {
					kind := strings.TrimPrefix(d.UID, set.spec.Prefix()+"-")
					for _, q := range dashboards.Queries(d) {
						expr, err := dashboards.Expand(q.Expr, vars)
						if err != nil {
							t.Fatalf("%s: %v", q, err)
						}
						key := s.name + "/" + kind + "/" + q.Panel + "/" + q.RefID
						if strings.Contains(q.Expr, "$"+dashboards.SLOVar) {
							key += "@" + o.Name
						}
						if !seen[expr] {
							seen[expr] = true
							qs = append(qs, query{key, expr})
						}
					}
				}
			}
		}
	}
	allowed := emptyAllowed()
	pending := qs
	var errs []error
	deadline := time.Now().Add(60 * time.Second)
	for len(pending) > 0 && time.Now().Before(deadline) {
		var next []query
		errs = nil
		for _, q := range pending {
			got, err := prom.Query(ctx, q.expr)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", q.key, err))
				continue
			}
			if len(got) == 0 {
				next = append(next, q)
			}
		}
		if len(errs) > 0 {
			break
		}
		pending = next
		if !slices.ContainsFunc(pending, func(q query) bool { _, ok := allowed[q.key]; return !ok }) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	for _, err := range errs {
		t.Error(err)
	}
	var empty []string
	for _, q := range pending {
		if reason, ok := allowed[q.key]; ok {
			t.Logf("empty, allowed: %s (%s)", q.key, reason)
			continue
		}
		empty = append(empty, q.key+": "+q.expr)
	}
	if len(empty) > 0 {
		t.Errorf("%d of %d panel queries returned no data:\n%s", len(empty), len(qs), strings.Join(empty, "\n"))
	}
	t.Logf("%d panel queries over %d jobs: %d with data, %d empty and allowed", len(qs), len(svcs), len(qs)-len(pending), len(pending)-len(empty))
}

func waitFor(t *testing.T, ctx context.Context, limit time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("no %s within %s (last error: %v)", what, limit, err)
		}
		time.Sleep(time.Second)
	}
}
