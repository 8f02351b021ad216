// Package report writes a load test's result as one self-contained HTML
// file, in the spirit of k6's web-dashboard export: request rate and VUs,
// http_req_duration and http_req_latency p50/p95/p99, failed requests by
// status, dropped iterations and schedule lag, all at one-second
// resolution, then the thresholds, checks, scenarios, the run's options and
// the end-of-test summary.
//
// The file needs no network to open: the chart library (uPlot, MIT, from
// npm at the version pinned in fetch-assets.sh, committed under assets/
// with its licence) and every style are inlined, and the page references
// no URL.
//
// It imports the loadtest engine and the standard library only.
package report

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/glasshouse-dev/glasshouse/loadtest"
)

//go:embed assets/uPlot.iife.min.js assets/uPlot.min.css assets/uPlot.LICENSE assets/uPlot.VERSION
var assets embed.FS

// Info describes the run in the report's header.
type Info struct {
	// Title heads the page, e.g. "glasshouse-load: average".
	Title string
	// Started is when the run began.
	Started time.Time
	// Options are the run's settings as shown, in order (name, value).
	Options [][2]string
}

// Write writes res as the HTML report. res.Timeline is what the charts
// plot: run with loadtest.RunOptions.Timeline set.
func Write(w io.Writer, res *loadtest.Result, info Info) error {
	lib, err := asset("uPlot.iife.min.js")
	if err != nil {
		return err
	}
	// The library's banner comment names its home page; the report shows
	// the licence instead, so that the file holds no URL at all.
	if i := strings.Index(lib, "*/"); strings.HasPrefix(lib, "/*!") && i > 0 {
		lib = strings.TrimLeft(lib[i+2:], "\n")
	}
	css, err := asset("uPlot.min.css")
	if err != nil {
		return err
	}
	lic, err := asset("uPlot.LICENSE")
	if err != nil {
		return err
	}
	ver, err := asset("uPlot.VERSION")
	if err != nil {
		return err
	}
	var summary bytes.Buffer
	if err := res.WriteSummary(&summary); err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	d := page{
		Info:       info,
		Duration:   res.Duration.Round(time.Millisecond).String(),
		Passed:     res.ThresholdsPassed(),
		Thresholds: res.Thresholds,
		Checks:     res.Checks,
		Scenarios:  res.Scenarios,
		Summary:    summary.String(),
		Series:     series(res.Timeline),
		Lib:        template.JS(lib),
		LibCSS:     template.CSS(css),
		Licence:    "uPlot " + strings.TrimSpace(ver) + "\n\n" + lic,
	}
	t, err := template.New("report").Funcs(funcs()).Parse(pageHTML)
	if err != nil {
		return fmt.Errorf("report template: %w", err)
	}
	if err := t.Execute(w, d); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func asset(name string) (string, error) {
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		return "", fmt.Errorf("report asset: %w", err)
	}
	return string(b), nil
}

type page struct {
	Info       Info
	Duration   string
	Passed     bool
	Thresholds []loadtest.ThresholdResult
	Checks     []loadtest.CheckResult
	Scenarios  []loadtest.ScenarioResult
	Summary    string
	Series     timeSeries
	Lib        template.JS
	LibCSS     template.CSS
	Licence    string
}

// timeSeries is the timeline as the columns uPlot plots; nil is a gap.
type timeSeries struct {
	T        []float64            `json:"t"` // seconds since the start
	Requests []*float64           `json:"requests"`
	VUs      []*float64           `json:"vus"`
	Duration [3][]*float64        `json:"duration"` // p50, p95, p99 (ms)
	Latency  [3][]*float64        `json:"latency"`
	Lag      [2][]*float64        `json:"lag"` // p50, p99 (ms)
	Dropped  []*float64           `json:"dropped"`
	Failed   map[string][]float64 `json:"failed"` // by status, per second
	Statuses []string             `json:"statuses"`
}

func num(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func series(points []loadtest.TimelinePoint) timeSeries {
	// Every column is an array, never null, even for an empty run.
	col := func() []*float64 { return make([]*float64, 0, len(points)) }
	s := timeSeries{T: []float64{}, Requests: col(), VUs: col(), Duration: [3][]*float64{col(), col(), col()},
		Latency: [3][]*float64{col(), col(), col()}, Lag: [2][]*float64{col(), col()}, Dropped: col(),
		Failed: map[string][]float64{}, Statuses: append([]string{}, loadtest.FailedStatuses(points)...)}
	for _, st := range s.Statuses {
		s.Failed[st] = make([]float64, 0, len(points))
	}
	for _, p := range points {
		s.T = append(s.T, math.Round(p.At.Seconds()*1000)/1000)
		s.Requests = append(s.Requests, num(p.Requests))
		s.VUs = append(s.VUs, num(float64(p.VUs)))
		for i, q := range []float64{p.Duration.P50, p.Duration.P95, p.Duration.P99} {
			s.Duration[i] = append(s.Duration[i], num(q))
		}
		for i, q := range []float64{p.Latency.P50, p.Latency.P95, p.Latency.P99} {
			s.Latency[i] = append(s.Latency[i], num(q))
		}
		s.Lag[0] = append(s.Lag[0], num(p.ScheduleLag.P50))
		s.Lag[1] = append(s.Lag[1], num(p.ScheduleLag.P99))
		s.Dropped = append(s.Dropped, num(p.Dropped))
		for _, st := range s.Statuses {
			s.Failed[st] = append(s.Failed[st], p.Failed[st])
		}
	}
	return s
}

func funcs() template.FuncMap {
	return template.FuncMap{
		"value": func(t loadtest.ThresholdResult) string {
			if t.Type == loadtest.Rate {
				return strconv.FormatFloat(100*t.Value, 'f', 2, 64) + "%"
			}
			if t.Contains == loadtest.Time {
				return strconv.FormatFloat(t.Value, 'f', 2, 64) + " ms"
			}
			return strconv.FormatFloat(t.Value, 'f', -1, 64)
		},
		"pct": func(c loadtest.CheckResult) string {
			n := c.Passes + c.Fails
			if n == 0 {
				return "-"
			}
			return strconv.FormatFloat(100*float64(c.Passes)/float64(n), 'f', 2, 64) + "%"
		},
		"group": func(g string) string {
			if g == "" {
				return "-"
			}
			return strings.TrimPrefix(g, "::")
		},
		"time": func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		},
		"dur": func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	}
}
