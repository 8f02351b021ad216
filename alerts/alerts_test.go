package alerts_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/glasshouse-dev/glasshouse/alerts/rules"
	"github.com/glasshouse-dev/glasshouse/alerts/slo"
	"github.com/glasshouse-dev/glasshouse/internal/integration"
)

// Files under test, relative to this package's directory.
const (
	specFile      = "slo.yaml"
	generatedFile = "generated/slo-rules.yaml"
	symptomsFile  = "symptoms.yaml"
	runbookDir    = "runbooks"
	testsGlob     = "tests/*.test.yaml"
)

// dashboardUIDs are the dashboards alerts may link to (dashboards/ owns them).
var dashboardUIDs = []string{"glasshouse-red", "glasshouse-slo", "glasshouse-runtime", "glasshouse-loadtest"}

func loadSpec(t *testing.T) slo.Spec {
	t.Helper()
	s, err := slo.Load(specFile)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func loadRules(t *testing.T, path string) rules.File {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f rules.File
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return f
}

func lookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		integration.Skip(t, "%s not found in PATH (Debian: apt-get install prometheus prometheus-alertmanager); skipping", name)
	}
	return p
}

func runTool(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), lookPath(t, name), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestGeneratedRulesUpToDate fails when slo.yaml (or the generator) changed
// without `make rules`.
func TestGeneratedRulesUpToDate(t *testing.T) {
	want, err := rules.Generate(loadSpec(t), rules.Options{Source: "alerts/" + specFile})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(generatedFile)
	if err != nil {
		t.Fatalf("%v (run `make rules`)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: run `make rules` and commit the result", generatedFile)
	}
}

func TestPromtoolCheckRules(t *testing.T) {
	out := runTool(t, ".", "promtool", "check", "rules", generatedFile, symptomsFile)
	if strings.Count(out, "SUCCESS") != 2 {
		t.Errorf("promtool check rules output:\n%s", out)
	}
}

// TestPromtoolTestRules runs every hand-written promtool unit test file.
// They take a few seconds each (hours of simulated series), so they run in
// parallel.
func TestPromtoolTestRules(t *testing.T) {
	lookPath(t, "promtool")
	files, err := filepath.Glob(testsGlob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files match %s: %v", testsGlob, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			out := runTool(t, filepath.Dir(f), "promtool", "test", "rules", filepath.Base(f))
			if !strings.Contains(out, "SUCCESS") {
				t.Errorf("promtool test rules %s:\n%s", f, out)
			}
		})
	}
}

type alertRule struct {
	file string
	rules.Rule
}

