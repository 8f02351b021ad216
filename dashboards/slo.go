package dashboards

import (
	"fmt"
	"strings"
	"time"

	"github.com/glasshouse-dev/glasshouse/alerts/rules"
	"github.com/glasshouse-dev/glasshouse/alerts/slo"
)

// BurnWindow is one multi-window multi-burn-rate alert as the SLO dashboard
// draws it: a panel of the long- and short-window burn rates with a
// threshold line at Factor.
type BurnWindow struct {
	rules.BurnWindow
	Factor     float64       // burn-rate threshold for the period, e.g. 14.4
	LongLabel  string        // "1h": the long_window label and recording-rule suffix
	ShortLabel string        // "5m"
	ExhaustsIn time.Duration // how long a burn at Factor takes to spend the whole budget
}

// BurnWindows returns the alert window pairs the rule generator uses
// (rules.WorkbookWindows) with their factors for period: budget_fraction x
// period / long_window, i.e. 14.4, 6, 3 and 1 for 30 days. The dashboard and
// the alerts share this code, so their thresholds cannot drift apart.
func BurnWindows(period time.Duration) []BurnWindow {
	var out []BurnWindow
	for _, w := range rules.WorkbookWindows() {
		f := round12(w.Factor(period))
		out = append(out, BurnWindow{
			BurnWindow: w, Factor: f,
			LongLabel: slo.FormatDuration(w.Long), ShortLabel: slo.FormatDuration(w.Short),
			ExhaustsIn: time.Duration(float64(period) / f),
		})
	}
	return out
}

// SLOVar is the SLO dashboard's variable holding SLO names; alert
// annotations link to the dashboard with ?var-slo=<name>.
const SLOVar = "slo"

// ServiceVar is the SLO dashboard's variable holding the service label of
// the recording rules, so one dashboard shows every service's SLOs; alert
// annotations link with &var-service=<service>.
const ServiceVar = "service"

// serviceVar lists the services that have SLO recording rules, spec's by default.
func serviceVar(spec slo.Spec) Variable {
	v := queryVar(ServiceVar, "Service", "Service label of the SLO recording rules (one SLO spec per service).",
		"label_values("+rules.ObjectiveRecord+", service)")
	v.Current = Current{Selected: true, Text: spec.Service, Value: spec.Service}
	return v
}

