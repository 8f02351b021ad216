package kit

import (
	"fmt"
	"strings"

	"github.com/glasshouse-dev/glasshouse/alerts/rules"
	"github.com/glasshouse-dev/glasshouse/alerts/slo"
)

// symptom is one alert every telemetry-instrumented service gets. Its
// expression is written with %[1]s standing for the spec's selector; its
// description names labels only, so promtool tests can state it exactly.
type symptom struct {
	alert, expr, forDur, severity string
	summary, description          string
	runbook                       string // runbook file name without .md
	dashboard                     string // dashboard kind: red, runtime
}

// symptoms lists the symptom alerts of a generated folder. Thresholds are
// starting points, as in alerts/symptoms.yaml, whose alerts of the same
// names they mirror.
func symptoms() []symptom {
	return []symptom{
		{"TargetDown", "up{%[1]s} == 0", "1m", "critical",
			"A {{service}} target cannot be scraped.",
			"Prometheus has failed to scrape {{ $labels.instance }} (job {{ $labels.job }}) for more than 1 minute: the process is down, hung, or its admin listener is unreachable.",
			"target-down", "red"},
		{"TargetMissing", "absent(up{%[1]s})", "5m", "critical",
			"Prometheus has no {{service}} target at all.",
			"No target matching {%[1]s} has existed for 5 minutes, so no other {{service}} alert can fire: check service discovery and the scrape configuration.",
			"target-missing", "red"},
		{"HostCPUSaturated", "avg_over_time(system_cpu_utilization_ratio{%[1]s}[5m]) > 0.9", "10m", "warning",
			"The host CPU of {{service}} is saturated.",
			"CPU utilisation on the host of {{ $labels.instance }} has averaged above 90% for over 10 minutes; latency will rise before errors do.",
			"host-cpu-saturated", "runtime"},
		{"HostMemorySaturated", "system_memory_available_bytes{%[1]s}\n/ system_memory_total_bytes{%[1]s}\n< 0.1", "15m", "warning",
			"The host of {{service}} is running out of memory.",
			"Less than 10% of memory has been available on the host of {{ $labels.instance }} for over 15 minutes; the OOM killer is next.",
			"host-memory-saturated", "runtime"},
		{"GoroutinesGrowing", "go_goroutines{%[1]s} > 1000\nand\ndelta(go_goroutines{%[1]s}[1h]) > 500", "15m", "warning",
			"The goroutine count of {{service}} keeps growing.",
			"{{ $labels.instance }} runs over 1000 goroutines, at least 500 more than an hour ago, and has kept growing for 15 minutes: likely a leak (blocked sends, forgotten timers, unclosed bodies).",
			"goroutines-growing", "runtime"},
		{"TraceSpansDropped", "sum by (job, instance) (rate(app_trace_spans_dropped_total{%[1]s}[5m])) > 0", "10m", "info",
			"{{service}} is dropping trace spans instead of exporting them.",
			"{{ $labels.instance }} has dropped spans for over 10 minutes (export queue full or collector failing): traces and exemplar links have gaps.",
			"trace-spans-dropped", "runtime"},
	}
}

// text fills s's texts for spec: {{service}} is the service name, %[1]s
// the selector.
func (s symptom) text(spec slo.Spec, t string) string {
	if strings.Contains(t, "%[1]s") {
		t = fmt.Sprintf(t, spec.Selector)
	}
	return strings.ReplaceAll(t, "{{service}}", spec.Service)
}

func (s symptom) rule(spec slo.Spec) rules.Rule {
	return rules.Rule{
		Alert:  s.alert,
		Expr:   fmt.Sprintf(s.expr, spec.Selector),
		For:    s.forDur,
		Labels: map[string]string{"severity": s.severity},
		Annotations: map[string]string{
			"summary":       s.text(spec, s.summary),
			"description":   s.text(spec, s.description),
			"runbook_url":   spec.Links.Runbooks + s.runbook + ".md",
			"dashboard_url": spec.Links.Grafana + "/d/" + spec.DashboardUID(s.dashboard),
		},
	}
}

func symptomFile(spec slo.Spec) rules.File {
	g := rules.Group{Name: spec.Service + "-symptoms"}
	for _, s := range symptoms() {
		g.Rules = append(g.Rules, s.rule(spec))
	}
	return rules.File{Groups: []rules.Group{g}}
}
