package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/glasshouse-dev/glasshouse/loadtest/threshold"
)

// Result is the outcome of a run: aggregates of every metric, threshold
// results and per-scenario accounting.
type Result struct {
	// Duration is the execution time (scenarios only, without setup and
	// teardown).
	Duration   time.Duration
	Scenarios  []ScenarioResult
	Thresholds []ThresholdResult
	// Metrics holds every metric with samples, sorted by name, plus the
	// sub-metrics named by thresholds and
	// http_req_duration{expected_response:true}.
	Metrics    []MetricSummary
	TrendStats []string
	// Checks lists every check by group, in the order first seen.
	Checks []CheckResult
	// ConnectionsOpened counts TCP connections dialled (keep-alive reuses
	// the rest; an open-model test facing a stall opens one per extra VU).
	ConnectionsOpened int64
	// Timeline holds one point per second when RunOptions.Timeline is set.
	Timeline []TimelinePoint
	reg      *registry
}

// MetricSummary is one metric's (or sub-metric's) aggregate over the run.
type MetricSummary struct {
	Name   string // "http_req_duration" or "http_req_duration{expected_response:true}"
	Parent string // the metric's name (equal to Name for a metric)
	Metric Metric
	Agg    Agg
}

// CheckResult is one check's passes and fails.
type CheckResult struct {
	Group         string // "::a::b", "" for the root
	Name          string
	Passes, Fails uint64
}

func (r *runner) result() *Result {
	res := &Result{Duration: r.elapsed(), Thresholds: r.thresholdResults(), reg: r.reg, ConnectionsOpened: r.connsOpened.Load()}
	res.TrendStats = r.test.Options.SummaryTrendStats
	if len(res.TrendStats) == 0 {
		res.TrendStats = []string{"avg", "min", "med", "max", "p(90)", "p(95)", "p(99)"}
	}
	for _, s := range r.scenarios {
		res.Scenarios = append(res.Scenarios, s.result())
	}
	r.reg.mu.RLock()
	metrics := slices.Clone(r.reg.order)
	r.reg.mu.RUnlock()
	slices.SortFunc(metrics, func(a, b *metricState) int { return strings.Compare(a.Name, b.Name) })
	subs := map[string][][]Tag{HTTPReqDuration.Name: {{{Key: "expected_response", Value: "true"}}}}
	for _, ct := range r.thresholds {
		if len(ct.sel.Tags) > 0 && !slices.ContainsFunc(subs[ct.sel.Metric], func(t []Tag) bool { return slices.Equal(t, ct.sel.Tags) }) {
			subs[ct.sel.Metric] = append(subs[ct.sel.Metric], ct.sel.Tags)
		}
	}
	for _, st := range metrics {
		a := st.aggregate(nil)
		if !a.HasData {
			continue
		}
		res.Metrics = append(res.Metrics, MetricSummary{Name: st.Name, Parent: st.Name, Metric: st.Metric, Agg: a})
		for _, tags := range subs[st.Name] {
			sa := st.aggregate(tags)
			name := threshold.Selector{Metric: st.Name, Tags: tags}.String()
			res.Metrics = append(res.Metrics, MetricSummary{Name: name, Parent: st.Name, Metric: st.Metric, Agg: sa})
		}
	}
	// Checks by (group, name) in first-seen order.
	idx := map[[2]string]int{}
	r.checks.mu.RLock()
	order := slices.Clone(r.checks.order)
	r.checks.mu.RUnlock()
	for _, s := range order {
		g, _ := s.tags.Get("group")
		n, _ := s.tags.Get("check")
		k := [2]string{g, n}
		i, ok := idx[k]
		if !ok {
			i = len(res.Checks)
			idx[k] = i
			res.Checks = append(res.Checks, CheckResult{Group: g, Name: n})
		}
		s.mu.Lock()
		res.Checks[i].Passes += s.nz
		res.Checks[i].Fails += s.n - s.nz
		s.mu.Unlock()
	}
	return res
}

// ThresholdsPassed reports whether every threshold passed.
func (res *Result) ThresholdsPassed() bool { return len(res.FailedThresholds()) == 0 }