// SLO builds the SLO / error-budget dashboard from spec. An overview row
// compares every SLO; a row repeated per selected SLO shows its objective,
// SLI over the period, budget remaining, time to exhaustion, burn rate per
// alert window pair with the threshold line, and the burn-rate alerts' state.
// Everything comes from the generated recording rules, the SLO names from the
// spec, and the thresholds from the period: nothing is typed in twice.
func SLO(spec slo.Spec) *Dashboard {
	period := time.Duration(spec.Period)
	p := spec.Period.String()
	d := newDashboard(setOf(spec), "slo", "SLOs and error budget",
		fmt.Sprintf("Service-level objectives of the selected service (variable %s, default %s) over a %s period, from the SLO recording rules: SLI, error budget, burn rates against the multi-window alert thresholds, and alert state. Generated from the SLO spec of %s: run `make rules` after editing it.", ServiceVar, spec.Service, p, spec.Service),
		durCount)
	d.Time = TimeRange{From: "now-24h", To: "now"}
	d.Templating.List = append(d.Templating.List, serviceVar(spec), sloVar(spec))
	l := newLayout(d)

	all := fmt.Sprintf(`slo=~"$%s",service="$%s"`, SLOVar, ServiceVar)
	one := fmt.Sprintf(`slo="$%s",service="$%s"`, SLOVar, ServiceVar)
	rec := func(name, m string) string { return name + "{" + m + "}" }
	ratio := func(window, m string) string { return rec(rules.ErrorRatioPrefix+window, m) }
	// burn is the error ratio over window divided by the SLO's error budget.
	burn := func(window, m string) string {
		return fmt.Sprintf("%s / on(slo, service) (1 - %s)", ratio(window, m), rec(rules.ObjectiveRecord, m))
	}

	var names []string
	for _, o := range spec.SLOs {
		names = append(names, fmt.Sprintf("%s (%s%%)", o.Name, fmtFloat(o.Objective*100)))
	}
	l.row("All SLOs: " + strings.Join(names, ", "))
	bg := gauge("Error budget remaining",
		fmt.Sprintf("Share of each SLO's %s error budget not yet spent (slo:error_budget_remaining:ratio): 1 untouched, 0 spent, below 0 breached.", p),
		"percentunit", 0, 1, qi(rec(rules.BudgetRemainingRecord, all), "{{slo}}"),
		Step{Color: "red"}, step("orange", 0.25), step("green", 0.5))
	bg.Type = "bargauge"
	bg.FieldConfig.Defaults.Min = ptr(-1.0)
	bg.Options = map[string]any{
		"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
		"orientation":   "horizontal", "displayMode": "lcd", "showUnfilled": true,
		"valueMode": "color", "namePlacement": "auto", "sizing": "auto", "minVizHeight": 16, "minVizWidth": 8, "maxVizHeight": 300,
	}
	l.add(8, 7, bg)
	p1 := withMin(timeseries("Burn rate, fastest window (1h)",
		"Error ratio over the last hour divided by each SLO's error budget. 1 spends the budget exactly over the period; the dashed line is the fast-burn page threshold.",
		"suffix:x", q(burn("1h", all), "{{slo}}")), 0)
	p1 = withThresholdLines(p1, step("red", BurnWindows(period)[0].Factor))
	l.add(8, 7, p1)
	l.add(8, 7, withNoValue(stateTimeline("Burn-rate alerts (all SLOs)",
		fmt.Sprintf("%s alerts per SLO and window pair: pending (condition true, waiting for its 'for'), firing (sent to Alertmanager). Empty while nothing burns.", rules.BurnAlert),
		alertMappings(), q(alertState(all, "slo, severity, long_window, short_window"), "{{slo}} {{severity}} {{long_window}}/{{short_window}}")),
		"No burn-rate alert pending or firing"))
	// A cross-check that needs no recording rule: each SLI computed from
	// the raw histogram of the selected job and instances.
	var raw []Target
	for _, o := range spec.SLOs {
		raw = append(raw, q(rawBadRatio(o), o.Name))
	}
	l.add(24, 7, withMin(timeseries("Bad-event ratio from raw metrics",
		"Each SLO's bad-event ratio over the rate interval, computed from http_server_request_duration_seconds of $job / $instance without recording rules: availability counts 5xx, latency counts non-5xx requests slower than its threshold. It should track the 5m recorded ratio below.",
		"percentunit", raw...), 0))

	l.row("SLO $" + SLOVar)
	d.Panels[len(d.Panels)-1].Repeat = SLOVar
	l.add(4, 5, stat("Objective",
		"Target share of good events for the $slo SLO (slo:objective:ratio).",
		"percentunit", qi(rec(rules.ObjectiveRecord, one), "objective")))
	sli := stat("SLI over the period ("+p+")",
		fmt.Sprintf("Share of good events over the last %s: 1 - %s%s, a ratio of summed counts (not an average of ratios). Compare with the objective.", p, rules.ErrorRatioPrefix, p),
		"percentunit", qi("1 - "+ratio(p, one), "SLI"))
	sli.FieldConfig.Defaults.Decimals = ptr(3)
	l.add(5, 5, sli)
	l.add(5, 5, gauge("Error budget remaining",
		fmt.Sprintf("Share of the %s error budget not yet spent: 1 - (bad ratio over %s / budget). Below 0 the SLO is breached.", p, p),
		"percentunit", 0, 1, qi(rec(rules.BudgetRemainingRecord, one), "remaining"),
		Step{Color: "red"}, step("orange", 0.25), step("green", 0.5)))
	ttl := withNoValue(stat("Time to exhaustion (at the 1h burn rate)",
		fmt.Sprintf("How long the remaining budget lasts if the last hour's burn rate continues: remaining x %s / burn rate(1h). Empty when nothing is burning.", p),
		"s",
		qi(fmt.Sprintf("clamp_min(%s, 0) * %d / on(slo, service) ((%s) > 0)",
			rec(rules.BudgetRemainingRecord, one), int64(period.Seconds()), burn("1h", one)), "time left"),
		step("orange", (24*time.Hour).Seconds()), step("green", (7*24*time.Hour).Seconds())), "Not burning")
	ttl.FieldConfig.Defaults.Thresholds.Steps[0].Color = "red"
	l.add(5, 5, ttl)
	l.add(5, 5, stat("Burn rate (1h)",
		"Error ratio over the last hour divided by the error budget: 1 spends exactly the budget over the period.",
		"suffix:x", qi(burn("1h", one), "burn rate"),
		step("orange", 1), step("red", BurnWindows(period)[0].Factor)))

	sliTS := timeseries("SLI (5m, 1h) vs objective",
		"Share of good events over 5-minute and 1-hour windows (recording rules), and the objective (dashed).",
		"percentunit",
		q("1 - "+ratio("5m", one), "5m"),
		q("1 - "+ratio("1h", one), "1h"),
		q(rec(rules.ObjectiveRecord, one), "objective"))
	sliTS.FieldConfig.Defaults.Max = ptr(1.0)
	sliTS.FieldConfig.Overrides = []Override{{
		Matcher: Matcher{ID: "byName", Options: "objective"},
		Properties: []Property{
			{ID: "custom.lineStyle", Value: LineStyle{Fill: "dash", Dash: []int{10, 10}}},
			{ID: "color", Value: Color{Mode: "fixed", FixedColor: "red"}},
		},
	}}
	l.add(12, 8, sliTS)
	l.add(12, 8, withThresholdLines(timeseries("Error budget remaining over time",
		"Share of the period's error budget left. Dashed line at 0: below it the SLO is breached.",
		"percentunit", q(rec(rules.BudgetRemainingRecord, one), "remaining")), step("red", 0)))

	for _, w := range BurnWindows(period) {
		bp := withMin(timeseries(fmt.Sprintf("Burn rate %s / %s (%s)", w.LongLabel, w.ShortLabel, w.Severity),
			fmt.Sprintf("Error ratio over %s and %s divided by the error budget. The %s alert fires when both stay above %sx for %s: %s%% of the %s budget spent in %s, all of it gone in %s.",
				w.LongLabel, w.ShortLabel, w.Severity, fmtFloat(w.Factor), slo.FormatDuration(w.For),
				fmtFloat(w.BudgetSpent*100), p, w.LongLabel, slo.FormatDuration(w.ExhaustsIn.Round(time.Hour))),
			"suffix:x",
			q(burn(w.LongLabel, one), w.LongLabel),
			q(burn(w.ShortLabel, one), w.ShortLabel)), 0)
		bp = withThresholdLines(bp, step("red", w.Factor))
		bp.FieldConfig.Defaults.Decimals = ptr(2)
		l.add(6, 7, bp)
	}
	l.add(24, 5, withNoValue(stateTimeline("Burn-rate alerts",
		fmt.Sprintf("State of the %s alerts for $slo, one line per window pair: pending (condition true, waiting for its 'for'), firing (sent to Alertmanager).", rules.BurnAlert),
		alertMappings(), q(alertState(one, "severity, long_window, short_window"), "{{severity}} {{long_window}}/{{short_window}}")),
		"No burn-rate alert pending or firing"))
	return d
}

