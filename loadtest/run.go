package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Runner is a validated test ready to run once. Its read methods
// (Snapshot, ThresholdResults, Progress) are safe to call concurrently with
// Run, e.g. from a Prometheus scrape.
type Runner struct{ r *runner }

// New validates t and prepares a run. Every problem of t is reported at
// once in a *ConfigError (exit code 104): bad executors, duplicate
// scenarios, unparseable thresholds, thresholds on unknown metrics or with
// an aggregation their metric type lacks.
func New(t Test, o RunOptions) (*Runner, error) {
	r, err := newRunner(t, o)
	if err != nil {
		return nil, err
	}
	return &Runner{r}, nil
}

// Run runs t to completion (see Runner.Run).
func Run(ctx context.Context, t Test, o RunOptions) (*Result, error) {
	rn, err := New(t, o)
	if err != nil {
		return nil, err
	}
	return rn.Run(ctx)
}

type runner struct {
	test Test
	opts RunOptions
	reg  *registry

	t0         time.Time // monotonic base of nanos()
	started    atomic.Int64
	ended      atomic.Int64
	hasStarted atomic.Bool
	hasEnded   atomic.Bool

	transport     *http.Transport
	defaultHeader http.Header
	httpTimeout   time.Duration
	connsOpened   atomic.Int64
	bytes         byteTotals
	seriesMu      sync.Mutex
	series        map[*TagSet]*httpSeries
	// dial, when set, replaces the transport's net.Dialer: tests give the
	// engine an in-memory network, which a testing/synctest bubble can wait
	// on (it cannot wait on a socket).
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	httpReqs, httpFailed, httpDuration, httpLatency                         *metricState
	httpBlocked, httpConnecting, httpTLS, httpSending, httpWaiting          *metricState
	httpReceiving, dataSent, dataReceived, checks, groupDuration            *metricState
	iterations, iterationDuration, dropped, scheduleLag, vusGauge, vusMaxGa *metricState

	thresholds []*compiledThreshold
	tmu        sync.Mutex // guards threshold results

	scenarios  []*scenarioRun
	data       any
	nextVU     atomic.Int64
	active     atomic.Int64 // VUs running (vus)
	peakActive atomic.Int64
	vusSampled bool         // only the Run goroutine touches it
	allocated  atomic.Int64 // VUs created (vus_max)

	abortOnce sync.Once
	abortErr  error
	abortCh   chan struct{}

	logMu         sync.Mutex
	logWindow     time.Time
	logCount      int
	logSuppressed int
	ran           atomic.Bool
	overflowOnce  sync.Once
}

