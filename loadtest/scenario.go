package loadtest

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

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
	s.sc.Executor.run(s)
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
