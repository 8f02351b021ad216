package dashboards

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/glasshouse-dev/glasshouse/alerts/slo"
)

// Paths relative to this package directory (go test runs in it).
const (
	repoRoot  = ".."
	jsonDir   = "json"
	specPath  = "../alerts/slo.yaml"
	rulesGlob = "../alerts/generated/*.yaml"
)

func loadSpec(t *testing.T) slo.Spec {
	t.Helper()
	spec, err := slo.Load(specPath)
	if err != nil {
		t.Fatalf("load SLO spec: %v", err)
	}
	return spec
}

// TestCommittedJSONUpToDate fails when dashboards/json differs from what the
// generator produces: the committed JSON is what Grafana loads.
func TestCommittedJSONUpToDate(t *testing.T) {
	files, err := Files(All(loadSpec(t)))
	if err != nil {
		t.Fatal(err)
	}
	committed, err := filepath.Glob(filepath.Join(jsonDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range committed {
		if _, ok := files[filepath.Base(p)]; !ok {
			t.Errorf("%s is not produced by the generator: delete it or run `make dashboards`", p)
		}
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(jsonDir, name))
		if err != nil {
			t.Errorf("%v: run `make dashboards`", err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("dashboards/json/%s is stale: run `make dashboards` and commit the result", name)
		}
	}
}

func TestFixedUIDs(t *testing.T) {
	var got []string
	for _, d := range All(loadSpec(t)) {
		got = append(got, d.UID)
	}
	want := []string{"glasshouse-red", "glasshouse-slo", "glasshouse-runtime", "glasshouse-loadtest"}
	if !slices.Equal(got, want) {
		t.Errorf("dashboard uids = %v, want %v (alerts link to them)", got, want)
	}
}

func TestDashboardsPassLint(t *testing.T) {
	for _, d := range All(loadSpec(t)) {
		for _, err := range Lint(d) {
			t.Error(err)
		}
	}
}

// TestCommittedJSONPassesLint lints the files Grafana loads, decoded from
// disk, so a hand edit that slipped past the generator is caught too.
func TestCommittedJSONPassesLint(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join(jsonDir, "*.json"))
	if len(paths) != 4 {
		t.Fatalf("found %d dashboards under %s, want 4", len(paths), jsonDir)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var d Dashboard
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, err := range Lint(&d) {
			t.Errorf("%s: %v", p, err)
		}
		if n := len(Queries(&d)); n == 0 {
			t.Errorf("%s has no queries", p)
		}
	}
}

// TestLintCatches proves each lint rule can fail: every case breaks one
// thing in a valid dashboard and expects a message naming it.
func TestLintCatches(t *testing.T) {
	spec := loadSpec(t)
	cases := []struct {
		name   string
		break_ func(d *Dashboard)
		want   string
	}{
		{"empty uid", func(d *Dashboard) { d.UID = "" }, "uid"},
		{"editable", func(d *Dashboard) { d.Editable = true }, "editable must be false"},
		{"no tag", func(d *Dashboard) { d.Tags = nil }, "no tag"},
		{"link to another tag", func(d *Dashboard) { d.Tags = []string{"other"} }, `which this dashboard is not`},
		{"no datasource variable", func(d *Dashboard) { d.Templating.List = d.Templating.List[1:] }, "datasource variable"},
		{"no instance variable", func(d *Dashboard) { d.Templating.List = d.Templating.List[:2] }, `"instance" template variable`},
		{"zero panel id", func(d *Dashboard) { d.Panels[1].ID = 0 }, "explicit positive id"},
		{"duplicate panel id", func(d *Dashboard) { d.Panels[2].ID = d.Panels[1].ID }, "already used"},
		{"overlap", func(d *Dashboard) { d.Panels[2].GridPos = d.Panels[1].GridPos }, "overlaps"},
		{"off grid", func(d *Dashboard) { d.Panels[1].GridPos.X = 20 }, "outside the 24-column grid"},
		{"no description", func(d *Dashboard) { d.Panels[1].Description = "" }, "description required"},
		{"no unit", func(d *Dashboard) { d.Panels[1].FieldConfig.Defaults.Unit = "" }, "unit required"},
		{"fixed datasource", func(d *Dashboard) { d.Panels[1].Datasource = &DatasourceRef{Type: "prometheus", UID: "prometheus"} }, "datasource must be"},
		{"fixed query datasource", func(d *Dashboard) {
			d.Panels[1].Targets[0].Datasource = &DatasourceRef{Type: "prometheus", UID: "prometheus"}
		}, "query datasource must be"},
		{"duplicate refId", func(d *Dashboard) { p := &d.Panels[1]; p.Targets = append(p.Targets, p.Targets[0]) }, "duplicated"},
		{"empty refId", func(d *Dashboard) { d.Panels[1].Targets[0].RefID = "" }, "empty or duplicated"},
		{"hard-coded range", func(d *Dashboard) {
			d.Panels[1].Targets[0].Expr = `sum(rate(http_server_request_duration_seconds_count{job="$job"}[5m]))`
		}, "must be [$__rate_interval]"},
		{"missing job filter", func(d *Dashboard) {
			d.Panels[1].Targets[0].Expr = `sum(rate(http_server_request_duration_seconds_count[$__rate_interval]))`
		}, `must filter by job`},
		{"bad PromQL", func(d *Dashboard) { d.Panels[1].Targets[0].Expr = `sum(rate(x{job="$job"}[$__rate_interval])` }, "parse"},
		{"unknown variable", func(d *Dashboard) { d.Panels[1].Targets[0].Expr = `up{job="$jobb"}` }, "unknown template variable"},
		{"no queries", func(d *Dashboard) { d.Panels[1].Targets = nil }, "at least one query"},
		{"subquery", func(d *Dashboard) {
			d.Panels[1].Targets[0].Expr = `max_over_time(up{job="$job"}[$__rate_interval:])`
		}, "subqueries"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := RED(spec)
			if errs := Lint(d); len(errs) != 0 {
				t.Fatalf("baseline not clean: %v", errs)
			}
			c.break_(d)
			errs := Lint(d)
			for _, err := range errs {
				if strings.Contains(err.Error(), c.want) {
					return
				}
			}
			t.Errorf("Lint after %s = %v, want an error containing %q", c.name, errs, c.want)
		})
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"job": "api", "__rate_interval": "1m", "instance": ".+"}
	got, err := Expand(`rate(x{job="$job",instance=~"${instance}",a="[[job]]"}[$__rate_interval])`, vars)
	if err != nil {
		t.Fatal(err)
	}
	if want := `rate(x{job="api",instance=~".+",a="api"}[1m])`; got != want {
		t.Errorf("Expand = %s, want %s", got, want)
	}
	if _, err := Expand(`x{job="$nope"}`, vars); err == nil || !strings.Contains(err.Error(), "$nope") {
		t.Errorf("Expand with an unknown variable: err = %v, want one naming $nope", err)
	}
}