func newRunner(t Test, o RunOptions) (*runner, error) {
	var errs []error
	names := map[string]bool{}
	for i, sc := range t.Scenarios {
		f := fmt.Sprintf("scenarios[%d]", i)
		switch {
		case sc.Name == "":
			errs = append(errs, fmt.Errorf("%s: name is required", f))
		case names[sc.Name]:
			errs = append(errs, fmt.Errorf("%s: duplicate name %q", f, sc.Name))
		default:
			f = fmt.Sprintf("scenario %q", sc.Name)
		}
		names[sc.Name] = true
		if sc.Executor == nil {
			errs = append(errs, fmt.Errorf("%s: executor is required", f))
		} else if err := sc.Executor.validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", f, sc.Executor.Kind(), err))
		}
		if sc.Exec == nil {
			errs = append(errs, fmt.Errorf("%s: exec function is required", f))
		}
		if sc.StartTime < 0 {
			errs = append(errs, fmt.Errorf("%s: startTime must not be negative", f))
		}
	}
	if len(t.Scenarios) == 0 {
		errs = append(errs, errors.New("at least one scenario is required"))
	}
	for _, s := range t.Options.SummaryTrendStats {
		if _, err := parseTrendStat(s); err != nil {
			errs = append(errs, err)
		}
	}
	if t.Options.HTTPTimeout < 0 || t.Options.SetupTimeout < 0 || t.Options.TeardownTimeout < 0 {
		errs = append(errs, errors.New("options: timeouts must not be negative"))
	}

	r := &runner{test: t, opts: o, reg: newRegistry(), abortCh: make(chan struct{}), t0: time.Now(), series: map[*TagSet]*httpSeries{}}
	for _, m := range t.Metrics {
		if _, err := r.reg.register(m); err != nil {
			errs = append(errs, err)
		}
	}
	r.thresholds, errs = r.compileThresholds(t.Thresholds, errs)
	if err := errors.Join(errs...); err != nil {
		return nil, &ConfigError{Err: err}
	}
	if o.JSON != nil {
		r.reg.out = newJSONOutput(o.JSON)
		for _, st := range r.reg.order {
			var ths []string
			for _, ct := range r.thresholds {
				if ct.sel.Metric == st.Name && len(ct.sel.Tags) == 0 {
					for _, e := range ct.exprs {
						ths = append(ths, e.expr.Source)
					}
				}
			}
			r.reg.out.metric(st.Metric, ths)
		}
	}

	get := func(m Metric) *metricState { return r.reg.metric(m.Name) }
	r.httpReqs, r.httpFailed, r.httpDuration, r.httpLatency = get(HTTPReqs), get(HTTPReqFailed), get(HTTPReqDuration), get(HTTPReqLatency)
	r.httpBlocked, r.httpConnecting, r.httpTLS = get(HTTPReqBlocked), get(HTTPReqConnecting), get(HTTPReqTLSHandshaking)
	r.httpSending, r.httpWaiting, r.httpReceiving = get(HTTPReqSending), get(HTTPReqWaiting), get(HTTPReqReceiving)
	r.dataSent, r.dataReceived, r.checks, r.groupDuration = get(DataSent), get(DataReceived), get(Checks), get(GroupDuration)
	r.iterations, r.iterationDuration, r.dropped, r.scheduleLag = get(Iterations), get(IterationDuration), get(DroppedIterations), get(ScheduleLag)
	r.vusGauge, r.vusMaxGa = get(VUs), get(VUsMax)

	ua := t.Options.UserAgent
	if ua == "" {
		ua = "glasshouse-load/1 (k6-compatible)"
	}
	r.defaultHeader = http.Header{"User-Agent": {ua}}
	r.httpTimeout = durOr(t.Options.HTTPTimeout, 60*time.Second)
	maxConns := 1
	for _, sc := range t.Scenarios {
		maxConns += sc.Executor.maxVUs()
	}
	r.transport = newTransport(r, maxConns)
	return r, nil
}

// nanos is the monotonic time since the runner was created.
func (r *runner) nanos() int64 { return int64(time.Since(r.t0)) }

// wall converts runner nanos to a timestamp.
func (r *runner) wall(n int64) time.Time { return r.t0.Add(time.Duration(n)) }

// logf logs one line, at most 20 per second (the rest are counted).
func (r *runner) logf(format string, args ...any) {
	if r.opts.Log == nil {
		return
	}
	r.logMu.Lock()
	defer r.logMu.Unlock()
	now := time.Now()
	if now.Sub(r.logWindow) >= time.Second {
		if r.logSuppressed > 0 {
			fmt.Fprintf(r.opts.Log, "WARN %d log lines suppressed\n", r.logSuppressed)
		}
		r.logWindow, r.logCount, r.logSuppressed = now, 0, 0
	}
	if r.logCount >= 20 {
		r.logSuppressed++
		return
	}
	r.logCount++
	fmt.Fprintf(r.opts.Log, format+"\n", args...)
}

// abort stops the whole test with err (the first call wins).
func (r *runner) abort(err error) {
	r.abortOnce.Do(func() {
		r.abortErr = err
		close(r.abortCh)
	})
}

