package slo_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/alerts/slo"
)

const valid = `
service: svc
selector: 'job="svc"'
period: 28d
links:
  runbooks: https://example.com/runbooks/
  grafana: https://grafana.example.com
slos:
  - name: availability
    description: Non-5xx share.
    objective: 0.995
    sli: {type: availability}
  - name: latency
    description: Fast share.
    objective: 0.99
    sli: {type: latency, threshold_seconds: 0.5}
`

func TestParseValid(t *testing.T) {
	s, err := slo.Parse([]byte(valid))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := time.Duration(s.Period), 28*24*time.Hour; got != want {
		t.Errorf("Period = %v, want %v", got, want)
	}
	if got, want := s.Period.String(), "4w"; got != want {
		t.Errorf("Period.String() = %q, want %q", got, want)
	}
	if got, want := len(s.SLOs), 2; got != want {
		t.Fatalf("len(SLOs) = %d, want %d", got, want)
	}
	if got, want := s.SLOs[1].SLI.ThresholdSeconds, 0.5; got != want {
		t.Errorf("threshold = %v, want %v", got, want)
	}
	if got, want := s.Links.Grafana, "https://grafana.example.com"; got != want {
		t.Errorf("Links.Grafana = %q, want %q", got, want)
	}
	// 1 - 0.995 is not exactly 0.005 in floating point.
	if got := s.SLOs[0].ErrorBudget(); got < 0.00499999 || got > 0.00500001 {
		t.Errorf("ErrorBudget() = %v, want 0.005", got)
	}
}

// TestParseErrors checks that every problem is reported at once and that
// each error names its field.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"empty", ``, []string{"service: required", "selector: required", "period: required", "slos: at least one"}},
		{"unknown field", "service: a\nselectr: x\n", []string{"field selectr not found"}},
		{"bad duration", "service: a\nperiod: 30x\n", []string{`line 2: period: invalid duration "30x"`}},
		{"wrong type", "service: a\nslos:\n  - name: a\n    objective: high\n", []string{"line 4: slos[0].objective: cannot unmarshal"}},
		{"wrong type in flow style", "service: a\nslos: [{name: a, objective: high, sli: {type: availability}}]\n",
			[]string{"line 2: slos[0].objective: cannot unmarshal"}},
		{"huge duration", "service: a\nperiod: 9999999999999d\n", []string{"too long"}},
		{"braces", "service: a\nselector: '{job=\"a\"}'\nperiod: 30d\nslos: [{name: a, description: d, objective: 0.9, sli: {type: availability}}]\n",
			[]string{"selector: write the matchers without braces"}},
		{"bad selector", "service: a\nselector: 'job=\"a\",'\nperiod: 30d\nslos: [{name: a, description: d, objective: 0.9, sli: {type: availability}}]\n",
			[]string{`selector: "job=\"a\"," is not a comma-separated list of PromQL label matchers`}},
		{"unquoted selector", "service: a\nselector: 'job=a'\nperiod: 30d\nslos: [{name: a, description: d, objective: 0.9, sli: {type: availability}}]\n",
			[]string{`selector: "job=a" is not`}},
		{"bad dashboard prefix", "service: a\nselector: 'job=\"a\"'\nperiod: 30d\ndashboard_prefix: Bad_Prefix\nslos: [{name: a, description: d, objective: 0.9, sli: {type: availability}}]\n",
			[]string{`dashboard_prefix: "Bad_Prefix" must match`}},
		{"service unfit for uids", "service: Orders API\nselector: 'job=\"a\"'\nperiod: 30d\nslos: [{name: a, description: d, objective: 0.9, sli: {type: availability}}]\n",
			[]string{`dashboard_prefix: required when service "Orders API"`}},
		{"short period", "service: a\nselector: 'job=\"a\"'\nperiod: 1h\nslos: [{name: a, description: d, objective: 0.9, sli: {type: availability}}]\n",
			[]string{"period: required, at least 1d"}},
		{"bad links", "service: a\nselector: 'job=\"a\"'\nperiod: 30d\nlinks: {runbooks: 'ftp://x/r', grafana: 'http://g/'}\nslos: [{name: a, description: d, objective: 0.9, sli: {type: availability}}]\n",
			[]string{"links.runbooks:", "links.grafana:"}},
		{"bad slos", `
service: a
selector: 'job="a"'
period: 30d
slos:
  - {name: Bad Name, objective: 1, sli: {type: availability, threshold_seconds: 1}}
  - {name: x, description: d, objective: 0, sli: {type: latency}}
  - {name: x, description: d, objective: 0.9, sli: {type: saturation}}
`, []string{
			`slos[0].name: "Bad Name" must match`,
			"slos[0].description: required",
			"slos[0].objective: 1 must be between 0 and 1",
			"slos[0].sli.threshold_seconds: only for latency",
			"slos[1].objective: 0 must be between",
			"slos[1].sli.threshold_seconds: required",
			`slos[2].name: duplicate "x"`,
			`slos[2].sli.type: "saturation" must be`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := slo.Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestDurations(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"5m", 5 * time.Minute, "5m"},
		{"90s", 90 * time.Second, "90s"},
		{"60m", time.Hour, "1h"},
		{"30d", 30 * 24 * time.Hour, "30d"},
		{"14d", 14 * 24 * time.Hour, "2w"},
		{"1500ms", 1500 * time.Millisecond, "1500ms"},
	} {
		got, err := slo.ParseDuration(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if s := slo.FormatDuration(got); s != tt.out {
			t.Errorf("FormatDuration(%v) = %q, want %q", got, s, tt.out)
		}
	}
	for _, bad := range []string{"", "5", "1.5h", "-5m", "5M", "1h30m"} {
		if _, err := slo.ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) succeeded, want an error", bad)
		}
	}
}

