package loadtest

import (
	"errors"
	"time"
)

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

// Kind implements Executor.
func (ConstantArrivalRate) Kind() string { return "constant-arrival-rate" }

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

func (e ConstantArrivalRate) maxVUs() int { return max(e.PreAllocatedVUs, e.MaxVUs) }

func (e ConstantArrivalRate) duration() time.Duration { return e.Duration }

func (ConstantArrivalRate) open() bool { return true }

func (e ConstantArrivalRate) run(s *scenarioRun) {
	s.runArrivalRate(newArrivals(e.Rate, e.TimeUnit, []Stage{{Duration: e.Duration, Target: e.Rate}}), e.PreAllocatedVUs, e.maxVUs())
}
