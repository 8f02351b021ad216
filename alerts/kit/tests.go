package kit

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/glasshouse-dev/glasshouse/alerts/rules"
	"github.com/glasshouse-dev/glasshouse/alerts/slo"
)

// testFile is a promtool rule-test file.
type testFile struct {
	RuleFiles          []string    `yaml:"rule_files"`
	EvaluationInterval string      `yaml:"evaluation_interval"`
	Tests              []testGroup `yaml:"tests"`
}

type testGroup struct {
	Name        string      `yaml:"name"`
	Interval    string      `yaml:"interval"`
	InputSeries []series    `yaml:"input_series"`
	AlertTests  []alertTest `yaml:"alert_rule_test"`
}

type series struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

type alertTest struct {
	EvalTime  string     `yaml:"eval_time"`
	Alertname string     `yaml:"alertname"`
	ExpAlerts []expAlert `yaml:"exp_alerts"`
}

type expAlert struct {
	ExpLabels      map[string]string `yaml:"exp_labels"`
	ExpAnnotations map[string]string `yaml:"exp_annotations"`
}

// seriesLabels are the labels test series carry so that the spec's
// selector picks them: its equality matchers, plus an instance. Other
// matcher types cannot be satisfied by a fixed value, so they are an error.
func seriesLabels(spec slo.Spec) (map[string]string, error) {
	ms, err := parser.NewParser(parser.Options{}).ParseMetricSelector("{" + spec.Selector + "}")
	if err != nil {
		return nil, fmt.Errorf("selector: %w", err)
	}
	out := map[string]string{"instance": spec.Service + ":9100"}
	for _, m := range ms {
		if m.Type != labels.MatchEqual {
			return nil, fmt.Errorf("selector: generated promtool tests need equality matchers only, not %s", m)
		}
		out[m.Name] = m.Value
	}
	if out["job"] == "" {
		out["job"] = spec.Job()
	}
	return out, nil
}

// sel renders a series selector: name{labels, extra...} with sorted keys.
func sel(name string, lbl map[string]string, extra ...string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(lbl)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, lbl[k]))
	}
	return name + "{" + strings.Join(append(parts, extra...), ",") + "}"
}

func minutes(d time.Duration) string { return slo.FormatDuration(d) }

// sloTests makes every window pair of every SLO fire with a bad-event ratio
// 5% above its threshold (and no other pair: the ratio stays below the
// next faster pair's threshold, and the slower pairs' for: has not passed),
// and stay quiet 5% below it, so a threshold moved by 10% either way fails
// a test. Ratios are constant, so the alert's $value
// is exact on promtool 2.x and 3.x.
func sloTests(spec slo.Spec, lbl map[string]string) (testFile, error) {
	f, err := rules.Build(spec, rules.Options{})
	if err != nil {
		return testFile{}, err
	}
	tf := testFile{RuleFiles: []string{"../" + RulesFile}, EvaluationInterval: "1m"}
	period := time.Duration(spec.Period)
	ws := rules.WorkbookWindows()
	var errs []error
	for oi, o := range spec.SLOs {
		alerts := f.Groups[oi].Rules
		for wi, w := range ws {
			thr := w.Factor(period) * o.ErrorBudget()
			if thr*1.05 >= 1 {
				continue // a ratio above 100% cannot happen: this pair never fires
			}
			n := 10000
			for thr*float64(n)*0.05 < 2 {
				n *= 10
			}
			hi, lo := int(math.Round(thr*1.05*float64(n))), int(math.Round(thr*0.95*float64(n)))
			if float64(hi)/float64(n) <= thr || float64(lo)/float64(n) >= thr {
				errs = append(errs, fmt.Errorf("slo %s %s/%s: cannot place ratios around %g", o.Name, minutes(w.Long), minutes(w.Short), thr))
				continue
			}
			if wi > 0 && float64(hi)/float64(n) >= ws[wi-1].Factor(period)*o.ErrorBudget() {
				errs = append(errs, fmt.Errorf("slo %s: window pairs %d and %d are too close to test apart", o.Name, wi-1, wi))
				continue
			}
			var rule rules.Rule
			for _, r := range alerts {
				if r.Alert == rules.BurnAlert && r.Labels["long_window"] == minutes(w.Long) {
					rule = r
				}
			}
			samples := int((w.For + 3*time.Minute) / time.Minute)
			pair := fmt.Sprintf("%s/%s", minutes(w.Long), minutes(w.Short))
			for _, c := range []struct {
				name string
				bad  int
				fire bool
			}{{"fires 5% above", hi, true}, {"quiet 5% below", lo, false}} {
				g := testGroup{
					Name:        fmt.Sprintf("%s %s (%s, threshold %.4g%%): %s", o.Name, pair, w.Severity, thr*100, c.name),
					Interval:    "1m",
					InputSeries: burnSeries(spec, o, lbl, n, c.bad, samples),
				}
				var exp []expAlert
				if c.fire {
					labels := map[string]string{"service": spec.Service}
					maps.Copy(labels, rule.Labels)
					ann := map[string]string{}
					for k, v := range rule.Annotations {
						v = strings.ReplaceAll(v, "{{ $labels.service }}", spec.Service)
						v = strings.ReplaceAll(v, "{{ $value | humanizePercentage }}", fmt.Sprintf("%.4g%%", float64(c.bad)/float64(n)*100))
						ann[k] = v
					}
					exp = []expAlert{{labels, ann}}
				}
				g.AlertTests = []alertTest{
					{minutes(w.For), rules.BurnAlert, nil}, // pending at most
					{minutes(w.For + 2*time.Minute), rules.BurnAlert, exp},
				}
				tf.Tests = append(tf.Tests, g)
			}
		}
	}
	return tf, errors.Join(errs...)
}