// TestLoadRepoSpec loads the committed spec, which everything else reads.
func TestLoadRepoSpec(t *testing.T) {
	s, err := slo.Load("../slo.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if s.Service == "" || len(s.SLOs) == 0 || s.Links.Runbooks == "" || s.Links.Grafana == "" {
		t.Errorf("incomplete spec: %+v", s)
	}
	if _, err := slo.Load("testdata/missing.yaml"); err == nil || !strings.Contains(err.Error(), "load slo spec") {
		t.Errorf("Load(missing) error = %v, want a load error", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(valid))
	f.Add([]byte("period: 5m\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := slo.Parse(b)
		if err != nil {
			return
		}
		// A spec that parses must validate again unchanged.
		if err := s.Validate(); err != nil {
			t.Fatalf("parsed spec fails Validate: %v", err)
		}
	})
}

func TestSelectorsAccepted(t *testing.T) {
	for _, sel := range []string{`job="glasshouse-api"`, `job="a", env=~"prod|stage"`, `job!='x',instance!~"10\\.0\\..*"`} {
		y := fmt.Sprintf("service: a\nselector: %q\nperiod: 30d\nslos: [{name: a, description: d, objective: 0.9, sli: {type: availability}}]\n", sel)
		if _, err := slo.Parse([]byte(y)); err != nil {
			t.Errorf("selector %s: %v", sel, err)
		}
	}
}

func TestJobAndPrefix(t *testing.T) {
	for _, tt := range []struct {
		selector, prefix       string
		wantJob, wantDashboard string
	}{
		{`job="orders"`, "", "orders", "svc-slo"},
		{`env="prod", job = "orders-eu"`, "shop", "orders-eu", "shop-slo"},
		{`job=~"orders.*"`, "", "svc", "svc-slo"},
		{`namespace="x"`, "", "svc", "svc-slo"},
	} {
		s := slo.Spec{Service: "svc", Selector: tt.selector, DashboardPrefix: tt.prefix}
		if got := s.Job(); got != tt.wantJob {
			t.Errorf("Job() of %s = %q, want %q", tt.selector, got, tt.wantJob)
		}
		if got := s.DashboardUID("slo"); got != tt.wantDashboard {
			t.Errorf("DashboardUID(slo) with prefix %q = %q, want %q", tt.prefix, got, tt.wantDashboard)
		}
	}
}