func allAlerts(t *testing.T) []alertRule {
	t.Helper()
	var out []alertRule
	for _, path := range []string{generatedFile, symptomsFile} {
		for _, g := range loadRules(t, path).Groups {
			for _, r := range g.Rules {
				if r.Alert != "" {
					out = append(out, alertRule{path, r})
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no alerts found")
	}
	return out
}

var (
	camelCase  = regexp.MustCompile(`^[A-Z][a-z0-9]*(?:[A-Z][A-Za-z0-9]*)*$`)
	recordName = regexp.MustCompile(`^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$`)
)

// TestRuleStyle checks what the monitoring-mixin linter checks, plus the
// project's conventions: CamelCase names, a known severity, a static summary
// ending with a period, a templated description, a runbook_url to an
// existing runbook and a dashboard link to a known dashboard, all built on the
// spec's link prefixes, and expressions that select the spec's series.
func TestRuleStyle(t *testing.T) {
	spec := loadSpec(t)
	p := parser.NewParser(parser.Options{})
	for _, path := range []string{generatedFile, symptomsFile} {
		for _, g := range loadRules(t, path).Groups {
			for _, r := range g.Rules {
				name := r.Alert + r.Record
				if _, err := p.ParseExpr(r.Expr); err != nil {
					t.Errorf("%s: %s: invalid PromQL: %v", path, name, err)
				}
				if r.Record != "" {
					if !recordName.MatchString(r.Record) {
						t.Errorf("%s: record %q is not level:metric:operations", path, r.Record)
					}
					continue
				}
				checkAlertStyle(t, spec, path, r)
			}
		}
	}
}

func checkAlertStyle(t *testing.T, spec slo.Spec, path string, r rules.Rule) {
	t.Helper()
	where := fmt.Sprintf("%s: alert %s", path, r.Alert)
	if !camelCase.MatchString(r.Alert) {
		t.Errorf("%s: name is not CamelCase", where)
	}
	if sev := r.Labels["severity"]; !slices.Contains([]string{"critical", "warning", "info"}, sev) {
		t.Errorf("%s: severity %q not in critical, warning, info", where, sev)
	}
	for k := range r.Labels {
		if !slices.Contains([]string{"severity", "slo", "long_window", "short_window"}, k) {
			t.Errorf("%s: unexpected label %q (routing and inhibition only know severity and slo)", where, k)
		}
	}
	a := r.Annotations
	for k := range a {
		if !slices.Contains([]string{"summary", "description", "runbook_url", "dashboard_url"}, k) {
			t.Errorf("%s: unexpected annotation %q (the Slack template shows only the four known ones)", where, k)
		}
	}
	if s := a["summary"]; s == "" || strings.Contains(s, "{{") || !strings.HasSuffix(s, ".") {
		t.Errorf("%s: summary %q must be static text ending with a period", where, s)
	}
	if d := a["description"]; !strings.Contains(d, "{{") {
		t.Errorf("%s: description %q must be templated (labels or value)", where, d)
	}
	rb, ok := strings.CutPrefix(a["runbook_url"], spec.Links.Runbooks)
	if !ok || !strings.HasSuffix(rb, ".md") || strings.Contains(rb, "/") {
		t.Errorf("%s: runbook_url %q must be %s<file>.md", where, a["runbook_url"], spec.Links.Runbooks)
	} else if _, err := os.Stat(filepath.Join(runbookDir, rb)); err != nil {
		t.Errorf("%s: runbook_url points at a missing runbook: %v", where, err)
	}
	dash, ok := strings.CutPrefix(a["dashboard_url"], spec.Links.Grafana+"/d/")
	uid, _, _ := strings.Cut(dash, "?")
	if !ok || !slices.Contains(dashboardUIDs, uid) {
		t.Errorf("%s: dashboard_url %q must be %s/d/<one of %v>", where, a["dashboard_url"], spec.Links.Grafana, dashboardUIDs)
	}
	if path == symptomsFile && !strings.Contains(r.Expr, spec.Selector) {
		t.Errorf("%s: expression does not select the spec's series (%s)", where, spec.Selector)
	}
}

// TestRunbooksLinked checks that every runbook page is linked by an alert
// (no orphans left after an alert is removed).
func TestRunbooksLinked(t *testing.T) {
	linked := map[string]bool{}
	for _, r := range allAlerts(t) {
		linked[filepath.Base(r.Annotations["runbook_url"])] = true
	}
	pages, err := filepath.Glob(filepath.Join(runbookDir, "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pages {
		if b := filepath.Base(p); b != "README.md" && !linked[b] {
			t.Errorf("%s is not linked by any alert's runbook_url", p)
		}
	}
}

type promtoolFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels map[string]string `yaml:"exp_labels"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestEveryAlertTested checks that the promtool tests make every alert fire
// (each burn-rate window pair of each SLO separately) and check at least once
// that it does not.
func TestEveryAlertTested(t *testing.T) {
	files, err := filepath.Glob(testsGlob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files match %s: %v", testsGlob, err)
	}
	fired, quiet := map[string]bool{}, map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var pf promtoolFile
		if err := yaml.Unmarshal(b, &pf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tc := range pf.Tests {
			for _, at := range tc.AlertRuleTest {
				if len(at.ExpAlerts) == 0 {
					quiet[at.Alertname] = true
				}
				for _, e := range at.ExpAlerts {
					fired[alertKey(at.Alertname, e.ExpLabels)] = true
				}
			}
		}
	}
	for _, r := range allAlerts(t) {
		if k := alertKey(r.Alert, r.Labels); !fired[k] {
			t.Errorf("no promtool test makes %s fire", k)
		}
		if !quiet[r.Alert] {
			t.Errorf("no promtool test checks that %s stays quiet", r.Alert)
		}
	}
}

func alertKey(name string, labels map[string]string) string {
	if labels["slo"] == "" {
		return name
	}
	return fmt.Sprintf("%s{slo=%q,long_window=%q}", name, labels["slo"], labels["long_window"])
}