// burnSeries is traffic with bad of every n requests a minute bad for o,
// and good for every other SLO of spec.
func burnSeries(spec slo.Spec, o slo.SLO, lbl map[string]string, n, bad, samples int) []series {
	const start = 1000000
	l := map[string]string{"method": "GET", "route": "/", "code": "200"}
	maps.Copy(l, lbl)
	count := "http_server_request_duration_seconds_count"
	bucket := "http_server_request_duration_seconds_bucket"
	vals := func(inc int) string { return fmt.Sprintf("%d+%dx%d", start, inc, samples) }
	var out []series
	good := n
	if o.SLI.Type == slo.Availability {
		good = n - bad
		l5 := maps.Clone(l)
		l5["code"] = "500"
		out = append(out, series{sel(count, l5), vals(bad)})
	}
	out = append(out, series{sel(count, l), vals(good)})
	seen := map[string]bool{}
	for _, other := range spec.SLOs {
		if other.SLI.Type != slo.Latency {
			continue
		}
		le := strconv.FormatFloat(other.SLI.ThresholdSeconds, 'f', -1, 64)
		if seen[le] {
			continue
		}
		seen[le] = true
		fast := good
		if other.Name == o.Name {
			fast = n - bad
		}
		out = append(out, series{sel(bucket, l, fmt.Sprintf("le=%q", le)), vals(fast)})
	}
	return out
}

// symptomTests fires every symptom alert once and checks a healthy service
// raises none.
func symptomTests(spec slo.Spec, lbl map[string]string) testFile {
	tf := testFile{RuleFiles: []string{"../" + SymptomsFile}, EvaluationInterval: "15s"}
	byName := map[string]rules.Rule{}
	for _, s := range symptoms() {
		byName[s.alert] = s.rule(spec)
	}
	expect := func(alert string, labels map[string]string) []expAlert {
		r := byName[alert]
		l := map[string]string{"severity": r.Labels["severity"]}
		maps.Copy(l, labels)
		ann := map[string]string{}
		for k, v := range r.Annotations {
			v = strings.ReplaceAll(v, "{{ $labels.instance }}", labels["instance"])
			ann[k] = strings.ReplaceAll(v, "{{ $labels.job }}", labels["job"])
		}
		return []expAlert{{l, ann}}
	}
	noAlerts := func(at string) []alertTest {
		var out []alertTest
		for _, s := range symptoms() {
			out = append(out, alertTest{at, s.alert, nil})
		}
		return out
	}
	// onset is the test of one alert: with input, it has not fired at
	// quiet and fires at firing, with labels.
	onset := func(alert, what, interval, quiet, firing string, labels map[string]string, input ...series) testGroup {
		return testGroup{Name: alert + ": " + what, Interval: interval, InputSeries: input,
			AlertTests: []alertTest{{quiet, alert, nil}, {firing, alert, expect(alert, labels)}}}
	}
	jobInstance := map[string]string{"job": lbl["job"], "instance": lbl["instance"]}
	absent := maps.Clone(lbl)
	delete(absent, "instance")
	tf.Tests = []testGroup{
		{Name: "healthy: no symptom alert", Interval: "15s", InputSeries: []series{
			{sel("up", lbl), "1x160"},
			{sel("system_cpu_utilization_ratio", lbl), "0.5x160"},
			{sel("system_memory_available_bytes", lbl), "50x160"},
			{sel("system_memory_total_bytes", lbl), "100x160"},
			{sel("go_goroutines", lbl), "1500x160"},
			{sel("app_trace_spans_dropped_total", lbl), "0x160"},
		}, AlertTests: noAlerts("39m")},
		onset("TargetDown", "fires after 1m of failed scrapes", "15s", "45s", "5m", lbl,
			series{sel("up", lbl), "0x40"}),
		onset("TargetMissing", "no target for 5m", "15s", "4m", "6m", absent,
			series{`up{job="some-other-job",instance="other:9100"}`, "1x40"}),
		onset("HostCPUSaturated", "above 90% for 10m", "15s", "9m", "11m", lbl,
			series{sel("system_cpu_utilization_ratio", lbl), "0.95x60"}),
		onset("HostMemorySaturated", "under 10% available for 15m", "15s", "14m", "16m", lbl,
			series{sel("system_memory_available_bytes", lbl), "5x80"},
			series{sel("system_memory_total_bytes", lbl), "100x80"}),
		onset("GoroutinesGrowing", "over 1000 and +500 an hour", "1m", "40m", "110m", lbl,
			series{sel("go_goroutines", lbl), "0+20x120"}),
		onset("TraceSpansDropped", "drops for 10m", "15s", "9m", "16m", jobInstance,
			series{sel("app_trace_spans_dropped_total", lbl), "0+10x80"}),
	}
	return tf
}
