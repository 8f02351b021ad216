package loadtest

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

func (e SharedIterations) run(s *scenarioRun) {
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

// SharedIterations runs Iterations iterations in total, shared among VUs
// (each VU takes the next one as soon as it is free), within MaxDuration.
type SharedIterations struct {
	VUs         int           // default 1
	Iterations  int           // total, default 1
	MaxDuration time.Duration // default 10m
}

// Kind implements Executor.
func (SharedIterations) Kind() string { return "shared-iterations" }

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

func (e SharedIterations) maxVUs() int { return orDefault(e.VUs, 1) }

func (e SharedIterations) duration() time.Duration { return durOr(e.MaxDuration, 10*time.Minute) }

func (SharedIterations) open() bool { return false }
