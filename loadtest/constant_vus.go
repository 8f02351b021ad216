package loadtest

import (
	"errors"
	"time"
)

func (e ConstantVUs) run(s *scenarioRun) {
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

// ConstantVUs runs VUs looping over iterations for Duration.
type ConstantVUs struct {
	VUs      int // default 1
	Duration time.Duration
}

// Kind implements Executor.
func (ConstantVUs) Kind() string { return "constant-vus" }

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

func (e ConstantVUs) maxVUs() int { return orDefault(e.VUs, 1) }

func (e ConstantVUs) duration() time.Duration { return e.Duration }

func (ConstantVUs) open() bool { return false }