func (r *runner) aborted() error {
	select {
	case <-r.abortCh:
		return r.abortErr
	default:
		return nil
	}
}

// elapsed is the execution time so far (from the scenarios' start).
func (r *runner) elapsed() time.Duration {
	if !r.hasStarted.Load() {
		return 0
	}
	s := r.started.Load()
	if r.hasEnded.Load() {
		return time.Duration(r.ended.Load() - s)
	}
	return time.Duration(r.nanos() - s)
}

// Run runs the test: Setup, every scenario from its StartTime, Teardown,
// then a final threshold evaluation. It returns the result (nil only when
// Setup failed) and an error that ExitCode maps to k6's exit code:
// ErrThresholdsFailed (99), ErrAbort (108), ErrExternalAbort (105) when ctx
// was cancelled, ErrSetup (107). A Runner runs once.
func (rn *Runner) Run(ctx context.Context) (*Result, error) {
	r := rn.r
	if r.ran.Swap(true) {
		return nil, errors.New("loadtest: Runner.Run called twice")
	}
	defer r.transport.CloseIdleConnections()
	defer r.reg.flushOutput()

	setupVU := newVU(r, 0, nil, 0)
	setupVU.group = "::setup"
	if r.test.Setup != nil {
		err := r.runPhase(ctx, "setup", durOr(r.test.Options.SetupTimeout, 60*time.Second), errSetupTimeout, func(c context.Context) error {
			d, err := r.test.Setup(c, setupVU)
			r.data = d
			return err
		})
		if err != nil {
			setupVU.http.release()
			if errors.Is(err, errSetupTimeout) || errors.Is(err, ErrAbort) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %w", ErrSetup, err)
		}
	}

	// Iterations run under runCtx, which only an abort cancels at once.
	// Cancelling ctx (SIGINT) stops the scenarios gracefully instead: no
	// new iterations, running ones get their gracefulStop, as k6's first
	// interrupt.
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	for i, sc := range r.test.Scenarios {
		s := newScenarioRun(r, sc, i, runCtx)
		r.scenarios = append(r.scenarios, s)
	}
	go func() {
		select {
		case <-r.abortCh:
		case <-runCtx.Done():
		case <-ctx.Done():
			r.logf("WARN interrupted: stopping gracefully, running iterations get their gracefulStop")
			for _, s := range r.scenarios {
				s.stop()
			}
			select {
			case <-r.abortCh:
			case <-runCtx.Done():
			}
		}
		cancelRun()
	}()

	r.started.Store(r.nanos())
	r.hasStarted.Store(true)
	var wg sync.WaitGroup
	for _, s := range r.scenarios {
		wg.Go(s.run)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var prog *progress
	if r.opts.Progress != nil {
		prog = &progress{r: r, w: r.opts.Progress}
	}
	var tl *timeline
	if r.opts.Timeline {
		tl = newTimeline(r)
	}
	for n := 1; ; n++ {
		select {
		case <-done:
		case <-tick.C:
			r.sampleVUs(false)
			if tl != nil {
				tl.sample(false)
			}
			if prog != nil {
				prog.print(false)
			}
			if n%2 == 0 {
				r.evaluateThresholds(false)
			}
			continue
		}
		break
	}
	r.ended.Store(r.nanos())
	r.hasEnded.Store(true)
	r.sampleVUs(true)
	if tl != nil {
		tl.sample(true)
	}
	if prog != nil {
		prog.print(true)
	}

	var runErr error
	if err := r.aborted(); err != nil {
		runErr = err
	} else if ctx.Err() != nil {
		runErr = fmt.Errorf("%w: %w", ErrExternalAbort, context.Cause(ctx))
	}

	if r.test.Teardown != nil {
		tctx := context.WithoutCancel(ctx)
		err := r.runPhase(tctx, "teardown", durOr(r.test.Options.TeardownTimeout, 60*time.Second), errTeardownTimeout, func(c context.Context) error {
			setupVU.group = "::teardown"
			setupVU.data = r.data
			return r.test.Teardown(c, setupVU, r.data)
		})
		if err != nil {
			r.logf("teardown: %v", err)
			if runErr == nil && errors.Is(err, errTeardownTimeout) {
				runErr = err
			}
		}
	}
	setupVU.http.release()

	r.evaluateThresholds(true)
	res := r.result()
	if tl != nil {
		res.Timeline = tl.points
	}
	if runErr == nil && !res.ThresholdsPassed() {
		runErr = fmt.Errorf("%w: %s", ErrThresholdsFailed, strings.Join(res.FailedThresholds(), ", "))
	}
	return res, runErr
}

// runPhase runs setup or teardown with a timeout, converting panics to
// errors.
func (r *runner) runPhase(ctx context.Context, name string, timeout time.Duration, timeoutErr error, f func(context.Context) error) error {
	c, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				errc <- fmt.Errorf("%s panicked: %v\n%s", name, p, debug.Stack())
			}
		}()
		errc <- f(c)
	}()
	select {
	case err := <-errc:
		return err
	case <-c.Done():
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %w", ErrExternalAbort, ctx.Err())
		}
		return fmt.Errorf("%w after %s", timeoutErr, timeout)
	}
}

