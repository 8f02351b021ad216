package dashboards

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"

	"github.com/glasshouse-dev/glasshouse/telemetry"
)

// Where the metric names the dashboards may use come from.
const (
	telemetryGolden = "../telemetry/testdata/metrics.golden"
	apiGolden       = "../app/cmd/glasshouse-api/testdata/metrics.golden"
	loadtestGolden  = "../loadtest/promexport/testdata/metrics.golden"
	loadtestReadme  = "../loadtest/README.md"
)

var seriesNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*`)

// expositionNames returns the series names in a text or OpenMetrics
// exposition (every non-comment line starts with one).
func expositionNames(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read exposition golden: %v", err)
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if n := seriesNameRE.FindString(line); n != "" {
			names = append(names, n)
		}
	}
	return names
}

// registryNames returns the series names a real telemetry stack registers
// before any request: Go runtime, process and system collectors, build info.
func registryNames(t *testing.T) []string {
	t.Helper()
	tel, err := telemetry.New(t.Context(), telemetry.Config{
		LogWriter: &bytes.Buffer{}, LogFormat: "json",
		Getenv:         func(string) string { return "" },
		SystemStatsTTL: -1,
	})
	if err != nil {
		t.Fatalf("telemetry.New: %v", err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(t.Context()) })
	// Host CPU utilisation is a delta between two readings: gather until
	// some CPU time has passed (bounded), keeping every family seen.
	var mfs []*dto.MetricFamily
	for i := 0; i < 50; i++ {
		got, err := tel.Registry.Gather()
		if err != nil {
			t.Fatalf("gather: %v", err)
		}
		mfs = append(mfs, got...)
		if slices.ContainsFunc(got, func(mf *dto.MetricFamily) bool { return mf.GetName() == "system_cpu_utilization_ratio" }) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var names []string
	for _, mf := range mfs {
		n := mf.GetName()
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names = append(names, n+"_bucket", n+"_sum", n+"_count")
		case dto.MetricType_SUMMARY:
			names = append(names, n, n+"_sum", n+"_count")
		default:
			names = append(names, n)
		}
	}
	return names
}

// ruleNames returns the series recorded by the generated rule files, plus
// the ALERTS series Prometheus writes for their alerts.
func ruleNames(t *testing.T) []string {
	t.Helper()
	paths, _ := filepath.Glob(rulesGlob)
	if len(paths) == 0 {
		t.Fatalf("no rule files match %s: run `make rules`", rulesGlob)
	}
	names := []string{"ALERTS", "ALERTS_FOR_STATE"}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Groups []struct {
				Rules []struct {
					Record string `yaml:"record"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal(b, &f); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					names = append(names, r.Record)
				}
			}
		}
	}
	return names
}

// loadtestNames returns the load generator's series: those of its golden
// exposition (a short smoke run) plus the stable metric table of its README,
// which also lists series a smoke run never produces (schedule lag of
// arrival-rate executors, dropped iterations).
func loadtestNames(t *testing.T) []string {
	t.Helper()
	var names []string
	if _, err := os.Stat(loadtestGolden); err == nil {
		names = expositionNames(t, loadtestGolden)
	} else {
		t.Logf("%s missing; using only the metric table of %s", loadtestGolden, loadtestReadme)
	}
	b, err := os.ReadFile(loadtestReadme)
	if err != nil {
		t.Fatalf("read the load generator's metric table: %v", err)
	}
	for _, m := range regexp.MustCompile("`(k6_[a-z0-9_]+)`").FindAllStringSubmatch(string(b), -1) {
		n := m[1]
		if strings.HasSuffix(n, "_seconds") { // time trends are histograms
			names = append(names, n+"_bucket", n+"_sum", n+"_count")
		}
		names = append(names, n)
	}
	return names
}

// TestEveryMetricExists fails when a panel names a series that neither the
// API exposes (the golden of the whole API's /metrics, that of the
// telemetry package alone, and the real registry's collectors), nor a recording rule records, nor the load
// generator exports. A typo or a renamed metric turns into a red test
// instead of a "No data" panel.
func TestEveryMetricExists(t *testing.T) {
	sources := map[string][]string{
		"API golden":         expositionNames(t, apiGolden),
		"telemetry golden":   expositionNames(t, telemetryGolden),
		"telemetry registry": registryNames(t),
		"recording rules":    ruleNames(t),
		"load generator":     loadtestNames(t),
	}
	known := map[string]string{}
	for src, names := range sources {
		for _, n := range names {
			known[n] = src
		}
	}
	used := map[string]bool{}
	for _, d := range All(loadSpec(t)) {
		for _, q := range Queries(d) {
			names, err := MetricNames(q.Expr, LintVars())
			if err != nil {
				t.Errorf("%s: %v", q, err)
				continue
			}
			for _, n := range names {
				used[n] = true
				if _, ok := known[n]; !ok {
					t.Errorf("%s uses %s, which no source defines (API or telemetry golden, telemetry registry, recording rules, load generator)", q, n)
				}
			}
		}
	}
	// The dashboards must cover the fixed SLO rules and the core RED series.
	for _, n := range []string{
		"slo:objective:ratio", "slo:error_budget_remaining:ratio", "slo:sli_error:ratio_rate5m", "slo:sli_error:ratio_rate30d",
		"ALERTS", "http_server_request_duration_seconds_bucket", "http_server_request_duration_seconds_count",
		"http_server_active_requests", "go_goroutines", "system_cpu_utilization_ratio", "k6_http_reqs_total", "k6_vus",
	} {
		if !used[n] {
			t.Errorf("no panel uses %s", n)
		}
	}
	var list []string
	for n := range used {
		list = append(list, n)
	}
	slices.Sort(list)
	t.Logf("%d series used: %s", len(list), strings.Join(list, " "))
}
