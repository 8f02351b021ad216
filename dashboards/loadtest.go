package dashboards

import "fmt"

// DefaultLoadJob is the Prometheus job that scrapes the load generator's
// /metrics (glasshouse-load -prometheus, default 127.0.0.1:9096).
const DefaultLoadJob = "glasshouse-load"

// lsel selects the load generator's series; lselNoScenario is for the
// series that carry no scenario label (k6_vus, k6_vus_max).
const (
	lsel           = `job="$loadjob",scenario=~"$scenario"`
	lselNoScenario = `job="$loadjob"`
)

// krate returns sum by (by) (rate(metric{lsel}[$__rate_interval])).
func krate(metric, by string) string {
	agg := "sum"
	if by != "" {
		agg = "sum by (" + by + ") "
	}
	return fmt.Sprintf("%s(rate(%s{%s}[$__rate_interval]))", agg, metric, lsel)
}

func kquantile(qv float64, metric string) string {
	return fmt.Sprintf("histogram_quantile(%s, %s)", fmtFloat(qv), krate(metric, "le"))
}

// LoadTest builds the load-test dashboard: what the load generator measured
// (k6_* metrics from loadtest/README.md) beside what the server measured in
// the same window, so client-side and server-side views can be compared.
func LoadTest() *Dashboard {
	d := newDashboard(set{"glasshouse", DefaultJob, "glasshouse-api"}, "loadtest", "Load test",
		"A glasshouse-load run (k6-style engine, loadtest/) seen from the client, beside the API's own RED metrics for the same window. Start the generator with -prometheus and let Prometheus scrape it as job glasshouse-load.",
		durCount)
	d.Refresh = "10s"
	d.Time = TimeRange{From: "now-30m", To: "now"}
	lj := queryVar("loadjob", "Load job", "Prometheus job scraping the load generator's /metrics.", "label_values(k6_vus, job)")
	lj.Current = Current{Selected: true, Text: DefaultLoadJob, Value: DefaultLoadJob}
	sc := queryVar("scenario", "Scenario", "Load-test scenarios of the run (All includes series without a scenario).",
		`label_values(k6_http_reqs_total{job="$loadjob"}, scenario)`)
	sc.IncludeAll, sc.Multi, sc.AllValue = true, true, ".*"
	sc.Current = Current{Selected: true, Text: []string{"All"}, Value: []string{"$__all"}}
	d.Templating.List = append(d.Templating.List, lj, sc)
	l := newLayout(d)

	l.row("Summary")
	l.add(6, 4, stat("Virtual users",
		"Active VUs of the load generator right now (k6_vus).",
		"short", qi(fmt.Sprintf("sum(k6_vus{%s})", lselNoScenario), "VUs")))
	l.add(6, 4, stat("Client request rate",
		"HTTP requests per second completed by the load generator (k6_http_reqs_total).",
		"reqps", qi(krate("k6_http_reqs_total", ""), "requests/s")))
	l.add(6, 4, stat("Failed requests (whole run)",
		"Share of requests the generator counted as failed since the run started (k6_http_req_failed_rate): unexpected status or network error.",
		"percentunit", qi(fmt.Sprintf("max(k6_http_req_failed_rate{%s})", lsel), "failed"), step("red", 0.01)))
	l.add(6, 4, stat("Checks passed (whole run)",
		"Share of response checks that passed since the run started (k6_checks_rate).",
		"percentunit", qi(fmt.Sprintf("min(k6_checks_rate{%s})", lsel), "checks"), step("red", 0), step("green", 0.99)))
	p := &d.Panels[len(d.Panels)-1]
	p.FieldConfig.Defaults.Thresholds.Steps = p.FieldConfig.Defaults.Thresholds.Steps[1:]

	l.row("Client vs server")
	l.add(12, 8, withMin(timeseries("Request rate: client vs server",
		"Requests per second sent by the generator and received by the API over the same window. A gap means requests failed before reaching the handler (network, rate limiter) or other traffic reached the API.",
		"reqps",
		q(krate("k6_http_reqs_total", ""), "client (k6)"),
		q(rate(durCount, "", ""), "server")), 0))
	l.add(12, 8, withMin(timeseries("Failure ratio: client vs server",
		"Client: share of requests the generator counted as failed in the window (rate of k6_http_req_failed_nonzero_total over samples). Server: share answered with 5xx.",
		"percentunit",
		q(fmt.Sprintf("%s / %s", krate("k6_http_req_failed_nonzero_total", ""), krate("k6_http_req_failed_samples_total", "")), "client failed"),
		q(errorRatio("5..", ""), "server 5xx")), 0))
	l.add(12, 9, withMin(timeseries("Latency p95 / p99: client vs server",
		"Client service time (k6_http_req_duration_seconds: send to last byte), client latency from the intended start (k6_http_req_latency_seconds, free of coordinated omission) and server-side duration. Client minus server is network and queueing time.",
		"s",
		q(kquantile(0.95, "k6_http_req_duration_seconds_bucket"), "client p95"),
		q(kquantile(0.99, "k6_http_req_duration_seconds_bucket"), "client p99"),
		q(kquantile(0.99, "k6_http_req_latency_seconds_bucket"), "client p99 from intended start"),
		q(quantile(0.95, durBucket, ""), "server p95"),
		q(quantile(0.99, durBucket, ""), "server p99")), 0))
	l.add(12, 9, withMin(timeseries("Client request rate by endpoint and status",
		"Requests per second by request name (route template) and status as the generator saw them.",
		"reqps", q(krate("k6_http_reqs_total", "name, status"), "{{name}} {{status}}")), 0))

	l.row("Generator health")
	l.add(8, 8, withMin(timeseries("Virtual users",
		"Active and allocated VUs (k6_vus, k6_vus_max).",
		"short",
		q(fmt.Sprintf("sum(k6_vus{%s})", lselNoScenario), "active"),
		q(fmt.Sprintf("sum(k6_vus_max{%s})", lselNoScenario), "allocated")), 0))
	l.add(8, 8, withNoValue(withMin(timeseries("Iterations and dropped iterations",
		"Completed iterations per second, and arrival-rate iterations dropped because every VU was busy (the generator was the bottleneck, not the API).",
		"ops",
		q(krate("k6_iterations_total", "scenario"), "iterations {{scenario}}"),
		q(krate("k6_dropped_iterations_total", "scenario"), "dropped {{scenario}}")), 0), "No iterations"))
	l.add(8, 8, withMin(timeseries("Data sent and received",
		"Bytes per second written to and read from the network by the generator.",
		"Bps",
		q(krate("k6_data_sent_total", ""), "sent"),
		q(krate("k6_data_received_total", ""), "received")), 0))
	l.add(12, 8, withNoValue(stateTimeline("Thresholds",
		"Last evaluation of each threshold of the run (k6_threshold_ok: 1 pass, 0 fail), labelled with the metric and expression.",
		[]any{map[string]any{"type": "value", "options": map[string]any{
			"0": map[string]any{"text": "fail", "color": "red", "index": 0},
			"1": map[string]any{"text": "pass", "color": "green", "index": 1},
		}}},
		q(fmt.Sprintf("min by (metric, threshold) (k6_threshold_ok{%s})", lselNoScenario), "{{metric}}: {{threshold}}")), "No thresholds"))
	l.add(12, 8, withNoValue(withMin(timeseries("Schedule lag (p99)",
		"Arrival-rate executors: how late iterations started versus their schedule (k6_schedule_lag_seconds). Growing lag means the generator cannot keep up.",
		"s", q(kquantile(0.99, "k6_schedule_lag_seconds_bucket"), "p99 lag")), 0), "No arrival-rate scenario"))
	return d
}
