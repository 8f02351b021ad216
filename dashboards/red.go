package dashboards

import (
	"fmt"
	"strings"

	"github.com/glasshouse-dev/glasshouse/alerts/slo"
)

// UIDs of the glasshouse dashboards (alerts/slo.yaml's dashboard_prefix);
// alerts link to them, so they are fixed. Another spec's set is named
// slo.Spec.DashboardUID("red"), ...
const (
	UIDRED      = "glasshouse-red"
	UIDSLO      = "glasshouse-slo"
	UIDRuntime  = "glasshouse-runtime"
	UIDLoadTest = "glasshouse-loadtest"
)

// Series names from telemetry/README.md.
const (
	durCount  = "http_server_request_duration_seconds_count"
	durBucket = "http_server_request_duration_seconds_bucket"
)

// rate returns sum by (by) (rate(metric{sel,extra}[$__rate_interval])).
func rate(metric, extra, by string) string {
	m := sel
	if extra != "" {
		m += "," + extra
	}
	agg := "sum"
	if by != "" {
		agg = "sum by (" + by + ") "
	}
	return fmt.Sprintf("%s(rate(%s{%s}[$__rate_interval]))", agg, metric, m)
}

// routeSel narrows the per-route panels to the route variable's values.
const routeSel = `route=~"$route"`

// routeVar picks routes of the job for the per-route panels (All: every route).
func routeVar() Variable {
	v := queryVar("route", "Route", "Route templates of the job, for the per-route panels (All shows every route).",
		"label_values("+durCount+`{job="$job"}, route)`)
	v.IncludeAll, v.Multi, v.AllValue = true, true, ".+"
	v.Current = Current{Selected: true, Text: []string{"All"}, Value: []string{"$__all"}}
	return v
}

// quantile returns the q-quantile of the histogram metric, by the given
// labels (le is added), over the series matching extra matchers, if any.
func quantile(q float64, metric, by string, extra ...string) string {
	b := "le"
	if by != "" {
		b = by + ", le"
	}
	return fmt.Sprintf("histogram_quantile(%s, %s)", fmtFloat(q), rate(metric, strings.Join(extra, ","), b))
}

// errorRatio is the share of requests answered with 5xx, by the given labels.
// It divides counts (never durations), yields 0 rather than "no data" when
// there are requests but no 5xx series yet, and no data when there is no
// traffic at all (a ratio of nothing is unknown, not zero).
func errorRatio(class, by string, extra ...string) string {
	m := strings.Join(extra, ",")
	bad := rate(durCount, strings.Join(append([]string{`code=~"` + class + `"`}, extra...), ","), by)
	all := rate(durCount, m, by)
	return fmt.Sprintf("(%s or 0 * %s) / %s", bad, all, all)
}

// objectiveOf returns the objective of the first SLO of type typ, and false
// when the spec has none.
func objectiveOf(spec slo.Spec, typ string) (slo.SLO, bool) {
	for _, o := range spec.SLOs {
		if o.SLI.Type == typ {
			return o, true
		}
	}
	return slo.SLO{}, false
}

