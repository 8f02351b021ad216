package loadtest

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Executor schedules a scenario's iterations. The implementations are the
// six k6 executors below; the interface is sealed.
type Executor interface {
	// Kind is k6's executor name, e.g. "constant-arrival-rate".
	Kind() string
	validate() error
	// maxVUs is the most VUs the executor may use.
	maxVUs() int
	// duration is the scenario's nominal length without graceful stop
	// (for iteration-based executors, maxDuration).
	duration() time.Duration
	open() bool
}

// SharedIterations runs Iterations iterations in total, shared among VUs
// (each VU takes the next one as soon as it is free), within MaxDuration.
type SharedIterations struct {
	VUs         int           // default 1
	Iterations  int           // total, default 1
	MaxDuration time.Duration // default 10m
}

// PerVUIterations runs Iterations iterations on each of VUs, within
// MaxDuration.
type PerVUIterations struct {
	VUs         int           // default 1
	Iterations  int           // per VU, default 1
	MaxDuration time.Duration // default 10m
}

// ConstantVUs runs VUs looping over iterations for Duration.
type ConstantVUs struct {
	VUs      int // default 1
	Duration time.Duration
}

// Stage is one leg of a ramp: the value moves linearly to Target over
// Duration.
type Stage struct {
	Duration time.Duration
	Target   int
}

// RampingVUs changes the number of looping VUs along Stages, starting from
// StartVUs. VUs removed by a ramp-down finish their iteration within
// GracefulRampDown (zero means 30s; NoGrace for none).
//
// Unlike k6's JavaScript options there is no "omitted" in Go, so StartVUs'
// zero value is 0 VUs (k6 defaults an omitted startVUs to 1).
type RampingVUs struct {
	StartVUs         int
	Stages           []Stage
	GracefulRampDown time.Duration
}

// ConstantArrivalRate starts Rate iterations per TimeUnit (default 1s),
// evenly spaced, for Duration, whatever the response times (open model). It
// starts with PreAllocatedVUs and adds VUs up to MaxVUs (default
// PreAllocatedVUs) when all are busy; beyond that iterations are dropped.
type ConstantArrivalRate struct {
	Rate            int
	TimeUnit        time.Duration
	Duration        time.Duration
	PreAllocatedVUs int
	MaxVUs          int
}

// RampingArrivalRate starts iterations at a rate that moves linearly from
// StartRate along Stages (targets are rates per TimeUnit), open model as
// ConstantArrivalRate.
type RampingArrivalRate struct {
	StartRate       int
	TimeUnit        time.Duration
	Stages          []Stage
	PreAllocatedVUs int
	MaxVUs          int
}

