package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/glasshouse-dev/glasshouse/alerts"
	"github.com/glasshouse-dev/glasshouse/alerts/slo"
	"github.com/glasshouse-dev/glasshouse/internal/setting"
	"github.com/glasshouse-dev/glasshouse/loadtest"
	"github.com/glasshouse-dev/glasshouse/loadtest/promexport"
	"github.com/glasshouse-dev/glasshouse/loadtest/report"
	"github.com/glasshouse-dev/glasshouse/loadtest/scenarios"
)

// config is every flag, resolved flag > environment > default.
type config struct {
	target, scenario, sloPath    string
	url                          string
	users, rate, vus, maxVUs     int
	duration                     time.Duration
	summaryExport, out           string
	tags                         map[string]string
	prometheus                   bool
	promAddr                     string
	promLinger                   time.Duration
	quiet, noSummary, noProgress bool
	noPhases                     bool
	trendStats                   string
	cpuProfile                   string
	serverMetrics                string
	minRequests                  int
	report                       string
	coarseSchedule               bool
}

// settings is every flag of glasshouse-load, each declared once, bound to
// the fields of c (whose tags map must not be nil).
func (c *config) settings() []setting.Setting {
	names := scenarios.Names()
	httpURL := func(v *string, want string) func() error {
		return func() error {
			if *v == "" {
				return nil
			}
			if u, err := url.Parse(*v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("%q: want %s", *v, want)
			}
			return nil
		}
	}
	return []setting.Setting{
		setting.Text(&c.target, "target", "TARGET", "http://127.0.0.1:8080", "API base URL"),
		setting.Text(&c.scenario, "scenario", "SCENARIO", "smoke", "API scenario: "+strings.Join(names, ", ")).Then(func() error {
			if c.url == "" && !slices.Contains(names, c.scenario) {
				return fmt.Errorf("%q is not %s", c.scenario, setting.OrList(names))
			}
			return nil
		}),
		setting.Optional(setting.Text(&c.sloPath, "slo", "SLO_FILE", "", "SLO spec the thresholds are derived from"),
			"the alerts/slo.yaml built into the binary", nil),
		setting.Int(&c.users, "users", "", 0, 0, "users signed up and logged in during setup (0: per scenario)"),
		setting.Int(&c.rate, "rate", "", 0, 0, "iterations per second: steady rate of arrival-rate scenarios, peak of spike/breakpoint; with -url, 0 runs a closed loop"),
		setting.Int(&c.vus, "vus", "", 0, 0, "VUs of the smoke scenario; with -url, pre-allocated VUs (0: 50)"),
		setting.Int(&c.maxVUs, "max-vus", "", 0, 0, "with -url and -rate: most VUs (0: 4x -vus)"),
		setting.Duration(&c.duration, "duration", "", 0, 0, "total duration; stages scale with it (0: per scenario; 10s with -url)"),
		setting.Text(&c.url, "url", "", "", "load this URL with GET requests instead of running an API scenario").Then(
			httpURL(&c.url, "http(s)://host[:port]/path")),
		setting.Text(&c.summaryExport, "summary-export", "", "", "write the JSON summary to this file"),
		setting.Text(&c.out, "out", "", "", "stream every sample as k6 JSON lines: json=FILE").Then(func() error {
			if c.out != "" && !strings.HasPrefix(c.out, "json=") {
				return fmt.Errorf("%q: want json=FILE", c.out)
			}
			return nil
		}),
		{Flag: "tag", Arg: "value", Usage: "tag added to every sample, key=value (repeatable), e.g. -tag testid=ci-42", Set: func(s string) error {
			if s == "" {
				return nil
			}
			k, v, ok := strings.Cut(s, "=")
			if !ok || k == "" {
				return fmt.Errorf("%q is not key=value", s)
			}
			c.tags[k] = v
			return nil
		}},
		setting.Bool(&c.prometheus, "prometheus", "", false, "serve the run's metrics for Prometheus at -prometheus-addr"),
		setting.Text(&c.promAddr, "prometheus-addr", "", "127.0.0.1:9096", "listen address of the Prometheus endpoint (/metrics)").Then(func() error {
			if !c.prometheus {
				return nil
			}
			if _, _, err := net.SplitHostPort(c.promAddr); err != nil {
				return fmt.Errorf("%q: %w", c.promAddr, err)
			}
			return nil
		}),
		setting.Duration(&c.promLinger, "prometheus-linger", "", 0, 0, "keep the Prometheus endpoint up this long after the run (so a last scrape sees the final values)"),
		setting.Bool(&c.quiet, "quiet", "", false, "no progress line and no summary"),
		setting.Bool(&c.noSummary, "no-summary", "", false, "do not print the end-of-test summary"),
		setting.Bool(&c.noProgress, "no-progress", "", false, "no live progress line (it is also off when stderr is not a terminal or CI is set)"),
		setting.Text(&c.trendStats, "summary-trend-stats", "", "", "trend columns of the summary (empty: avg,min,med,max,p(90),p(95),p(99)), e.g. med,p(99),p(99.9)"),
		setting.Text(&c.cpuProfile, "cpuprofile", "", "", "write the generator's CPU profile to this file (go tool pprof)"),
		setting.Text(&c.serverMetrics, "server-metrics", "", "", "the target's Prometheus endpoint (e.g. http://127.0.0.1:8081/metrics): scraped before and after the run, its request count, 5xx ratio and p99 are printed next to the client's and must agree").Then(
			httpURL(&c.serverMetrics, "http(s)://host:port/metrics")),
		setting.Text(&c.report, "report", "", "", "write a self-contained HTML report (charts over time, thresholds, checks, options) to this file"),
		setting.Int(&c.minRequests, "min-requests", "", 0, 0, "fail when fewer requests completed (too few to judge an SLO)"),
		setting.Bool(&c.coarseSchedule, "coarse-schedule", "", false, "arrival-rate schedule on Go timers alone: iterations may start up to 1 ms late, for less CPU at thousands of it/s"),
		setting.Bool(&c.noPhases, "no-http-phases", "", false, "skip per-request tracing (no blocked/connecting/sending/waiting/receiving trends)"),
	}
}