// RED builds the service overview: rate, errors, duration, per route, and
// the protections (rate limit, concurrency limit) that turn load into 429/503.
func RED(spec slo.Spec) *Dashboard {
	s := setOf(spec)
	d := newDashboard(s, "red", "Service overview (RED)",
		"Requests, errors and duration of "+s.service+" from http_server_request_duration_seconds, per route, with exemplars linking to traces.",
		durCount)
	d.Templating.List = append(d.Templating.List, routeVar())
	l := newLayout(d)

	var errSteps, latSteps []Step
	errDesc, latDesc := "", ""
	if o, ok := objectiveOf(spec, slo.Availability); ok {
		errSteps = []Step{step("red", round12(o.ErrorBudget()))}
		errDesc = fmt.Sprintf(" The dashed line is the error budget of the %q SLO (%s of requests may fail over %s).", o.Name, fmtFloat(o.ErrorBudget()*100)+"%", spec.Period)
	}
	if o, ok := objectiveOf(spec, slo.Latency); ok {
		latSteps = []Step{step("red", o.SLI.ThresholdSeconds)}
		latDesc = fmt.Sprintf(" The dashed line is the %q SLO threshold: %s%% of requests must be faster than %ss.", o.Name, fmtFloat(o.Objective*100), fmtFloat(o.SLI.ThresholdSeconds))
	}

	l.row("Overview")
	l.add(6, 4, stat("Request rate",
		"Requests per second served by the selected instances (all routes, all status codes).",
		"reqps", qi(rate(durCount, "", ""), "requests/s")))
	l.add(6, 4, stat("Error ratio (5xx)",
		"Share of requests answered with a 5xx status over the rate interval. 4xx and 429 are the client's doing and not counted."+errDesc,
		"percentunit", qi(errorRatio("5..", ""), "5xx ratio"), errSteps...))
	l.add(6, 4, stat("p99 latency",
		"99th percentile of server-side request duration, interpolated from histogram buckets."+latDesc,
		"s", qi(quantile(0.99, durBucket, ""), "p99"), latSteps...))
	l.add(6, 4, stat("Requests in flight",
		"Requests currently being served (http_server_active_requests), summed over instances.",
		"short", qi(fmt.Sprintf("sum(http_server_active_requests{%s})", sel), "in flight")))

	l.row("Traffic and errors")
	l.add(12, 8, withMin(withStack(timeseries("Requests by status code",
		"Request rate split by HTTP status code, stacked so the top edge is the total.",
		"reqps", q(rate(durCount, "", "code"), "{{code}}"))), 0))
	p := withMin(timeseries("Error ratio vs objective",
		"Share of requests that failed with 5xx (counts the SLO uses) and with 4xx (client errors, not counted against the SLO). Ratios of request counts, never of durations."+errDesc,
		"percentunit",
		q(errorRatio("5..", ""), "5xx"),
		q(errorRatio("4..", ""), "4xx (not counted)")), 0)
	if errSteps != nil {
		p = withThresholdLines(p, errSteps...)
	}
	p.Links = []PanelLink{{Title: "SLO / error budget", URL: "/d/" + spec.DashboardUID("slo") + "?${__url_time_range}"}}
	l.add(12, 8, p)

	l.row("Latency")
	p = withMin(timeseries("Latency percentiles",
		"p50, p95 and p99 of server-side request duration. Diamonds are exemplars: click one to open its trace in Tempo (trace_id)."+latDesc,
		"s",
		qx(quantile(0.5, durBucket, ""), "p50"),
		qx(quantile(0.95, durBucket, ""), "p95"),
		qx(quantile(0.99, durBucket, ""), "p99")), 0)
	if latSteps != nil {
		p = withThresholdLines(p, latSteps...)
	}
	l.add(12, 9, p)
	hm := heatmap("Latency heatmap",
		"Requests per second in each latency bucket of http_server_request_duration_seconds (one row per bucket upper bound). Bands reveal bimodal latency that percentiles hide; exemplars link to traces.",
		"s", qx(rate(durBucket, "", "le"), "{{le}}"))
	l.add(12, 9, hm)

	l.row("Per route")
	l.add(8, 9, withMin(timeseries("Request rate by route",
		"Requests per second per route template and method; unknown paths share route=\"unmatched\".",
		"reqps", q(rate(durCount, routeSel, "method, route"), "{{method}} {{route}}")), 0))
	l.add(8, 9, withMin(timeseries("Error ratio (5xx) by route",
		"Share of each route's requests answered with 5xx; 0 for routes with traffic and no errors.",
		"percentunit", q(errorRatio("5..", "method, route", routeSel), "{{method}} {{route}}")), 0))
	l.add(8, 9, withMin(timeseries("p95 latency by route",
		"95th percentile request duration per route template and method.",
		"s", qx(quantile(0.95, durBucket, "method, route", routeSel), "{{method}} {{route}}")), 0))
	l.add(12, 8, withMin(timeseries("p95 response size by route",
		"95th percentile response body size per route, from http_server_response_body_size_bytes.",
		"bytes", q(quantile(0.95, "http_server_response_body_size_bytes_bucket", "route", routeSel), "{{route}}")), 0))
	l.add(12, 8, withMin(timeseries("Status codes by route",
		"Request rate per route and status code: shows which route produces which errors.",
		"reqps", q(rate(durCount, `code!~"2..",`+routeSel, "route, code"), "{{route}} {{code}}")), 0))

	l.row("Saturation and protection")
	l.add(8, 8, withMin(timeseries("Requests in flight",
		"Requests being served right now per instance. A steady climb at constant traffic means requests are queueing.",
		"short", q(fmt.Sprintf("sum by (instance) (http_server_active_requests{%s})", sel), "{{instance}}")), 0))
	l.add(8, 8, withNoValue(withMin(timeseries("Rejections: rate limit (429) and concurrency limit (503)",
		"Requests rejected before reaching a handler: by the rate limiter (per route and scope: anonymous, user, login) and by the concurrency limit (fast 503 instead of queueing).",
		"reqps",
		q(rate("app_http_rate_limited_total", "", "route, scope"), "429 {{route}} ({{scope}})"),
		q(rate("app_http_concurrency_rejected_total", "", ""), "503 concurrency limit")), 0), "No rejections"))
	l.add(8, 8, withNoValue(withMin(timeseries("Recovered panics",
		"Handler panics turned into 500 responses, per route. Any value here is a bug to fix.",
		"ops", q(rate("app_http_panics_recovered_total", "", "route"), "{{route}}")), 0), "No panics"))

	l.row("Business")
	l.add(8, 7, withMin(timeseries("Sign-ups",
		"Successful sign-ups per second (app_signups_total).",
		"ops", q(rate("app_signups_total", "", ""), "sign-ups/s")), 0))
	l.add(8, 7, withMin(timeseries("Logins by result",
		"Login attempts per second by result (success, failure). A failure spike can be credential stuffing; the login rate limit answers it with 429.",
		"ops", q(rate("app_logins_total", "", "result"), "{{result}}")), 0))
	l.add(8, 7, withMin(timeseries("Items created",
		"Items created per second (app_items_created_total).",
		"ops", q(rate("app_items_created_total", "", ""), "items/s")), 0))
	return d
}
