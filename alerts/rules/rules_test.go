package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/glasshouse-dev/glasshouse/alerts/slo"
)

const day = 24 * time.Hour

// TestFactors checks the burn-rate factors against the SRE workbook table
// for a 30-day period (14.4, 6, 3, 1) and against the same budget shares
// over a 28-day period (13.44, 5.6, 2.8, 0.933).
func TestFactors(t *testing.T) {
	for _, tt := range []struct {
		period time.Duration
		want   []string
	}{
		{30 * day, []string{"14.4", "6", "3", "1"}},
		{28 * day, []string{"13.44", "5.6", "2.8", "0.933333"}},
	} {
		var got []string
		for _, w := range WorkbookWindows() {
			got = append(got, num(w.Factor(tt.period)))
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("factors for %v (-want +got):\n%s", tt.period, diff)
		}
	}
}

func TestWindows(t *testing.T) {
	var got []string
	for _, w := range Windows(30*day, WorkbookWindows()) {
		got = append(got, slo.FormatDuration(w))
	}
	want := []string{"5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Windows (-want +got):\n%s", diff)
	}
}

func testSpec(t *testing.T, period string, threshold float64) slo.Spec {
	t.Helper()
	s, err := slo.Parse([]byte(`
service: svc
selector: 'job="svc",env="prod"'
period: ` + period + `
links: {runbooks: "https://r.example/rb/", grafana: "https://g.example"}
slos:
  - {name: availability, description: d, objective: 0.995, sli: {type: availability}}
  - {name: fast, description: d, objective: 0.9, sli: {type: latency, threshold_seconds: ` + strings.TrimSpace(num(threshold)) + `}}
`))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBuildParses checks that every generated expression is valid PromQL,
// including the integral-threshold regex and a multi-matcher selector.
func TestBuildParses(t *testing.T) {
	for _, th := range []float64{0.25, 1} {
		f, err := Build(testSpec(t, "28d", th), Options{})
		if err != nil {
			t.Fatal(err)
		}
		p := parser.NewParser(parser.Options{})
		n := 0
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				n++
				if _, err := p.ParseExpr(r.Expr); err != nil {
					t.Errorf("threshold %v, %s%s: %v\n%s", th, r.Record, r.Alert, err, r.Expr)
				}
			}
		}
		// 2 SLOs x (7 windows + 4 alerts) + 2 x (period, objective, budget).
		if got, want := n, 2*(7+4)+2*3; got != want {
			t.Errorf("rules = %d, want %d", got, want)
		}
	}
}

func TestLeMatcher(t *testing.T) {
	for v, want := range map[float64]string{0.25: `le="0.25"`, 0.005: `le="0.005"`, 1: `le=~"1|1\\.0"`, 10: `le=~"10|10\\.0"`} {
		if got := leMatcher(v); got != want {
			t.Errorf("leMatcher(%v) = %s, want %s", v, got, want)
		}
	}
}

// TestCompress checks the gameday rendering: every window, for: and group
// interval divided, names and labels following the compressed windows.
func TestCompress(t *testing.T) {
	f, err := Build(testSpec(t, "30d", 0.25), Options{Compress: 60})
	if err != nil {
		t.Fatal(err)
	}
	var records []string
	var alerts []string
	for _, g := range f.Groups {
		if g.Name == "slo-period" && g.Interval != "1s" {
			t.Errorf("period group interval = %q, want 1s", g.Interval)
		}
		for _, r := range g.Rules {
			if r.Labels["slo"] != "availability" {
				continue
			}
			if r.Record != "" {
				records = append(records, r.Record)
			} else {
				alerts = append(alerts, r.Labels["long_window"]+"/"+r.Labels["short_window"]+" for "+r.For)
			}
		}
	}
	wantRecords := []string{"slo:sli_error:ratio_rate5s", "slo:sli_error:ratio_rate30s", "slo:sli_error:ratio_rate1m",
		"slo:sli_error:ratio_rate2m", "slo:sli_error:ratio_rate6m", "slo:sli_error:ratio_rate24m",
		"slo:sli_error:ratio_rate72m", "slo:sli_error:ratio_rate12h", ObjectiveRecord, BudgetRemainingRecord}
	if diff := cmp.Diff(wantRecords, records); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	wantAlerts := []string{"1m/5s for 2s", "6m/30s for 15s", "24m/2m for 1m", "72m/6m for 3m"}
	if diff := cmp.Diff(wantAlerts, alerts); diff != "" {
		t.Errorf("alerts (-want +got):\n%s", diff)
	}
	b, err := Generate(testSpec(t, "30d", 0.25), Options{Compress: 60})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "compressed 60x") || !strings.Contains(string(b), "[5s]") {
		t.Errorf("compressed output lacks its marker or 5s ranges:\n%s", b)
	}
}

func TestAnnotations(t *testing.T) {
	f, err := Build(testSpec(t, "28d", 0.25), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := f.Groups[0].Rules[7] // first alert of the availability group
	if r.Alert != BurnAlert {
		t.Fatalf("rule 7 = %+v, want the first burn alert", r)
	}
	for k, want := range map[string]string{
		"summary":       "The availability SLO is burning its error budget 13.44x too fast (1h and 5m windows).",
		"description":   "more than 6.72% over the last 5m (13.44x the 0.5% error budget). Sustained, this spends the whole 4w budget in 2d 2h.",
		"runbook_url":   "https://r.example/rb/slo-availability.md",
		"dashboard_url": "https://g.example/d/svc-slo?var-slo=availability&var-service=svc",
	} {
		if !strings.Contains(r.Annotations[k], want) {
			t.Errorf("%s = %q, want it to contain %q", k, r.Annotations[k], want)
		}
	}
	if got, want := r.Expr, "slo:sli_error:ratio_rate1h{service=\"svc\",slo=\"availability\"} > (13.44 * 0.005)\nand\n"+
		"slo:sli_error:ratio_rate5m{service=\"svc\",slo=\"availability\"} > (13.44 * 0.005)"; got != want {
		t.Errorf("expr =\n%s\nwant\n%s", got, want)
	}
}

func TestBuildErrors(t *testing.T) {
	s := testSpec(t, "30d", 0.25)
	s.Links = slo.Links{}
	s.Period = slo.Duration(3 * day)
	_, err := Build(s, Options{Compress: -1})
	if err == nil {
		t.Fatal("Build succeeded, want errors")
	}
	for _, want := range []string{"links.runbooks: required", "links.grafana: required", "compress: -1", "period: 3d must be longer than the 3d"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := Build(slo.Spec{}, Options{}); err == nil || !strings.Contains(err.Error(), "service: required") {
		t.Errorf("Build(empty) error = %v, want the spec's validation errors", err)
	}
}

func TestHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{50 * time.Hour: "2d 2h", 5 * day: "5d", 30 * day: "30d", 50 * time.Minute: "50m", 0: "0s", 90 * time.Second: "1m 30s"} {
		if got := human(d); got != want {
			t.Errorf("human(%v) = %q, want %q", d, got, want)
		}
	}
}
