package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glasshouse-dev/glasshouse/loadtest/threshold"
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
		data, err := r.runPhase(ctx, "setup", durOr(r.test.Options.SetupTimeout, 60*time.Second), errSetupTimeout, func(c context.Context) error {
			d, err := r.test.Setup(c, setupVU)
			r.data = d
			return err
		})
		_ = data
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
	for n := 1; ; n++ {
		select {
		case <-done:
		case <-tick.C:
			r.sampleVUs(false)
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
		_, err := r.runPhase(tctx, "teardown", durOr(r.test.Options.TeardownTimeout, 60*time.Second), errTeardownTimeout, func(c context.Context) error {
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
	if runErr == nil && !res.ThresholdsPassed() {
		runErr = fmt.Errorf("%w: %s", ErrThresholdsFailed, strings.Join(res.FailedThresholds(), ", "))
	}
	return res, runErr
}

// runPhase runs setup or teardown with a timeout, converting panics to
// errors.
func (r *runner) runPhase(ctx context.Context, name string, timeout time.Duration, timeoutErr error, f func(context.Context) error) (any, error) {
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
		return nil, err
	case <-c.Done():
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w", ErrExternalAbort, ctx.Err())
		}
		return nil, fmt.Errorf("%w after %s", timeoutErr, timeout)
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

// scenarioRun is one scenario's execution state.
type scenarioRun struct {
	r   *runner
	sc  Scenario
	idx int

	ctx      context.Context // iterations' context: cancelled after graceful stop
	cancel   context.CancelFunc
	stopCh   chan struct{} // closed when no new iteration may start
	stopOnce sync.Once
	vuWG     sync.WaitGroup

	startedAt, endedAt   atomic.Int64 // runner nanos
	hasStarted, hasEnded atomic.Bool
	scheduled            atomic.Int64 // open model: iterations due
	startedIters         atomic.Int64
	completed            atomic.Int64
	interrupted          atomic.Int64
	errored              atomic.Int64
	droppedIters         atomic.Int64
	vus                  atomic.Int64 // VUs allocated to the scenario
	busy, peakBusy       atomic.Int64
	nextID               atomic.Int64
	droppedWarned        atomic.Int64 // runner nanos of the last warning
	iterTags             *TagSet
	dropSink, lagSink    *sink
}

func newScenarioRun(r *runner, sc Scenario, idx int, runCtx context.Context) *scenarioRun {
	s := &scenarioRun{r: r, sc: sc, idx: idx, stopCh: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(runCtx)
	tags := map[string]string{}
	for k, v := range r.test.Options.Tags {
		tags[k] = v
	}
	for k, v := range sc.Tags {
		tags[k] = v
	}
	tags["scenario"] = sc.Name
	s.iterTags = r.reg.tagSet(tags)
	s.dropSink = r.dropped.sink(s.iterTags)
	s.lagSink = r.scheduleLag.sink(s.iterTags)
	return s
}

func (s *scenarioRun) stop() { s.stopOnce.Do(func() { close(s.stopCh) }) }

func (s *scenarioRun) stopping() bool {
	select {
	case <-s.stopCh:
		return true
	default:
		return false
	}
}

func (s *scenarioRun) run() {
	defer s.cancel()
	if s.sc.StartTime > 0 {
		t := time.NewTimer(s.sc.StartTime)
		select {
		case <-t.C:
		case <-s.stopCh:
			t.Stop()
			return
		case <-s.ctx.Done():
			t.Stop()
			return
		}
	}
	s.startedAt.Store(s.r.nanos())
	s.hasStarted.Store(true)
	finished := make(chan struct{})
	go s.stopper(finished)
	switch e := s.sc.Executor.(type) {
	case SharedIterations:
		s.runSharedIterations(e)
	case PerVUIterations:
		s.runPerVUIterations(e)
	case ConstantVUs:
		s.runConstantVUs(e)
	case RampingVUs:
		s.runRampingVUs(e)
	case ConstantArrivalRate:
		s.runArrivalRate(newArrivals(e.Rate, e.TimeUnit, []Stage{{Duration: e.Duration, Target: e.Rate}}), e.PreAllocatedVUs, e.maxVUs())
	case RampingArrivalRate:
		s.runArrivalRate(newArrivals(e.StartRate, e.TimeUnit, e.Stages), e.PreAllocatedVUs, e.maxVUs())
	}
	s.vuWG.Wait()
	close(finished)
	s.endedAt.Store(s.r.nanos())
	s.hasEnded.Store(true)
}

// stopper ends the scenario at its duration: no new iterations, then after
// gracefulStop the running ones are interrupted.
func (s *scenarioRun) stopper(finished <-chan struct{}) {
	t := time.NewTimer(s.sc.Executor.duration())
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.stopCh: // stopped early (interrupt)
	case <-finished:
		return
	case <-s.ctx.Done():
	}
	s.stop()
	t.Reset(graceOr(s.sc.GracefulStop))
	select {
	case <-t.C:
		s.cancel()
	case <-finished:
	case <-s.ctx.Done():
	}
}

func (s *scenarioRun) newVU() *VU {
	r := s.r
	vu := newVU(r, int(r.nextVU.Add(1)), s, int(s.nextID.Add(1)))
	r.allocated.Add(1)
	s.vus.Add(1)
	return vu
}

// iterate runs one iteration of vu with ctx; lag is how late it started
// after its intended start.
func (s *scenarioRun) iterate(vu *VU, ctx context.Context, lag time.Duration) {
	r := s.r
	vu.group, vu.lag = "", lag
	vu.scheduled = r.nanos() - int64(lag)
	s.startedIters.Add(1)
	if b := s.busy.Add(1); b > s.peakBusy.Load() {
		for p := s.peakBusy.Load(); b > p && !s.peakBusy.CompareAndSwap(p, b); p = s.peakBusy.Load() {
		}
	}
	start := time.Now()
	err := s.call(ctx, vu)
	end := time.Now()
	vu.group = "" // a panic inside Group may have left it set
	s.busy.Add(-1)
	vu.Iteration++
	switch {
	case err != nil && errors.Is(err, ErrAbort):
		s.interrupted.Add(1)
		r.logf("scenario %s vu %d: %v", s.sc.Name, vu.ID, err)
		r.abort(err)
	case ctx.Err() != nil:
		s.interrupted.Add(1)
	case err != nil:
		s.interrupted.Add(1)
		s.errored.Add(1)
		r.logf("scenario %s vu %d iteration %d: %v", s.sc.Name, vu.ID, vu.Iteration-1, err)
	default:
		s.completed.Add(1)
		ts := vu.tags()
		r.reg.record(r.iterations, ts, 1, end)
		r.reg.record(r.iterationDuration, ts, ms(end.Sub(start)), end)
	}
}

func (s *scenarioRun) call(ctx context.Context, vu *VU) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("iteration panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return s.sc.Exec(ctx, vu)
}

// vuStarted/vuStopped keep the vus gauge.
func (s *scenarioRun) vuStarted() {
	r := s.r
	if n := r.active.Add(1); n > r.peakActive.Load() {
		for p := r.peakActive.Load(); n > p && !r.peakActive.CompareAndSwap(p, n); p = r.peakActive.Load() {
		}
	}
}
func (s *scenarioRun) vuStopped(vu *VU) {
	s.r.active.Add(-1)
	vu.http.release()
}

func (s *scenarioRun) runSharedIterations(e SharedIterations) {
	total := int64(orDefault(e.Iterations, 1))
	var next atomic.Int64
	for range e.maxVUs() {
		vu := s.newVU()
		s.vuStarted()
		s.vuWG.Go(func() {
			defer s.vuStopped(vu)
			for !s.stopping() && s.ctx.Err() == nil && next.Add(1) <= total {
				s.iterate(vu, s.ctx, 0)
			}
		})
	}
}

func (s *scenarioRun) runPerVUIterations(e PerVUIterations) {
	n := orDefault(e.Iterations, 1)
	for range e.maxVUs() {
		vu := s.newVU()
		s.vuStarted()
		s.vuWG.Go(func() {
			defer s.vuStopped(vu)
			for i := 0; i < n && !s.stopping() && s.ctx.Err() == nil; i++ {
				s.iterate(vu, s.ctx, 0)
			}
		})
	}
}

func (s *scenarioRun) runConstantVUs(e ConstantVUs) {
	for range e.maxVUs() {
		vu := s.newVU()
		s.vuStarted()
		s.vuWG.Go(func() {
			defer s.vuStopped(vu)
			for !s.stopping() && s.ctx.Err() == nil {
				s.iterate(vu, s.ctx, 0)
			}
		})
	}
}

// rampVU is a ramping-vus slot: active while its index is below the
// current target.
type rampVU struct {
	vu     *VU
	active atomic.Bool
	epoch  atomic.Int64
	wake   chan struct{}
	cancel atomic.Pointer[context.CancelFunc]
}

func (s *scenarioRun) runRampingVUs(e RampingVUs) {
	steps := e.vuSteps()
	slots := make([]*rampVU, e.maxVUs())
	rampDown := graceOr(e.GracefulRampDown)
	start := time.Now()
	cur := 0
	setTarget := func(target int) {
		for ; cur < target; cur++ { // activate slots [cur, target)
			sl := slots[cur]
			if sl == nil {
				sl = &rampVU{vu: s.newVU(), wake: make(chan struct{}, 1)}
				slots[cur] = sl
				s.vuWG.Go(func() { s.rampLoop(sl) })
			}
			sl.epoch.Add(1)
			sl.active.Store(true)
			select {
			case sl.wake <- struct{}{}:
			default:
			}
		}
		for ; cur > target; cur-- { // deactivate slots [target, cur)
			sl := slots[cur-1]
			sl.active.Store(false)
			ep := sl.epoch.Load()
			time.AfterFunc(rampDown, func() {
				if sl.epoch.Load() == ep && !sl.active.Load() {
					if c := sl.cancel.Load(); c != nil {
						(*c)()
					}
				}
			})
		}
	}
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for _, st := range steps {
		if d := time.Until(start.Add(st.at)); d > 0 {
			t.Reset(d)
			select {
			case <-t.C:
			case <-s.stopCh:
				return
			}
		}
		if s.stopping() {
			return
		}
		setTarget(st.vus)
	}
	// Hold the last target until the stopper ends the scenario.
	<-s.stopCh
}

func (s *scenarioRun) rampLoop(sl *rampVU) {
	for {
		select {
		case <-sl.wake:
		case <-s.stopCh:
			return
		}
		if !sl.active.Load() {
			continue
		}
		ctx, cancel := context.WithCancel(s.ctx)
		sl.cancel.Store(&cancel)
		s.vuStarted()
		for sl.active.Load() && !s.stopping() && ctx.Err() == nil {
			s.iterate(sl.vu, ctx, 0)
		}
		sl.cancel.Store(nil)
		cancel()
		s.vuStopped(sl.vu)
	}
}

// job is an iteration handed to a pool VU: its intended start.
type job struct{ intended int64 }

// poolVU is an arrival-rate VU with its own job slot.
type poolVU struct {
	vu   *VU
	jobs chan job // capacity 1: the dispatcher never blocks
}

// runArrivalRate dispatches iterations at their intended start to idle VUs.
// A VU is in the idle channel exactly while it is free, so the dispatcher
// knows without racing whether one is available: if none is, it allocates a
// new VU up to maxVUs (instantly: Go VUs are cheap) or drops the iteration.
func (s *scenarioRun) runArrivalRate(a *arrivals, pre, maxVUs int) {
	r := s.r
	idle := make(chan *poolVU, maxVUs)
	var all []*poolVU
	newPoolVU := func() *poolVU {
		p := &poolVU{vu: s.newVU(), jobs: make(chan job, 1)}
		all = append(all, p)
		s.vuStarted()
		s.vuWG.Go(func() {
			defer s.vuStopped(p.vu)
			for j := range p.jobs {
				s.runJob(p.vu, j)
				idle <- p
			}
		})
		return p
	}
	for range pre {
		idle <- newPoolVU()
	}
	defer func() {
		for _, p := range all {
			close(p.jobs)
		}
	}()
	base := s.startedAt.Load()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for i := int64(0); ; i++ {
		off, ok := a.at(i)
		if !ok {
			return
		}
		intended := base + int64(off)
		if d := intended - r.nanos(); d > 0 {
			t.Reset(time.Duration(d))
			select {
			case <-t.C:
			case <-s.stopCh:
				return
			case <-s.ctx.Done():
				return
			}
		} else if s.stopping() {
			// The dispatcher fell behind and the scenario is stopping:
			// the iterations that were already due are neither run nor
			// forgotten. Count them as scheduled and dropped, so the
			// accounting (scheduled = started + dropped) still holds;
			// those not yet due (an abort mid-run) were never scheduled.
			for now := r.nanos(); ok && base+int64(off) <= now; off, ok = a.at(i) {
				s.scheduled.Add(1)
				s.droppedIters.Add(1)
				r.reg.recordSink(s.dropSink, 1, time.Now())
				i++
			}
			return
		}
		s.scheduled.Add(1)
		j := job{intended: intended}
		select {
		case p := <-idle:
			p.jobs <- j
			continue
		default:
		}
		if len(all) < maxVUs {
			newPoolVU().jobs <- j
			continue
		}
		s.droppedIters.Add(1)
		r.reg.recordSink(s.dropSink, 1, time.Now())
		now := r.nanos()
		if last := s.droppedWarned.Load(); last == 0 || now-last > int64(5*time.Second) {
			s.droppedWarned.Store(now)
			r.logf("WARN scenario %s: insufficient VUs, reached %d active VUs and cannot start more; iterations are being dropped (dropped_iterations)", s.sc.Name, maxVUs)
		}
	}
}

func (s *scenarioRun) runJob(vu *VU, j job) {
	now := s.r.nanos()
	lag := time.Duration(max(0, now-j.intended))
	s.r.reg.recordSink(s.lagSink, ms(lag), s.r.wall(now))
	s.iterate(vu, s.ctx, lag)
}

// ScenarioResult is one scenario's execution accounting: the execution
// model made explicit (scheduled vs started vs dropped, peak concurrency).
type ScenarioResult struct {
	Name        string
	Executor    string
	Open        bool  // arrival-rate executor
	Scheduled   int64 // open model: iterations due by the schedule
	Started     int64
	Completed   int64
	Interrupted int64 // cancelled by graceful stop/abort, or returned an error
	Errors      int64 // returned an error (included in Interrupted)
	Dropped     int64
	VUs         int64 // VUs allocated
	MaxVUs      int
	PeakBusy    int64 // most iterations running at once
	Duration    time.Duration
}

func (s *scenarioRun) result() ScenarioResult {
	d := time.Duration(0)
	if s.hasStarted.Load() {
		e := s.r.nanos()
		if s.hasEnded.Load() {
			e = s.endedAt.Load()
		}
		d = time.Duration(e - s.startedAt.Load())
	}
	return ScenarioResult{
		Name: s.sc.Name, Executor: s.sc.Executor.Kind(), Open: s.sc.Executor.open(),
		Scheduled: s.scheduled.Load(), Started: s.startedIters.Load(), Completed: s.completed.Load(),
		Interrupted: s.interrupted.Load(), Errors: s.errored.Load(), Dropped: s.droppedIters.Load(),
		VUs: s.vus.Load(), MaxVUs: s.sc.Executor.maxVUs(), PeakBusy: s.peakBusy.Load(), Duration: d,
	}
}

// compiledThreshold is one metric selector's thresholds.
type compiledThreshold struct {
	key    string
	sel    threshold.Selector
	metric *metricState
	exprs  []*thresholdState
}

type thresholdState struct {
	expr           threshold.Expr
	abortOnFail    bool
	delayAbortEval time.Duration
	ok, evaluated  bool
	value          float64
}

// ThresholdResult is the latest evaluation of one threshold.
type ThresholdResult struct {
	Metric   string // selector as written, e.g. "http_req_duration{scenario:a}"
	Expr     string // as written
	Agg      string // e.g. "p(95)"
	Value    float64
	OK       bool
	Type     MetricType
	Contains ValueType
}

func validAgg(t MetricType, agg string) bool {
	switch t {
	case Counter:
		return agg == threshold.Count || agg == threshold.Rate
	case Gauge:
		return agg == threshold.Value
	case Rate:
		return agg == threshold.Rate
	case Trend:
		return slices.Contains([]string{threshold.Avg, threshold.Min, threshold.Max, threshold.Med, threshold.P}, agg)
	}
	return false
}

func aggNames(t MetricType) string {
	switch t {
	case Counter:
		return "count, rate"
	case Gauge:
		return "value"
	case Rate:
		return "rate"
	}
	return "avg, min, max, med, p(N)"
}

func (r *runner) compileThresholds(ths map[string][]Threshold, errs []error) ([]*compiledThreshold, []error) {
	keys := make([]string, 0, len(ths))
	for k := range ths {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []*compiledThreshold
	for _, k := range keys {
		sel, err := threshold.ParseSelector(k)
		if err != nil {
			errs = append(errs, fmt.Errorf("thresholds: %w", err))
			continue
		}
		st := r.reg.metric(sel.Metric)
		if st == nil {
			errs = append(errs, fmt.Errorf("thresholds: metric %q is not defined (declare custom metrics in Test.Metrics)", sel.Metric))
			continue
		}
		ct := &compiledThreshold{key: k, sel: sel, metric: st}
		for _, th := range ths[k] {
			e, err := threshold.Parse(th.Expr)
			if err != nil {
				errs = append(errs, fmt.Errorf("thresholds on %s: %w", k, err))
				continue
			}
			if !validAgg(st.Type, e.Agg.Name) {
				errs = append(errs, fmt.Errorf("thresholds on %s: %q: aggregation %s does not apply to %s metrics (use %s)", k, th.Expr, e.Agg, st.Type, aggNames(st.Type)))
				continue
			}
			if th.DelayAbortEval < 0 {
				errs = append(errs, fmt.Errorf("thresholds on %s: %q: delayAbortEval must not be negative", k, th.Expr))
			}
			ct.exprs = append(ct.exprs, &thresholdState{expr: e, abortOnFail: th.AbortOnFail, delayAbortEval: th.DelayAbortEval})
		}
		out = append(out, ct)
	}
	return out, errs
}

// aggValue computes aggregation agg of a.
func aggValue(a Agg, agg threshold.Agg, elapsed time.Duration) float64 {
	switch agg.Name {
	case threshold.Count:
		return a.Sum
	case threshold.Rate:
		if a.Metric.Type == Counter {
			if elapsed <= 0 {
				return 0
			}
			return a.Sum / elapsed.Seconds()
		}
		return a.RateValue()
	case threshold.Value:
		return a.Value
	case threshold.Avg:
		return a.Hist.Mean()
	case threshold.Min:
		return a.Hist.Min()
	case threshold.Max:
		return a.Hist.Max()
	case threshold.Med:
		return a.Hist.Quantile(0.5)
	case threshold.P:
		return a.Hist.Quantile(agg.P / 100)
	}
	return 0
}

// evaluateThresholds evaluates every threshold over the run so far and,
// during the run, aborts on a failed abortOnFail threshold.
func (r *runner) evaluateThresholds(final bool) {
	elapsed := r.elapsed()
	r.tmu.Lock()
	defer r.tmu.Unlock()
	for _, ct := range r.thresholds {
		a := ct.metric.aggregate(ct.sel.Tags)
		for _, ts := range ct.exprs {
			ts.value = aggValue(a, ts.expr.Agg, elapsed)
			ts.ok = ts.expr.Holds(ts.value)
			ts.evaluated = true
			if !final && !ts.ok && ts.abortOnFail && elapsed >= ts.delayAbortEval {
				r.logf("ERRO thresholds on metrics '%s' were crossed; at least one has abortOnFail enabled, stopping test prematurely", ct.key)
				r.abort(fmt.Errorf("%w: %s %s (abortOnFail)", ErrThresholdsFailed, ct.key, ts.expr.Source))
			}
		}
	}
}

func (r *runner) thresholdResults() []ThresholdResult {
	r.tmu.Lock()
	defer r.tmu.Unlock()
	var out []ThresholdResult
	for _, ct := range r.thresholds {
		for _, ts := range ct.exprs {
			out = append(out, ThresholdResult{Metric: ct.key, Expr: ts.expr.Source, Agg: ts.expr.Agg.String(),
				Value: ts.value, OK: ts.ok || !ts.evaluated, Type: ct.metric.Type, Contains: ct.metric.Contains})
		}
	}
	return out
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
