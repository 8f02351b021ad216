package loadtest

import (
	"errors"
	"time"
)

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

// Kind implements Executor.
func (RampingArrivalRate) Kind() string { return "ramping-arrival-rate" }

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

func (e RampingArrivalRate) maxVUs() int { return max(e.PreAllocatedVUs, e.MaxVUs) }

func (e RampingArrivalRate) duration() time.Duration { return stagesDuration(e.Stages) }

func (RampingArrivalRate) open() bool { return true }

func (e RampingArrivalRate) run(s *scenarioRun) {
	s.runArrivalRate(newArrivals(e.StartRate, e.TimeUnit, e.Stages), e.PreAllocatedVUs, e.maxVUs())
}