// FailedThresholds lists the failed thresholds as "metric: expr".
func (res *Result) FailedThresholds() []string {
	var out []string
	for _, t := range res.Thresholds {
		if !t.OK {
			out = append(out, t.Metric+": "+t.Expr)
		}
	}
	return out
}

// Aggregate returns the aggregate of a metric selector such as
// "http_req_duration{scenario:browse}" over the whole run.
func (res *Result) Aggregate(selector string) (Agg, error) {
	sel, err := threshold.ParseSelector(selector)
	if err != nil {
		return Agg{}, err
	}
	st := res.reg.metric(sel.Metric)
	if st == nil {
		return Agg{}, fmt.Errorf("metric %q not found", sel.Metric)
	}
	return st.aggregate(sel.Tags), nil
}

// Value returns aggregation stat ("count", "rate", "value", "avg", "min",
// "max", "med", "p(99)") of a metric selector over the whole run.
func (res *Result) Value(selector, stat string) (float64, error) {
	a, err := res.Aggregate(selector)
	if err != nil {
		return 0, err
	}
	e, err := threshold.Parse(stat + "<0")
	if err != nil {
		return 0, err
	}
	if !validAgg(a.Metric.Type, e.Agg.Name) {
		return 0, fmt.Errorf("%s does not apply to %s metric %s", stat, a.Metric.Type, selector)
	}
	return aggValue(a, e.Agg, res.Duration), nil
}

func parseTrendStat(s string) (threshold.Agg, error) {
	switch s {
	case "count":
		return threshold.Agg{Name: "count"}, nil
	}
	e, err := threshold.Parse(s + "<0")
	if err != nil || !validAgg(Trend, e.Agg.Name) {
		return threshold.Agg{}, fmt.Errorf("options: summary trend stat %q: want avg, min, med, max, count or p(N)", s)
	}
	return e.Agg, nil
}

func trendStat(a Agg, stat string) float64 {
	if stat == "count" {
		return float64(a.Hist.Count())
	}
	agg, err := parseTrendStat(stat)
	if err != nil {
		return math.NaN()
	}
	return aggValue(a, agg, 0)
}

// values returns k6's JSON summary values of a metric.
func (res *Result) values(m MetricSummary) map[string]float64 {
	a := m.Agg
	switch m.Metric.Type {
	case Counter:
		return map[string]float64{"count": a.Sum, "rate": perSecond(a.Sum, res.Duration)}
	case Gauge:
		return map[string]float64{"value": a.Value, "min": a.Min, "max": a.Max}
	case Rate:
		return map[string]float64{"rate": a.RateValue(), "passes": float64(a.Passes), "fails": float64(a.Count - a.Passes)}
	}
	v := map[string]float64{}
	for _, s := range res.TrendStats {
		v[s] = trendStat(a, s)
	}
	return v
}

func perSecond(v float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return v / d.Seconds()
}