// sloVar lists the spec's SLOs; the row below the overview repeats per value.
func sloVar(spec slo.Spec) Variable {
	var opts []any
	var names []string
	for _, o := range spec.SLOs {
		names = append(names, o.Name)
		opts = append(opts, map[string]any{"selected": false, "text": o.Name, "value": o.Name})
	}
	all := map[string]any{"selected": true, "text": "All", "value": "$__all"}
	return Variable{
		Name: SLOVar, Label: "SLO", Type: "custom",
		Description: "SLOs of alerts/slo.yaml; one row is repeated for each selected SLO.",
		Query:       strings.Join(names, ","),
		Current:     Current{Selected: true, Text: []string{"All"}, Value: []string{"$__all"}},
		Options:     append([]any{all}, opts...),
		IncludeAll:  true, Multi: true,
	}
}

// alertState is 2 for firing and 1 for pending burn-rate alerts matching m.
func alertState(m, by string) string {
	sel := fmt.Sprintf(`alertname=%q,%s`, rules.BurnAlert, m)
	return fmt.Sprintf(`2 * max by (%s) (ALERTS{%s,alertstate="firing"}) or max by (%s) (ALERTS{%s,alertstate="pending"})`, by, sel, by, sel)
}

func alertMappings() []any {
	return []any{map[string]any{"type": "value", "options": map[string]any{
		"1": map[string]any{"text": "pending", "color": "orange", "index": 0},
		"2": map[string]any{"text": "firing", "color": "red", "index": 1},
	}}}
}

// rawBadRatio is o's bad-event ratio from the raw histogram of $job and
// $instance, the same definition the rule generator records: for latency,
// slow requests among the requests that did not fail with a 5xx (5xx are the
// availability SLO's bad events, so both numerator and denominator exclude them).
func rawBadRatio(o slo.SLO) string {
	all := rate(durCount, "", "")
	if o.SLI.Type == slo.Latency {
		notFailed := rate(durCount, `code!~"5.."`, "")
		fast := rate(durBucket, fmt.Sprintf(`code!~"5..",le=%q`, fmtFloat(o.SLI.ThresholdSeconds)), "")
		return fmt.Sprintf("(%s - (%s or 0 * %s)) / %s", notFailed, fast, all, notFailed)
	}
	return errorRatio("5..", "")
}