// sampleVUs records the vus and vus_max gauges (every second, as k6). The
// final sample, after every VU has stopped, records vus only when the run
// was too short for any other (then with the peak), so the summary shows
// the VUs the test ran with rather than the 0 it ended with.
func (r *runner) sampleVUs(final bool) {
	now := time.Now()
	empty := r.reg.tagSet(r.test.Options.Tags)
	switch {
	case !final:
		r.reg.record(r.vusGauge, empty, float64(r.active.Load()), now)
		r.vusSampled = true
	case !r.vusSampled:
		r.reg.record(r.vusGauge, empty, float64(r.peakActive.Load()), now)
	}
	r.reg.record(r.vusMaxGa, empty, float64(r.allocated.Load()), now)
	if r.test.Options.NoHTTPPhases {
		b := &r.bytes
		if s := b.sent.Load(); s > b.reportedSent {
			r.reg.record(r.dataSent, empty, float64(s-b.reportedSent), now)
			b.reportedSent = s
		}
		if v := b.recv.Load(); v > b.reportedRecv {
			r.reg.record(r.dataReceived, empty, float64(v-b.reportedRecv), now)
			b.reportedRecv = v
		}
	}
}

// Snapshot returns a copy of every series' aggregate so far.
func (rn *Runner) Snapshot() []SeriesSnapshot { return rn.r.reg.snapshot() }

// ThresholdResults returns the latest evaluation of every threshold.
func (rn *Runner) ThresholdResults() []ThresholdResult { return rn.r.thresholdResults() }

// Elapsed is the execution time so far.
func (rn *Runner) Elapsed() time.Duration { return rn.r.elapsed() }

// flushOutput flushes the JSON output, if any.
func (reg *registry) flushOutput() {
	if reg.out != nil {
		reg.out.flush()
	}
}

// limitSeries folds a new HTTP tag set into an overflow one when the
// request metrics already hold Options.MaxSeries tag sets.
func (r *runner) limitSeries(ts *TagSet, m map[string]string) *TagSet {
	limit := orDefault(r.test.Options.MaxSeries, 10_000)
	st := r.httpReqs
	st.mu.RLock()
	_, exists := st.series[ts]
	n := len(st.series)
	st.mu.RUnlock()
	if exists || n < limit {
		return ts
	}
	r.overflowOnce.Do(func() {
		r.logf("WARN more than %d distinct request tag sets: new ones are recorded as url=name=\"[overflow]\"; set Params.Name to a URL template", limit)
	})
	m["url"], m["name"] = "[overflow]", "[overflow]"
	delete(m, "error")
	return r.reg.tagSet(m)
}