// parseFlags resolves every flag with precedence flag > environment >
// default and reports every problem at once, as a loadtest.ConfigError.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	c := config{tags: map[string]string{}}
	table := c.settings()
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	given := setting.Register(fs, table)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, &loadtest.ConfigError{Err: err}
	}
	problems := setting.Resolve(table, given, setting.Getenv(getenv))
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if len(problems) > 0 {
		return c, &loadtest.ConfigError{Err: fmt.Errorf("invalid configuration:\n  %w", problems)}
	}
	return c, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	test, err := buildTest(c)
	if err != nil {
		return &loadtest.ConfigError{Err: err}
	}
	test.Options.NoHTTPPhases = c.noPhases
	test.Options.CoarseSchedule = c.coarseSchedule
	if c.trendStats != "" {
		test.Options.SummaryTrendStats = strings.Split(c.trendStats, ",")
	}
	if test.Options.Tags == nil {
		test.Options.Tags = map[string]string{}
	}
	for k, v := range c.tags {
		test.Options.Tags[k] = v
	}

	ro := loadtest.RunOptions{Log: stderr, Timeline: c.report != ""}
	if !c.quiet && !c.noProgress && getenv("CI") == "" && isTerminal(stderr) {
		ro.Progress = stderr
	}
	if c.out != "" {
		f, err := os.Create(strings.TrimPrefix(c.out, "json="))
		if err != nil {
			return &loadtest.ConfigError{Err: fmt.Errorf("-out: %w", err)}
		}
		defer f.Close()
		ro.JSON = f
	}
	rn, err := loadtest.New(test, ro)
	if err != nil {
		return err
	}
	if c.prometheus {
		ln, err := net.Listen("tcp", c.promAddr)
		if err != nil {
			return &loadtest.ConfigError{Err: fmt.Errorf("-prometheus-addr: %w", err)}
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promexport.Handler(rn))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		fmt.Fprintf(stderr, "Prometheus metrics at http://%s/metrics\n", ln.Addr())
		defer func() {
			if c.promLinger > 0 {
				t := time.NewTimer(c.promLinger)
				select {
				case <-t.C:
				case <-ctx.Done():
				}
				t.Stop()
			}
			srv.Close()
		}()
	}

	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return &loadtest.ConfigError{Err: fmt.Errorf("-cpuprofile: %w", err)}
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	scrape := &http.Client{Timeout: 10 * time.Second}
	var before serverView
	if c.serverMetrics != "" {
		if before, err = scrapeServer(ctx, scrape, c.serverMetrics); err != nil {
			return fmt.Errorf("-server-metrics before the run: %w", err)
		}
	}
	started := time.Now()
	res, runErr := rn.Run(ctx)
	if res != nil && c.report != "" {
		if err := writeReport(c, started, res); err != nil && runErr == nil {
			runErr = err
		} else if err == nil {
			fmt.Fprintf(stderr, "HTML report written to %s\n", c.report)
		}
	}
	if res != nil {
		if !c.quiet && !c.noSummary {
			res.WriteSummary(stdout)
		}
		if err := checkRequests(ctx, c, scrape, before, rn, res, stdout); err != nil && runErr == nil {
			runErr = err
		}
		if c.summaryExport != "" {
			if err := writeSummary(c.summaryExport, res); err != nil && runErr == nil {
				runErr = err
			}
		}
	}
	if errors.Is(runErr, loadtest.ErrThresholdsFailed) && res != nil {
		var metrics []string
		for _, t := range res.Thresholds {
			if !t.OK && !slices.Contains(metrics, t.Metric) {
				metrics = append(metrics, t.Metric)
			}
		}
		return fmt.Errorf("thresholds on metrics '%s' have been crossed: %w", strings.Join(metrics, ", "), loadtest.ErrThresholdsFailed)
	}
	return runErr
}