// TestBurnWindows checks the factors against the SRE workbook table for 30
// days, and that they follow the period (28 days) instead of being typed in.
func TestBurnWindows(t *testing.T) {
	for _, c := range []struct {
		period time.Duration
		want   []float64
	}{
		{30 * 24 * time.Hour, []float64{14.4, 6, 3, 1}},
		{28 * 24 * time.Hour, []float64{13.44, 5.6, 2.8, 0.933333333333}},
	} {
		var got []float64
		for _, w := range BurnWindows(c.period) {
			got = append(got, w.Factor)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("BurnWindows(%s) factors = %v, want %v", c.period, got, c.want)
		}
	}
	w := BurnWindows(30 * 24 * time.Hour)
	if w[0].LongLabel != "1h" || w[0].ShortLabel != "5m" || w[3].LongLabel != "3d" || w[3].ShortLabel != "6h" {
		t.Errorf("window labels = %+v", w)
	}
	if w[0].ExhaustsIn != 50*time.Hour {
		t.Errorf("1h/5m budget gone in %s, want 50h", w[0].ExhaustsIn)
	}
}

// TestSLODashboardFollowsSpec builds the SLO dashboard from a different spec
// and checks that rows, objectives and threshold lines follow it.
func TestSLODashboardFollowsSpec(t *testing.T) {
	spec, err := slo.Parse([]byte(`
service: shop
selector: 'job="shop"'
period: 28d
slos:
  - name: availability
    objective: 0.995
    description: Requests that do not fail.
    sli: {type: availability}
  - name: checkout-latency
    objective: 0.95
    description: Fast checkouts.
    sli: {type: latency, threshold_seconds: 0.5}
  - name: search-latency
    objective: 0.9
    description: Fast searches.
    sli: {type: latency, threshold_seconds: 0.1}
`))
	if err != nil {
		t.Fatal(err)
	}
	d := SLO(spec)
	if errs := Lint(d); len(errs) > 0 {
		t.Fatalf("lint: %v", errs)
	}
	var rows []Panel
	var thresholds []float64
	for _, p := range d.Panels {
		if p.Type == "row" {
			rows = append(rows, p)
		}
		if strings.HasPrefix(p.Title, "Burn rate ") && strings.Contains(p.Title, " / ") {
			thresholds = append(thresholds, *p.FieldConfig.Defaults.Thresholds.Steps[1].Value)
		}
	}
	if len(rows) != 2 || rows[1].Repeat != SLOVar || !strings.Contains(rows[0].Title, "checkout-latency (95%)") {
		t.Errorf("rows = %+v, want an overview naming each SLO and objective, then a row repeated per $slo", rows)
	}
	if want := []float64{13.44, 5.6, 2.8, 0.933333333333}; !slices.Equal(thresholds, want) {
		t.Errorf("burn-rate threshold lines = %v, want %v (28d period)", thresholds, want)
	}
	var sloVarQuery any
	for _, v := range d.Templating.List {
		if v.Name == SLOVar {
			sloVarQuery = v.Query
		}
	}
	if sloVarQuery != "availability,checkout-latency,search-latency" {
		t.Errorf("slo variable values = %v, want the spec's SLO names", sloVarQuery)
	}
	var exprs []string
	for _, q := range Queries(d) {
		exprs = append(exprs, q.Expr)
	}
	all := strings.Join(exprs, "\n")
	for _, want := range []string{
		`slo:sli_error:ratio_rate4w{slo="$slo",service="$service"}`,
		`slo:sli_error:ratio_rate1h{slo="$slo",service="$service"} / on(slo, service) (1 - slo:objective:ratio{slo="$slo",service="$service"})`,
		`le="0.1"`, `le="0.5"`,
		`* 2419200 /`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("SLO dashboard queries lack %q", want)
		}
	}
}

