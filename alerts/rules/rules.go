// Package rules turns an SLO spec (package slo) into Prometheus recording
// and multi-window, multi-burn-rate alerting rules.
//
// It imports the standard library, package slo and a YAML encoder
// (TestImports); it knows
// nothing about the API. cmd/rulegen writes its output to
// alerts/generated/slo-rules.yaml; the gameday renders the same spec with
// compressed windows.
package rules

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/glasshouse-dev/glasshouse/alerts/slo"
)

// Names of the generated series and alert. Dashboards and the gameday read
// them; they are fixed across the project.
const (
	// ErrorRatioPrefix + window ("5m", "30d") names the recorded error ratio
	// of one SLO over that window, labelled slo and service.
	ErrorRatioPrefix = "slo:sli_error:ratio_rate"
	// ObjectiveRecord is the SLO's objective (0.999), labelled slo and service.
	ObjectiveRecord = "slo:objective:ratio"
	// BudgetRemainingRecord is 1 - (period error ratio / error budget): 1 is
	// untouched, 0 spent, negative overspent.
	BudgetRemainingRecord = "slo:error_budget_remaining:ratio"
	// BurnAlert is the name of every burn-rate alert; labels severity, slo,
	// long_window and short_window tell them apart.
	BurnAlert = "SLOErrorBudgetBurn"
)

// BurnWindow is one multi-window, multi-burn-rate alert: it fires when the
// error ratio over both Long and Short exceeds Factor(period) x error budget
// for For.
type BurnWindow struct {
	Severity string
	Long     time.Duration
	Short    time.Duration
	// BudgetSpent is the share of the period's error budget spent over Long
	// at the alert's threshold (0.02 = 2%).
	BudgetSpent float64
	For         time.Duration
}

// Factor is the burn-rate multiple of the error budget that triggers w for
// an SLO period: BudgetSpent x period / Long (14.4 for 1h at 2% of 30d).
func (w BurnWindow) Factor(period time.Duration) float64 {
	return w.BudgetSpent * float64(period) / float64(w.Long)
}

// WorkbookWindows returns the four window pairs of the Google SRE workbook
// (chapter "Alerting on SLOs"), whose factors for a 30d period are 14.4, 6, 3
// and 1.
func WorkbookWindows() []BurnWindow {
	return []BurnWindow{
		{Severity: "critical", Long: time.Hour, Short: 5 * time.Minute, BudgetSpent: 0.02, For: 2 * time.Minute},
		{Severity: "critical", Long: 6 * time.Hour, Short: 30 * time.Minute, BudgetSpent: 0.05, For: 15 * time.Minute},
		{Severity: "warning", Long: 24 * time.Hour, Short: 2 * time.Hour, BudgetSpent: 0.10, For: time.Hour},
		{Severity: "warning", Long: 72 * time.Hour, Short: 6 * time.Hour, BudgetSpent: 0.10, For: 3 * time.Hour},
	}
}

// Options tunes Generate. The zero value renders the real windows.
type Options struct {
	// Compress divides every window, "for" duration and group interval by
	// this factor (60 turns minutes into seconds) so an end-to-end test sees
	// alerts fire in seconds. 0 and 1 mean no compression. The promtool
	// tests cover the real windows.
	Compress int
	// Source names the spec in the generated file's header.
	Source string
}

// PeriodInterval is how often the period-long ratio, the objective and the
// remaining budget are evaluated: a 30d range is costly and moves slowly.
const PeriodInterval = time.Minute

// File is a Prometheus rule file.
type File struct {
	Groups []Group `yaml:"groups"`
}

// Group is a rule group, evaluated in order.
type Group struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval,omitempty"`
	Rules    []Rule `yaml:"rules"`
}

