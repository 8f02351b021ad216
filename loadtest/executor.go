package loadtest

import (
	"errors"
	"fmt"
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
	// run starts the scenario's VUs and schedules its iterations until
	// the scenario stops; the caller waits for the VUs.
	run(s *scenarioRun)
}

// Stage is one leg of a ramp: the value moves linearly to Target over
// Duration.
type Stage struct {
	Duration time.Duration
	Target   int
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

func stagesDuration(stages []Stage) time.Duration {
	var d time.Duration
	for _, s := range stages {
		d += s.Duration
	}
	return d
}