// TestBurnThresholdsMatchGeneratedRules reads the alert expressions the rule
// generator wrote and checks each one's factor equals the threshold line the
// SLO dashboard draws for the same window pair.
func TestBurnThresholdsMatchGeneratedRules(t *testing.T) {
	spec := loadSpec(t)
	b, err := os.ReadFile("../alerts/generated/slo-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert  string            `yaml:"alert"`
				Expr   string            `yaml:"expr"`
				Labels map[string]string `yaml:"labels"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	factor := map[string]float64{}
	for _, w := range BurnWindows(time.Duration(spec.Period)) {
		factor[w.LongLabel+"/"+w.ShortLabel] = w.Factor
	}
	n := 0
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert != "SLOErrorBudgetBurn" {
				continue
			}
			n++
			pair := r.Labels["long_window"] + "/" + r.Labels["short_window"]
			fv, ok := factor[pair]
			if !ok {
				t.Errorf("generated alert for %s has window pair %s the dashboard does not draw", r.Labels["slo"], pair)
				continue
			}
			if want := "> (" + fmtFloat(fv) + " * "; !strings.Contains(r.Expr, want) {
				t.Errorf("alert %s %s: expr %q lacks %q (dashboard threshold line)", r.Labels["slo"], pair, r.Expr, want)
			}
		}
	}
	if want := 4 * len(spec.SLOs); n != want {
		t.Errorf("%d burn-rate alerts in the generated rules, want %d", n, want)
	}
}

// TestServiceSet: another spec names its own set (uids, titles, tag, the
// job variable's default, the RED dashboard's link to its SLO dashboard)
// and nothing in it says glasshouse, so a second service can import it
// beside the first.
func TestServiceSet(t *testing.T) {
	spec, err := slo.Parse([]byte(`
service: orders
selector: 'job="orders-eu"'
period: 30d
slos:
  - {name: availability, description: d, objective: 0.995, sli: {type: availability}}
  - {name: latency, description: d, objective: 0.95, sli: {type: latency, threshold_seconds: 0.5}}
`))
	if err != nil {
		t.Fatal(err)
	}
	ds := Service(spec)
	var uids []string
	for _, d := range ds {
		uids = append(uids, d.UID)
		if errs := Lint(d); len(errs) > 0 {
			t.Errorf("%s: lint: %v", d.UID, errs)
		}
		if !strings.HasPrefix(d.Title, "orders / ") || !slices.Equal(d.Tags, []string{"orders"}) {
			t.Errorf("%s: title %q, tags %v, want them to start with orders", d.UID, d.Title, d.Tags)
		}
		for _, v := range d.Templating.List {
			if v.Name == "job" && v.Current.Value != "orders-eu" {
				t.Errorf("%s: job variable defaults to %v, want the selector's job orders-eu", d.UID, v.Current.Value)
			}
		}
	}
	if want := []string{"orders-red", "orders-slo", "orders-runtime"}; !slices.Equal(uids, want) {
		t.Errorf("uids = %v, want %v", uids, want)
	}
	files, err := Files(ds)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if i := bytes.Index(bytes.ToLower(b), []byte("glasshouse")); i >= 0 {
			t.Errorf("%s says glasshouse: ...%s...", name, b[max(0, i-80):min(len(b), i+40)])
		}
	}
	if !bytes.Contains(files["orders-red.json"], []byte(`"/d/orders-slo?`)) {
		t.Error("orders-red does not link to orders-slo")
	}
}