// Rule is a recording (Record) or alerting (Alert) rule.
type Rule struct {
	Record      string            `yaml:"record,omitempty"`
	Alert       string            `yaml:"alert,omitempty"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

// Windows returns the windows whose error ratios are recorded, shortest
// first: every short and long window of ws, then the period.
func Windows(period time.Duration, ws []BurnWindow) []time.Duration {
	seen := map[time.Duration]bool{}
	var out []time.Duration
	add := func(d time.Duration) {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	for _, w := range ws {
		add(w.Short)
		add(w.Long)
	}
	// Insertion sort: a handful of elements.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	add(period)
	return out
}

// Build returns the rule file for spec with the workbook windows.
func Build(spec slo.Spec, opt Options) (File, error) {
	if err := spec.Validate(); err != nil {
		return File{}, err
	}
	var errs []error
	if spec.Links.Runbooks == "" {
		errs = append(errs, errors.New("links.runbooks: required to build runbook_url annotations"))
	}
	if spec.Links.Grafana == "" {
		errs = append(errs, errors.New("links.grafana: required to build dashboard links"))
	}
	if opt.Compress < 0 || opt.Compress > 3600 {
		errs = append(errs, fmt.Errorf("compress: %d must be between 0 and 3600", opt.Compress))
	}
	ws := WorkbookWindows()
	period := time.Duration(spec.Period)
	for _, w := range ws {
		if w.Long >= period {
			errs = append(errs, fmt.Errorf("period: %s must be longer than the %s burn-rate window", spec.Period, slo.FormatDuration(w.Long)))
			break
		}
	}
	if err := errors.Join(errs...); err != nil {
		return File{}, err
	}

	c := time.Duration(max(opt.Compress, 1))
	scale := func(d time.Duration) time.Duration { return d / c }
	periodName := slo.FormatDuration(scale(period))
	var f File
	period0 := Group{Name: "slo-period", Interval: slo.FormatDuration(scale(PeriodInterval))}
	for _, o := range spec.SLOs {
		labels := map[string]string{"slo": o.Name, "service": spec.Service}
		sel := seriesSelector(labels)
		g := Group{Name: "slo-" + o.Name}
		for _, w := range Windows(period, ws) {
			r := Rule{
				Record: ErrorRatioPrefix + slo.FormatDuration(scale(w)),
				Expr:   errorRatio(spec, o, slo.FormatDuration(scale(w))),
				Labels: labels,
			}
			if w == period {
				period0.Rules = append(period0.Rules, r)
				continue
			}
			g.Rules = append(g.Rules, r)
		}
		budget := num(o.ErrorBudget())
		for _, w := range ws {
			factor := num(w.Factor(period))
			long, short := slo.FormatDuration(scale(w.Long)), slo.FormatDuration(scale(w.Short))
			threshold := fmt.Sprintf("(%s * %s)", factor, budget)
			g.Rules = append(g.Rules, Rule{
				Alert: BurnAlert,
				Expr: fmt.Sprintf("%s%s%s > %s\nand\n%s%s%s > %s",
					ErrorRatioPrefix, long, sel, threshold, ErrorRatioPrefix, short, sel, threshold),
				For: slo.FormatDuration(scale(w.For)),
				Labels: map[string]string{
					"severity": w.Severity, "slo": o.Name, "long_window": long, "short_window": short,
				},
				Annotations: map[string]string{
					"summary": fmt.Sprintf("The %s SLO is burning its error budget %sx too fast (%s and %s windows).",
						o.Name, factor, long, short),
					"description": fmt.Sprintf("{{ $labels.service }}: {{ $value | humanizePercentage }} of requests failed the %s SLI over the last %s, "+
						"and more than %s over the last %s (%sx the %s error budget). Sustained, this spends the whole %s budget in %s.",
						o.Name, long, pct(w.Factor(period)*o.ErrorBudget()), short, factor, pct(o.ErrorBudget()),
						periodName, human(scale(time.Duration(float64(period)/w.Factor(period))))),
					"runbook_url":   spec.Links.Runbooks + "slo-" + o.Name + ".md",
					"dashboard_url": spec.Links.Grafana + "/d/" + spec.DashboardUID("slo") + "?var-slo=" + o.Name + "&var-service=" + url.QueryEscape(spec.Service),
				},
			})
		}
		f.Groups = append(f.Groups, g)
		period0.Rules = append(period0.Rules,
			Rule{Record: ObjectiveRecord, Expr: "vector(" + num(o.Objective) + ")", Labels: labels},
			Rule{
				Record: BudgetRemainingRecord,
				Expr:   fmt.Sprintf("1 - (%s%s%s / %s)", ErrorRatioPrefix, periodName, sel, budget),
				Labels: labels,
			})
	}
	f.Groups = append(f.Groups, period0)
	return f, nil
}

// Generate renders spec as a rule file (YAML with a DO-NOT-EDIT header).
func Generate(spec slo.Spec, opt Options) ([]byte, error) {
	f, err := Build(spec, opt)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	src := opt.Source
	if src == "" {
		src = "the SLO spec"
	}
	fmt.Fprintf(&b, "# Code generated by alerts/cmd/rulegen (make rules) from %s; DO NOT EDIT.\n", src)
	fmt.Fprintf(&b, "# Service %s, period %s.", spec.Service, spec.Period)
	if opt.Compress > 1 {
		fmt.Fprintf(&b, " Windows compressed %dx for the gameday: not for production.", opt.Compress)
	}
	b.WriteString("\n# Burn-rate alerts (Google SRE workbook):")
	for _, w := range WorkbookWindows() {
		fmt.Fprintf(&b, " %s %s/%s %sx for %s;", w.Severity, slo.FormatDuration(w.Long), slo.FormatDuration(w.Short),
			num(w.Factor(time.Duration(spec.Period))), slo.FormatDuration(w.For))
	}
	b.Truncate(b.Len() - 1)
	b.WriteString(".\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("encode rules: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode rules: %w", err)
	}
	return b.Bytes(), nil
}

// errorRatio is the share of bad events among valid events over window w,
// as a ratio of summed rates. A service without traffic, or with traffic but
// no bad-event series, yields 0 rather than NaN or no data.
func errorRatio(spec slo.Spec, o slo.SLO, w string) string {
	count := func(extra string) string {
		return fmt.Sprintf("sum(rate(%s_count{%s%s}[%s]))", slo.Metric, spec.Selector, extra, w)
	}
	switch o.SLI.Type {
	case slo.Latency:
		// Valid events: non-5xx requests (a failed request is the
		// availability SLO's business). Bad: those slower than the threshold.
		// A missing bucket series counts every request as slow, so a threshold
		// that is not a bucket boundary shows up loudly instead of as a perfect SLI.
		bucket := fmt.Sprintf("sum(rate(%s_bucket{%s,code!~\"5..\",%s}[%s]))", slo.Metric, spec.Selector, leMatcher(o.SLI.ThresholdSeconds), w)
		return fmt.Sprintf("(\n  %s\n  -\n  (\n    %s\n    or vector(0)\n  )\n)\n/\n(\n  %s > 0\n)\nor vector(0)",
			count(`,code!~"5.."`), bucket, count(`,code!~"5.."`))
	default:
		return fmt.Sprintf("(\n  %s\n  or vector(0)\n)\n/\n(\n  %s > 0\n)\nor vector(0)",
			count(`,code=~"5.."`), count(""))
	}
}

// leMatcher selects the bucket whose upper bound is v. Integral bounds are
// printed "1" by the Prometheus text format but "1.0" by OpenMetrics and
// Prometheus 3, so they match both spellings.
func leMatcher(v float64) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if v == math.Trunc(v) {
		return fmt.Sprintf(`le=~"%s|%s\\.0"`, s, s)
	}
	return fmt.Sprintf(`le="%s"`, s)
}

// seriesSelector renders labels as a PromQL selector with sorted keys.
func seriesSelector(labels map[string]string) string {
	keys := slices.Sorted(maps.Keys(labels))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, labels[k])
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// num formats a factor or ratio with at most 6 significant digits, so
// 1 - 0.999 prints as 0.001 and 0.1 x 28d / 3d as 0.933333.
func num(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

// pct formats a ratio as a percentage for annotations (0.0144 -> "1.44%").
func pct(v float64) string { return strconv.FormatFloat(v*100, 'g', 4, 64) + "%" }

// human formats a duration in days, hours and minutes ("2d 2h").
func human(d time.Duration) string {
	d = d.Round(time.Second)
	var parts []string
	for _, u := range []struct {
		s string
		d time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}} {
		if n := d / u.d; n > 0 {
			parts = append(parts, strconv.FormatInt(int64(n), 10)+u.s)
			d -= n * u.d
		}
		if len(parts) == 2 {
			break
		}
	}
	if len(parts) == 0 {
		return "0s"
	}
	return strings.Join(parts, " ")
}
