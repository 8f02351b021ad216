package dashboards

import (
	"fmt"

	"github.com/glasshouse-dev/glasshouse/alerts/slo"
)

// Runtime builds the runtime / USE dashboard: utilisation, saturation and
// errors of the host (gopsutil gauges), the process and the Go runtime, and
// the app's own saturation signals (in-flight requests, pools, rejections).
func Runtime(spec slo.Spec) *Dashboard {
	s := setOf(spec)
	d := newDashboard(s, "runtime", "Runtime and resources (USE)",
		"Host, process and Go runtime resources of "+s.service+" (gopsutil system gauges, process and Go collectors) and its saturation signals: in-flight requests, database and Redis pools, rejections, span drops.",
		"process_start_time_seconds")
	l := newLayout(d)
	g := func(metric string) string { return fmt.Sprintf("%s{%s}", metric, sel) }

	l.row("Overview")
	bi := stat("Version",
		"Build of the running binary (app_build_info: version and Go version).",
		"none", qi(fmt.Sprintf("max by (version, goversion) (%s)", g("app_build_info")), "{{version}} ({{goversion}})"))
	bi.Options.(map[string]any)["textMode"] = "name"
	bi.Options.(map[string]any)["graphMode"] = "none"
	l.add(8, 4, bi)
	l.add(8, 4, stat("Uptime",
		"Time since the oldest selected process started (process_start_time_seconds).",
		"s", qi(fmt.Sprintf("time() - max(%s)", g("process_start_time_seconds")), "uptime")))
	l.add(8, 4, stat("Dependencies degraded",
		"Number of dependencies (database, redis) whose last health check failed (app_dependency_up == 0). Redis down degrades the API without failing it.",
		"short", qi(fmt.Sprintf("count(%s == 0) or vector(0)", g("app_dependency_up")), "degraded"),
		step("red", 1)))

	l.row("Host (gopsutil)")
	l.add(8, 8, withThresholdLines(withMin(timeseries("Host CPU utilisation",
		"Share of the host's CPU time in use (system_cpu_utilization_ratio, gopsutil). Dashed line at 80%: sustained values above it mean CPU saturation.",
		"percentunit", q(fmt.Sprintf("max by (instance) (%s)", g("system_cpu_utilization_ratio")), "{{instance}}")), 0), step("red", 0.8)))
	l.add(8, 8, withMin(timeseries("Host memory",
		"Host memory used and available versus total (gopsutil).",
		"bytes",
		q(fmt.Sprintf("max by (instance) (%s)", g("system_memory_used_bytes")), "used {{instance}}"),
		q(fmt.Sprintf("max by (instance) (%s)", g("system_memory_available_bytes")), "available {{instance}}"),
		q(fmt.Sprintf("max by (instance) (%s)", g("system_memory_total_bytes")), "total {{instance}}")), 0))
	l.add(8, 8, withMin(timeseries("Host load average",
		"Host run-queue load average over 1, 5 and 15 minutes (gopsutil). Above the number of cores means saturation.",
		"short", q(fmt.Sprintf("max by (instance, window) (%s)", g("system_load_average")), "{{window}} {{instance}}")), 0))

	l.row("Process")
	l.add(8, 8, withMin(timeseries("Process CPU",
		"CPU seconds used per second by the API process (1 = one core busy).",
		"short", q(fmt.Sprintf("sum by (instance) (rate(%s[$__rate_interval]))", g("process_cpu_seconds_total")), "{{instance}}")), 0))
	l.add(8, 8, withMin(timeseries("Process memory",
		"Resident set size of the API process (process_resident_memory_bytes): what the OOM killer and container limits see.",
		"bytes",
		q(fmt.Sprintf("sum by (instance) (%s)", g("process_resident_memory_bytes")), "RSS {{instance}}")), 0))
	l.add(8, 8, withThresholdLines(withMin(timeseries("File descriptors",
		"Open file descriptors as a share of the process limit (process_open_fds / process_max_fds). Running out means failed accepts and connections.",
		"percentunit", q(fmt.Sprintf("max by (instance) (%s / %s)", g("process_open_fds"), g("process_max_fds")), "{{instance}}")), 0), step("red", 0.8)))

	l.row("Go runtime")
	l.add(8, 8, withMin(timeseries("Goroutines",
		"Live goroutines. Steady growth at constant load is a leak (e.g. blocked requests).",
		"short", q(fmt.Sprintf("sum by (instance) (%s)", g("go_goroutines")), "{{instance}}")), 0))
	l.add(8, 8, withMin(timeseries("GC pause duration",
		"Stop-the-world GC pause quantiles (go_gc_duration_seconds summary: median, 75th percentile, max) over recent cycles.",
		"s", q(fmt.Sprintf(`max by (quantile) (go_gc_duration_seconds{%s,quantile=~"0.5|0.75|1"})`, sel), "q{{quantile}}")), 0))
	l.add(8, 8, withMin(timeseries("Heap",
		"Heap bytes allocated to live and not-yet-swept objects, in use by spans, and the next GC target.",
		"bytes",
		q(fmt.Sprintf("sum by (instance) (%s)", g("go_memstats_heap_alloc_bytes")), "alloc {{instance}}"),
		q(fmt.Sprintf("sum by (instance) (%s)", g("go_memstats_heap_inuse_bytes")), "in use {{instance}}"),
		q(fmt.Sprintf("sum by (instance) (%s)", g("go_memstats_next_gc_bytes")), "next GC {{instance}}")), 0))
	l.add(8, 8, withMin(timeseries("Allocation rate",
		"Bytes allocated on the heap per second. Drives GC frequency.",
		"Bps", q(fmt.Sprintf("sum by (instance) (rate(%s[$__rate_interval]))", g("go_memstats_alloc_bytes_total")), "{{instance}}")), 0))
	l.add(8, 8, withMin(timeseries("GC cycles",
		"Completed GC cycles per second.",
		"ops", q(fmt.Sprintf("sum by (instance) (rate(%s[$__rate_interval]))", g("go_gc_duration_seconds_count")), "{{instance}}")), 0))
	l.add(8, 8, withMin(timeseries("Scheduler latency (p99)",
		"99th percentile time goroutines wait runnable before running (go_sched_latencies_seconds). High values mean CPU saturation inside the process.",
		"s", q(fmt.Sprintf("histogram_quantile(0.99, sum by (instance, le) (rate(%s[$__rate_interval])))", g("go_sched_latencies_seconds_bucket")), "{{instance}}")), 0))

	l.row("Saturation")
	l.add(8, 8, withMin(timeseries("Requests in flight",
		"Requests being served right now; compare with the concurrency limit (CONCURRENCY_LIMIT), past which the API answers 503.",
		"short", q(fmt.Sprintf("sum by (instance) (%s)", g("http_server_active_requests")), "{{instance}}")), 0))
	l.add(8, 8, withNoValue(withMin(timeseries("Rejections",
		"Requests rejected by the rate limiter (429) and by the concurrency limit (503), per second.",
		"reqps",
		q(rate("app_http_rate_limited_total", "", "scope"), "429 {{scope}}"),
		q(rate("app_http_concurrency_rejected_total", "", ""), "503 concurrency limit")), 0), "No rejections"))
	l.add(8, 8, withNoValue(withMin(timeseries("Trace spans dropped",
		"Spans dropped because the export queue was full or export failed. Exemplars of dropped traces lead nowhere.",
		"ops", q(rate("app_trace_spans_dropped_total", "", ""), "dropped/s")), 0), "No spans dropped"))

	l.row("Database and Redis")
	l.add(8, 8, withMin(timeseries("Database pool connections",
		"Connections of the database pool by state (in use / acquired, idle, total, max).",
		"short", q(fmt.Sprintf("max by (db, state) (%s)", g("app_db_pool_connections")), "{{db}} {{state}}")), 0))
	l.add(8, 8, withMin(timeseries("Database pool waits",
		"Acquires per second that had to wait for a free connection (pool exhaustion), and seconds spent waiting per second.",
		"short",
		q(rate("app_db_pool_wait_total", "", "db"), "waits/s {{db}}"),
		q(rate("app_db_pool_wait_seconds_total", "", "db"), "wait s/s {{db}}")), 0))
	l.add(8, 8, withNoValue(withMin(timeseries("Redis pool connections",
		"Connections of the go-redis pool by state (total, idle, stale). Empty when REDIS_URL is not set.",
		"short", q(fmt.Sprintf("max by (state) (%s)", g("app_redis_pool_connections")), "{{state}}")), 0), "Redis not configured"))
	l.add(8, 8, withNoValue(withMin(withStack(timeseries("Cache lookups by result",
		"Read-through cache lookups per second by result (hit, miss, error). Errors mean Redis is failing and reads bypass the cache.",
		"reqps", q(rate("app_cache_requests_total", "", "cache, result"), "{{cache}} {{result}}"))), 0), "Cache not configured"))
	l.add(8, 8, stateTimeline("Dependency health",
		"1 when the dependency's last health check succeeded, 0 when it failed (app_dependency_up).",
		[]any{map[string]any{"type": "value", "options": map[string]any{
			"0": map[string]any{"text": "down", "color": "red", "index": 0},
			"1": map[string]any{"text": "up", "color": "green", "index": 1},
		}}},
		q(fmt.Sprintf("min by (dependency) (%s)", g("app_dependency_up")), "{{dependency}}")))
	l.add(8, 8, withNoValue(withMin(timeseries("Rate-limit decisions without Redis",
		"Rate-limit decisions taken by the in-process fallback because Redis was unreachable, by mode (open: allowed, closed: rejected).",
		"ops", q(rate("app_ratelimit_fallback_total", "", "mode"), "{{mode}}")), 0), "Redis rate limiting healthy"))
	return d
}