func orDefault(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

func durOr(v, d time.Duration) time.Duration {
	if v == 0 {
		return d
	}
	return v
}

// Kind implements Executor.
func (SharedIterations) Kind() string { return "shared-iterations" }

// Kind implements Executor.
func (PerVUIterations) Kind() string { return "per-vu-iterations" }

// Kind implements Executor.
func (ConstantVUs) Kind() string { return "constant-vus" }

// Kind implements Executor.
func (RampingVUs) Kind() string { return "ramping-vus" }

// Kind implements Executor.
func (ConstantArrivalRate) Kind() string { return "constant-arrival-rate" }

// Kind implements Executor.
func (RampingArrivalRate) Kind() string { return "ramping-arrival-rate" }

func (e SharedIterations) validate() error {
	var errs []error
	if e.VUs < 0 || e.Iterations < 0 || e.MaxDuration < 0 {
		errs = append(errs, errors.New("vus, iterations and maxDuration must not be negative"))
	}
	if orDefault(e.VUs, 1) > orDefault(e.Iterations, 1) {
		errs = append(errs, fmt.Errorf("vus (%d) must not exceed iterations (%d)", orDefault(e.VUs, 1), orDefault(e.Iterations, 1)))
	}
	return errors.Join(errs...)
}
func (e SharedIterations) maxVUs() int             { return orDefault(e.VUs, 1) }
func (e SharedIterations) duration() time.Duration { return durOr(e.MaxDuration, 10*time.Minute) }
func (SharedIterations) open() bool                { return false }

func (e PerVUIterations) validate() error {
	if e.VUs < 0 || e.Iterations < 0 || e.MaxDuration < 0 {
		return errors.New("vus, iterations and maxDuration must not be negative")
	}
	return nil
}
func (e PerVUIterations) maxVUs() int             { return orDefault(e.VUs, 1) }
func (e PerVUIterations) duration() time.Duration { return durOr(e.MaxDuration, 10*time.Minute) }
func (PerVUIterations) open() bool                { return false }

func (e ConstantVUs) validate() error {
	var errs []error
	if e.VUs < 0 {
		errs = append(errs, errors.New("vus must not be negative"))
	}
	if e.Duration <= 0 {
		errs = append(errs, errors.New("duration is required and must be positive"))
	}
	return errors.Join(errs...)
}
func (e ConstantVUs) maxVUs() int             { return orDefault(e.VUs, 1) }
func (e ConstantVUs) duration() time.Duration { return e.Duration }
func (ConstantVUs) open() bool                { return false }

func validateStages(stages []Stage, what string) []error {
	var errs []error
	if len(stages) == 0 {
		errs = append(errs, errors.New("at least one stage is required"))
	}
	var total time.Duration
	for i, s := range stages {
		if s.Duration < 0 {
			errs = append(errs, fmt.Errorf("stages[%d].duration must not be negative", i))
		}
		if s.Target < 0 {
			errs = append(errs, fmt.Errorf("stages[%d].target (%s) must not be negative", i, what))
		}
		total += s.Duration
	}
	if len(stages) > 0 && total <= 0 {
		errs = append(errs, errors.New("the stages' total duration must be positive"))
	}
	return errs
}

func (e RampingVUs) validate() error {
	errs := validateStages(e.Stages, "VUs")
	if e.StartVUs < 0 {
		errs = append(errs, errors.New("startVUs must not be negative"))
	}
	if e.maxVUs() == 0 {
		errs = append(errs, errors.New("startVUs or a stage target must be positive"))
	}
	return errors.Join(errs...)
}
func (e RampingVUs) maxVUs() int {
	m := e.StartVUs
	for _, s := range e.Stages {
		m = max(m, s.Target)
	}
	return m
}
func (e RampingVUs) duration() time.Duration { return stagesDuration(e.Stages) }
func (RampingVUs) open() bool                { return false }

func stagesDuration(stages []Stage) time.Duration {
	var d time.Duration
	for _, s := range stages {
		d += s.Duration
	}
	return d
}

func validatePool(pre, maxVUs int) []error {
	var errs []error
	if pre < 0 || maxVUs < 0 {
		errs = append(errs, errors.New("preAllocatedVUs and maxVUs must not be negative"))
	}
	if maxVUs != 0 && maxVUs < pre {
		errs = append(errs, fmt.Errorf("maxVUs (%d) must not be below preAllocatedVUs (%d)", maxVUs, pre))
	}
	if max(pre, maxVUs) == 0 {
		errs = append(errs, errors.New("preAllocatedVUs is required and must be positive"))
	}
	return errs
}

func (e ConstantArrivalRate) validate() error {
	errs := validatePool(e.PreAllocatedVUs, e.MaxVUs)
	if e.Rate <= 0 {
		errs = append(errs, errors.New("rate is required and must be positive"))
	}
	if e.TimeUnit < 0 {
		errs = append(errs, errors.New("timeUnit must be positive"))
	}
	if e.Duration <= 0 {
		errs = append(errs, errors.New("duration is required and must be positive"))
	}
	return errors.Join(errs...)
}
func (e ConstantArrivalRate) maxVUs() int             { return max(e.PreAllocatedVUs, e.MaxVUs) }
func (e ConstantArrivalRate) duration() time.Duration { return e.Duration }
func (ConstantArrivalRate) open() bool                { return true }

func (e RampingArrivalRate) validate() error {
	errs := append(validatePool(e.PreAllocatedVUs, e.MaxVUs), validateStages(e.Stages, "rate")...)
	if e.StartRate < 0 {
		errs = append(errs, errors.New("startRate must not be negative"))
	}
	if e.TimeUnit < 0 {
		errs = append(errs, errors.New("timeUnit must be positive"))
	}
	return errors.Join(errs...)
}
func (e RampingArrivalRate) maxVUs() int             { return max(e.PreAllocatedVUs, e.MaxVUs) }
func (e RampingArrivalRate) duration() time.Duration { return stagesDuration(e.Stages) }
func (RampingArrivalRate) open() bool                { return true }

// arrivals computes the intended start offsets of an arrival-rate
// executor's iterations: iteration i starts at the time t where the
// integral of the rate from 0 to t equals i (so the first starts at 0 and a
// constant rate r gives i/r), for every t before the end.
type arrivals struct {
	segs []segment
	seg  int
	base float64 // iterations before segs[seg]
	end  time.Duration
}

// segment is a stretch of linearly changing rate (iterations per ns).
type segment struct {
	start, dur     float64 // ns
	fromR, toR     float64 // iterations per ns
	iterationsUpTo float64 // cumulative at the segment's end
}

func newArrivals(startRate int, timeUnit time.Duration, stages []Stage) *arrivals {
	unit := float64(durOr(timeUnit, time.Second))
	a := &arrivals{}
	from := float64(startRate) / unit
	var t, cum float64
	for _, s := range stages {
		to := float64(s.Target) / unit
		d := float64(s.Duration)
		if d > 0 {
			cum += (from + to) / 2 * d
			a.segs = append(a.segs, segment{start: t, dur: d, fromR: from, toR: to, iterationsUpTo: cum})
		}
		t += d
		from = to
	}
	a.end = time.Duration(t)
	return a
}

// at returns the start offset of iteration i (i increasing across calls)
// and false when it falls at or after the end.
func (a *arrivals) at(i int64) (time.Duration, bool) {
	k := float64(i)
	for a.seg < len(a.segs) && k >= a.segs[a.seg].iterationsUpTo {
		a.base = a.segs[a.seg].iterationsUpTo
		a.seg++
	}
	if a.seg >= len(a.segs) {
		return 0, false
	}
	s := a.segs[a.seg]
	n := k - a.base // iterations into this segment
	var x float64
	if n > 0 {
		// Solve fromR*x + (toR-fromR)/(2*dur)*x^2 = n in the stable form.
		acc := (s.toR - s.fromR) / s.dur
		x = 2 * n / (s.fromR + math.Sqrt(math.Max(0, s.fromR*s.fromR+2*acc*n)))
	}
	off := time.Duration(s.start + x)
	if off >= a.end {
		return 0, false
	}
	return off, true
}

// vuSteps returns the times at which RampingVUs' VU count changes and the
// count from then on, starting with (0, StartVUs). Within a stage the count
// moves one VU at a time, linearly: going from a to b over d, the k-th
// change happens at k*d/|b-a|.
func (e RampingVUs) vuSteps() []vuStep {
	steps := []vuStep{{0, e.StartVUs}}
	from := e.StartVUs
	var t time.Duration
	for _, s := range e.Stages {
		diff := s.Target - from
		switch {
		case diff == 0:
		case s.Duration == 0:
			steps = append(steps, vuStep{t, s.Target})
		default:
			n := diff
			sign := 1
			if n < 0 {
				n, sign = -n, -1
			}
			for k := 1; k <= n; k++ {
				steps = append(steps, vuStep{t + time.Duration(int64(s.Duration)*int64(k)/int64(n)), from + sign*k})
			}
		}
		t += s.Duration
		from = s.Target
	}
	return steps
}

type vuStep struct {
	at  time.Duration
	vus int
}