// WriteJSON writes the machine-readable summary (k6's handleSummary data
// shape): per metric its type, contains, values and thresholds with ok
// flags, the root group's checks, and glasshouse's per-scenario accounting.
func (res *Result) WriteJSON(w io.Writer) error {
	type jthreshold struct {
		OK bool `json:"ok"`
	}
	type jmetric struct {
		Type       string                `json:"type"`
		Contains   string                `json:"contains"`
		Values     map[string]float64    `json:"values"`
		Thresholds map[string]jthreshold `json:"thresholds,omitempty"`
	}
	type jcheck struct {
		Name   string `json:"name"`
		Path   string `json:"path"`
		Passes uint64 `json:"passes"`
		Fails  uint64 `json:"fails"`
	}
	type jgroup struct {
		Name   string    `json:"name"`
		Path   string    `json:"path"`
		Groups []*jgroup `json:"groups"`
		Checks []jcheck  `json:"checks"`
	}
	type jscenario struct {
		Executor    string  `json:"executor"`
		Scheduled   int64   `json:"scheduled"`
		Started     int64   `json:"started"`
		Completed   int64   `json:"completed"`
		Interrupted int64   `json:"interrupted"`
		Errors      int64   `json:"errors"`
		Dropped     int64   `json:"dropped"`
		VUs         int64   `json:"vus"`
		MaxVUs      int     `json:"maxVUs"`
		PeakBusy    int64   `json:"peakBusy"`
		DurationMs  float64 `json:"durationMs"`
	}
	out := struct {
		Metrics   map[string]jmetric   `json:"metrics"`
		RootGroup *jgroup              `json:"root_group"`
		Options   map[string]any       `json:"options"`
		State     map[string]any       `json:"state"`
		Scenarios map[string]jscenario `json:"scenarios"`
	}{
		Metrics:   map[string]jmetric{},
		RootGroup: &jgroup{Groups: []*jgroup{}, Checks: []jcheck{}},
		Options:   map[string]any{"summaryTrendStats": res.TrendStats},
		State:     map[string]any{"testRunDurationMs": ms(res.Duration), "thresholdsPassed": res.ThresholdsPassed(), "connectionsOpened": res.ConnectionsOpened},
		Scenarios: map[string]jscenario{},
	}
	for _, m := range res.Metrics {
		jm := jmetric{Type: m.Metric.Type.String(), Contains: m.Metric.Contains.String(), Values: res.values(m)}
		for _, t := range res.Thresholds {
			if t.Metric == m.Name || canonicalSelector(t.Metric) == m.Name {
				if jm.Thresholds == nil {
					jm.Thresholds = map[string]jthreshold{}
				}
				jm.Thresholds[t.Expr] = jthreshold{OK: t.OK}
			}
		}
		out.Metrics[m.Name] = jm
	}
	groups := map[string]*jgroup{"": out.RootGroup}
	var group func(path string) *jgroup
	group = func(path string) *jgroup {
		if g, ok := groups[path]; ok {
			return g
		}
		i := strings.LastIndex(path, "::")
		parent := group(path[:i])
		g := &jgroup{Name: path[i+2:], Path: path, Groups: []*jgroup{}, Checks: []jcheck{}}
		parent.Groups = append(parent.Groups, g)
		groups[path] = g
		return g
	}
	for _, c := range res.Checks {
		g := group(c.Group)
		g.Checks = append(g.Checks, jcheck{Name: c.Name, Path: c.Group + "::" + c.Name, Passes: c.Passes, Fails: c.Fails})
	}
	for _, s := range res.Scenarios {
		out.Scenarios[s.Name] = jscenario{Executor: s.Executor, Scheduled: s.Scheduled, Started: s.Started, Completed: s.Completed,
			Interrupted: s.Interrupted, Errors: s.Errors, Dropped: s.Dropped, VUs: s.VUs, MaxVUs: s.MaxVUs, PeakBusy: s.PeakBusy, DurationMs: ms(s.Duration)}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

func canonicalSelector(s string) string {
	sel, err := threshold.ParseSelector(s)
	if err != nil {
		return s
	}
	return sel.String()
}

// WriteSummary writes the end-of-test summary in k6's compact layout:
// thresholds first (✓/✗ with the observed value), then total results by
// section (checks, HTTP, EXECUTION, NETWORK, CUSTOM), then glasshouse's
// SCENARIOS block with scheduled, started and dropped iterations.
func (res *Result) WriteSummary(w io.Writer) error {
	var b strings.Builder
	if len(res.Thresholds) > 0 {
		b.WriteString("\n  █ THRESHOLDS \n")
		last := ""
		for _, t := range res.Thresholds {
			if t.Metric != last {
				fmt.Fprintf(&b, "\n    %s\n", t.Metric)
				last = t.Metric
			}
			mark := "✓"
			if !t.OK {
				mark = "✗"
			}
			fmt.Fprintf(&b, "    %s '%s' %s=%s\n", mark, t.Expr, t.Agg, formatThresholdValue(t))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n  █ TOTAL RESULTS \n")

	width := 0
	for _, m := range res.Metrics {
		n := len(m.Name)
		if m.Name != m.Parent {
			n = len(subLabel(m)) + 2
		}
		width = max(width, n)
	}
	width = max(width+3, 35)
	line := func(name, value string, indent int) {
		pad := max(width-indent-utf8Len(name), 1)
		fmt.Fprintf(&b, "    %s%s%s: %s\n", strings.Repeat(" ", indent), name, strings.Repeat(".", pad), value)
	}

	if c := res.metric(Checks.Name); c != nil {
		a := c.Agg
		b.WriteString("\n")
		line("checks_total", fmt.Sprintf("%-7d %s/s", a.Count, formatFloat(perSecond(float64(a.Count), res.Duration))), 0)
		line("checks_succeeded", fmt.Sprintf("%-7s %d out of %d", percent(a.RateValue()), a.Passes, a.Count), 0)
		fails := a.Count - a.Passes
		fr := 0.0
		if a.Count > 0 {
			fr = float64(fails) / float64(a.Count)
		}
		line("checks_failed", fmt.Sprintf("%-7s %d out of %d", percent(fr), fails, a.Count), 0)
		group := "\x00"
		for _, c := range res.Checks {
			indent := 4
			if c.Group != group {
				group = c.Group
				if c.Group != "" {
					fmt.Fprintf(&b, "\n    █ %s\n", groupLabel(c.Group))
				}
				b.WriteString("\n")
			}
			if c.Group != "" {
				indent = 6
			}
			pad := strings.Repeat(" ", indent)
			if c.Fails == 0 {
				fmt.Fprintf(&b, "%s✓ %s\n", pad, c.Name)
			} else {
				total := c.Passes + c.Fails
				fmt.Fprintf(&b, "%s✗ %s\n%s  ↳  %d%% — ✓ %d / ✗ %d\n", pad, c.Name, pad, c.Passes*100/total, c.Passes, c.Fails)
			}
		}
	}

	sections := []struct {
		title string
		match func(string) bool
	}{
		{"HTTP", func(n string) bool { return strings.HasPrefix(n, "http_") }},
		{"EXECUTION", func(n string) bool {
			return slices.Contains([]string{"dropped_iterations", "group_duration", "iteration_duration", "iterations", "schedule_lag", "vus", "vus_max"}, n)
		}},
		{"NETWORK", func(n string) bool { return n == "data_received" || n == "data_sent" }},
	}
	builtin := map[string]bool{}
	for _, m := range builtinMetrics() {
		builtin[m.Name] = true
	}
	printSection := func(title string, match func(MetricSummary) bool) {
		first := true
		for _, m := range res.Metrics {
			if !match(m) {
				continue
			}
			if first {
				fmt.Fprintf(&b, "\n    %s\n", title)
				first = false
			}
			if m.Name != m.Parent {
				line(subLabel(m), res.formatValues(m), 2)
			} else {
				line(m.Name, res.formatValues(m), 0)
			}
		}
	}
	for _, s := range sections {
		printSection(s.title, func(m MetricSummary) bool { return builtin[m.Parent] && m.Parent != Checks.Name && s.match(m.Parent) })
	}
	printSection("CUSTOM", func(m MetricSummary) bool { return !builtin[m.Parent] })

	if len(res.Scenarios) > 0 {
		b.WriteString("\n\n  █ SCENARIOS \n\n")
		for _, s := range res.Scenarios {
			if s.Open {
				started := 100.0
				if s.Scheduled > 0 {
					started = 100 * float64(s.Started) / float64(s.Scheduled)
				}
				fmt.Fprintf(&b, "    %s (%s, open model): %d scheduled, %d started (%.2f%%), %d dropped; %d complete, %d interrupted; peak %d busy of %d VUs (max %d)",
					s.Name, s.Executor, s.Scheduled, s.Started, started, s.Dropped, s.Completed, s.Interrupted, s.PeakBusy, s.VUs, s.MaxVUs)
				if lag, err := res.Aggregate("schedule_lag{scenario:" + s.Name + "}"); err == nil && lag.HasData {
					fmt.Fprintf(&b, "; schedule lag p50=%s p99=%s", formatMs(lag.Hist.Quantile(0.5)), formatMs(lag.Hist.Quantile(0.99)))
				}
				b.WriteString("\n")
			} else {
				fmt.Fprintf(&b, "    %s (%s, closed model): %d VUs, %d complete, %d interrupted\n", s.Name, s.Executor, s.VUs, s.Completed, s.Interrupted)
			}
			if s.Errors > 0 {
				fmt.Fprintf(&b, "      ↳ %d iterations returned an error\n", s.Errors)
			}
		}
		if res.ConnectionsOpened > 0 {
			fmt.Fprintf(&b, "    connections opened: %d\n", res.ConnectionsOpened)
		}
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func (res *Result) metric(name string) *MetricSummary {
	for i := range res.Metrics {
		if res.Metrics[i].Name == name {
			return &res.Metrics[i]
		}
	}
	return nil
}

func subLabel(m MetricSummary) string {
	inner := strings.TrimSuffix(strings.TrimPrefix(m.Name, m.Parent+"{"), "}")
	return "{ " + inner + " }"
}

func utf8Len(s string) int { return len([]rune(s)) }

func (res *Result) formatValues(m MetricSummary) string {
	a := m.Agg
	switch m.Metric.Type {
	case Counter:
		rate := perSecond(a.Sum, res.Duration)
		if m.Metric.Contains == Data {
			return fmt.Sprintf("%-7s %s/s", formatBytes(a.Sum), formatBytes(rate))
		}
		return fmt.Sprintf("%-7s %s/s", formatFloat(a.Sum), formatFloat(rate))
	case Gauge:
		return fmt.Sprintf("%-7s min=%s max=%s", formatFloat(a.Value), formatFloat(a.Min), formatFloat(a.Max))
	case Rate:
		return fmt.Sprintf("%-7s %d out of %d", percent(a.RateValue()), a.Passes, a.Count)
	}
	parts := make([]string, 0, len(res.TrendStats))
	for _, s := range res.TrendStats {
		v := trendStat(a, s)
		if m.Metric.Contains == Time && s != "count" {
			parts = append(parts, s+"="+formatMs(v))
		} else {
			parts = append(parts, s+"="+formatFloat(v))
		}
	}
	return strings.Join(parts, " ")
}

func formatThresholdValue(t ThresholdResult) string {
	switch {
	case t.Type == Rate:
		return percent(t.Value)
	case t.Type == Counter && t.Agg == threshold.Rate:
		return formatFloat(t.Value) + "/s"
	case t.Type == Trend && t.Contains == Time:
		return formatMs(t.Value)
	case t.Contains == Data:
		return formatBytes(t.Value)
	}
	return formatFloat(t.Value)
}

func percent(f float64) string { return strconv.FormatFloat(100*f, 'f', 2, 64) + "%" }

// formatFloat prints integers without decimals and others with up to 2
// (k6's style: "45", "6.56").
func formatFloat(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	s := strconv.FormatFloat(v, 'f', 2, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// formatMs prints milliseconds as k6 prints durations: 15.31µs, 148.21ms,
// 1.2s, 1m2.5s.
func formatMs(v float64) string {
	d := time.Duration(v * float64(time.Millisecond))
	switch {
	case v == 0:
		return "0s"
	case math.Abs(v) < 0.001:
		return strconv.FormatFloat(v*1e6, 'f', 0, 64) + "ns"
	case math.Abs(v) < 1:
		return strconv.FormatFloat(v*1e3, 'f', 2, 64) + "µs"
	case math.Abs(v) < 1000:
		return strconv.FormatFloat(v, 'f', 2, 64) + "ms"
	case math.Abs(v) < 60_000:
		return formatFloat(v/1000) + "s"
	}
	return d.Round(10 * time.Millisecond).String()
}

// formatBytes prints SI bytes as k6 does: 45 B, 4.7 kB, 519 kB, 1.2 MB.
func formatBytes(v float64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	i := 0
	for math.Abs(v) >= 1000 && i < len(units)-1 {
		v /= 1000
		i++
	}
	if i > 0 && math.Abs(v) < 10 {
		return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i]
	}
	return strconv.FormatFloat(math.Round(v), 'f', 0, 64) + " " + units[i]
}