// checkRequests applies -min-requests and -server-metrics to a finished
// run.
func checkRequests(ctx context.Context, c config, scrape *http.Client, before serverView, rn *loadtest.Runner, res *loadtest.Result, stdout io.Writer) error {
	if c.minRequests == 0 && c.serverMetrics == "" {
		return nil
	}
	cv := newClientView(rn, res)
	if c.serverMetrics != "" {
		after, err := serverAfter(context.WithoutCancel(ctx), scrape, c.serverMetrics, before, cv.completed, 5*time.Second)
		if err != nil {
			return fmt.Errorf("-server-metrics after the run: %w", err)
		}
		if err := compareViews(stdout, cv, after); err != nil {
			return err
		}
	}
	if cv.completed < uint64(c.minRequests) {
		return fmt.Errorf("%d requests completed, fewer than -min-requests %d: too few to judge the objectives", cv.completed, c.minRequests)
	}
	return nil
}

// writeReport writes the -report HTML file.
func writeReport(c config, started time.Time, res *loadtest.Result) error {
	f, err := os.Create(c.report)
	if err != nil {
		return fmt.Errorf("-report: %w", err)
	}
	title := "glasshouse-load: " + c.scenario + " scenario"
	if c.url != "" {
		title = "glasshouse-load: " + c.url
	}
	if err := report.Write(f, res, report.Info{Title: title, Started: started, Options: reportOptions(c)}); err != nil {
		f.Close()
		return fmt.Errorf("-report: %w", err)
	}
	return f.Close()
}

// reportOptions lists the run's settings for the report.
func reportOptions(c config) [][2]string {
	orDefault := func(n int) string {
		if n == 0 {
			return "scenario default"
		}
		return strconv.Itoa(n)
	}
	var o [][2]string
	if c.url != "" {
		o = append(o, [2]string{"url", c.url})
	} else {
		slo := c.sloPath
		if slo == "" {
			slo = "alerts/slo.yaml (built in)"
		}
		o = append(o, [][2]string{{"target", c.target}, {"scenario", c.scenario}, {"SLO spec", slo}, {"users", orDefault(c.users)}}...)
	}
	d := "scenario default"
	if c.duration > 0 {
		d = c.duration.String()
	}
	o = append(o, [][2]string{{"rate (it/s)", orDefault(c.rate)}, {"vus", orDefault(c.vus)}, {"duration", d}}...)
	if c.maxVUs > 0 {
		o = append(o, [2]string{"max vus", strconv.Itoa(c.maxVUs)})
	}
	o = append(o, [2]string{"http phases", strconv.FormatBool(!c.noPhases)}, [2]string{"coarse schedule", strconv.FormatBool(c.coarseSchedule)})
	keys := slices.Sorted(maps.Keys(c.tags))
	for _, k := range keys {
		o = append(o, [2]string{"tag " + k, c.tags[k]})
	}
	return o
}

func writeSummary(path string, res *loadtest.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("-summary-export: %w", err)
	}
	if err := res.WriteJSON(f); err != nil {
		f.Close()
		return fmt.Errorf("-summary-export: %w", err)
	}
	return f.Close()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// buildTest turns the flags into a test: an API scenario, or with -url a
// plain GET load (k6's "default" scenario).
func buildTest(c config) (loadtest.Test, error) {
	if c.url != "" {
		d := c.duration
		if d == 0 {
			d = 10 * time.Second
		}
		vus := c.vus
		if vus == 0 {
			vus = 50
		}
		var ex loadtest.Executor = loadtest.ConstantVUs{VUs: vus, Duration: d}
		if c.rate > 0 {
			maxVUs := c.maxVUs
			if maxVUs == 0 {
				maxVUs = 4 * vus
			}
			ex = loadtest.ConstantArrivalRate{Rate: c.rate, Duration: d, PreAllocatedVUs: vus, MaxVUs: max(vus, maxVUs)}
		}
		target := c.url
		params := &loadtest.Params{Discard: true}
		return loadtest.Test{
			Scenarios: []loadtest.Scenario{{Name: "default", Executor: ex, GracefulStop: 5 * time.Second,
				Exec: func(ctx context.Context, vu *loadtest.VU) error {
					vu.Get(ctx, target, params)
					return nil
				}}},
			Options: loadtest.Options{DiscardResponseBodies: true},
		}, nil
	}
	var spec slo.Spec
	var err error
	if c.sloPath == "" {
		spec, err = slo.Parse(alerts.SLOSpec())
	} else {
		spec, err = slo.Load(c.sloPath)
	}
	if err != nil {
		return loadtest.Test{}, fmt.Errorf("-slo: %w", err)
	}
	return scenarios.Build(c.scenario, scenarios.Config{
		Target: c.target, SLO: spec, Users: c.users, Rate: c.rate, VUs: c.vus, Duration: c.duration,
		RunID: strconv.FormatInt(time.Now().Unix()%1e8, 36),
	})
}
