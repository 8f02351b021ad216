package report

// pageHTML is the report's html/template. Everything it needs is inlined:
// the chart library and its styles come in as .Lib and .LibCSS, the data
// as JSON in a script element.
const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Info.Title}}</title>
<style>{{.LibCSS}}</style>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 16px 24px; color: #1d2430; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #d8dde6; padding-bottom: 4px; }
.meta { color: #5b6475; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 10px; font-weight: 600; color: #fff; }
.pass { background: #2f9e44; } .fail { background: #c92a2a; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eef0f4; vertical-align: top; }
th { color: #5b6475; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #2f9e44; } .bad { color: #c92a2a; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.chart { min-height: 300px; }
pre { background: #f6f8fa; padding: 12px; overflow-x: auto; font-size: 12px; }
.empty { color: #5b6475; font-style: italic; }
</style>
</head>
<body>
<h1>{{.Info.Title}}</h1>
<p class="meta">started {{time .Info.Started}} · ran {{.Duration}} ·
{{if .Passed}}<span class="badge pass">thresholds passed</span>{{else}}<span class="badge fail">thresholds failed</span>{{end}}</p>

<h2>Over time (1 s resolution)</h2>
<div class="charts">
<div class="chart" id="chart-requests"></div>
<div class="chart" id="chart-failed"></div>
<div class="chart" id="chart-duration"></div>
<div class="chart" id="chart-latency"></div>
<div class="chart" id="chart-lag"></div>
</div>

<h2>Thresholds</h2>
{{if .Thresholds}}<table>
<tr><th></th><th>metric</th><th>threshold</th><th>value</th></tr>
{{range .Thresholds}}<tr><td>{{if .OK}}<span class="ok">✓</span>{{else}}<span class="bad">✗</span>{{end}}</td><td>{{.Metric}}</td><td>{{.Expr}}</td><td class="num">{{value .}}</td></tr>
{{end}}</table>{{else}}<p class="empty">no thresholds</p>{{end}}

<h2>Checks</h2>
{{if .Checks}}<table>
<tr><th></th><th>group</th><th>check</th><th>passes</th><th>fails</th><th>success</th></tr>
{{range .Checks}}<tr><td>{{if .Fails}}<span class="bad">✗</span>{{else}}<span class="ok">✓</span>{{end}}</td><td>{{group .Group}}</td><td>{{.Name}}</td><td class="num">{{.Passes}}</td><td class="num">{{.Fails}}</td><td class="num">{{pct .}}</td></tr>
{{end}}</table>{{else}}<p class="empty">no checks</p>{{end}}

<h2>Scenarios</h2>
<table>
<tr><th>scenario</th><th>executor</th><th>scheduled</th><th>started</th><th>complete</th><th>interrupted</th><th>dropped</th><th>VUs (max)</th><th>peak busy</th><th>duration</th></tr>
{{range .Scenarios}}<tr><td>{{.Name}}</td><td>{{.Executor}}{{if .Open}} (open){{else}} (closed){{end}}</td><td class="num">{{if .Open}}{{.Scheduled}}{{else}}-{{end}}</td><td class="num">{{.Started}}</td><td class="num">{{.Completed}}</td><td class="num">{{.Interrupted}}</td><td class="num">{{.Dropped}}</td><td class="num">{{.VUs}} ({{.MaxVUs}})</td><td class="num">{{.PeakBusy}}</td><td class="num">{{dur .Duration}}</td></tr>
{{end}}</table>

<h2>Run options</h2>
<table>
{{range .Info.Options}}<tr><th>{{index . 0}}</th><td>{{index . 1}}</td></tr>
{{end}}</table>

<h2>End-of-test summary</h2>
<pre>{{.Summary}}</pre>

<details><summary>Licence of the inlined chart library</summary><pre>{{.Licence}}</pre></details>

<script>{{.Lib}}</script>
<script id="data" type="application/json">{{.Series}}</script>
<script>
(function () {
  "use strict";
  var d = JSON.parse(document.getElementById("data").textContent);
  var palette = ["#1971c2", "#e8590c", "#c92a2a", "#2f9e44", "#7048e8", "#0c8599", "#d6336c", "#5c940d"];
  var made = 0;
  function chart(id, title, series, data, axes, scales) {
    var el = document.getElementById(id);
    var opts = {
      title: title,
      width: Math.max(320, el.clientWidth || 560),
      height: 260,
      scales: Object.assign({ x: { time: false } }, scales || {}),
      series: [{ label: "s" }].concat(series),
      axes: [{ label: "seconds since start" }].concat(axes)
    };
    new uPlot(opts, [d.t].concat(data), el);
    made++;
  }
  function line(label, i, extra) {
    return Object.assign({ label: label, stroke: palette[i % palette.length], width: 1.5, spanGaps: false }, extra || {});
  }
  chart("chart-requests", "Request rate and VUs",
    [line("requests/s", 0), line("VUs", 3, { scale: "vus" })],
    [d.requests, d.vus],
    [{ label: "req/s" }, { scale: "vus", side: 1, label: "VUs", grid: { show: false } }]);
  var fs = d.statuses.map(function (s, i) { return line(s === "0" ? "network error" : "status " + s, i + 2); });
  var fd = d.statuses.map(function (s) { return d.failed[s]; });
  if (fs.length === 0) { fs = [line("failed/s", 2)]; fd = [d.t.map(function () { return 0; })]; }
  chart("chart-failed", "Failed requests by status", fs, fd, [{ label: "req/s" }]);
  chart("chart-duration", "http_req_duration (from the actual send)",
    [line("p50", 0), line("p95", 1), line("p99", 2)], d.duration, [{ label: "ms" }]);
  chart("chart-latency", "http_req_latency (from the intended start)",
    [line("p50", 0), line("p95", 1), line("p99", 2)], d.latency, [{ label: "ms" }]);
  chart("chart-lag", "Schedule lag and dropped iterations",
    [line("lag p50", 0), line("lag p99", 2), line("dropped/s", 4, { scale: "drop" })],
    [d.lag[0], d.lag[1], d.dropped],
    [{ label: "ms" }, { scale: "drop", side: 1, label: "it/s", grid: { show: false } }]);
  document.body.setAttribute("data-charts", String(made));
})();
</script>
</body>
</html>
`
