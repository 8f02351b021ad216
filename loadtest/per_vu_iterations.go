package loadtest

import (
	"errors"
	"time"
)

func (e PerVUIterations) run(s *scenarioRun) {
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

// PerVUIterations runs Iterations iterations on each of VUs, within
// MaxDuration.
type PerVUIterations struct {
	VUs         int           // default 1
	Iterations  int           // per VU, default 1
	MaxDuration time.Duration // default 10m
}

// Kind implements Executor.
func (PerVUIterations) Kind() string { return "per-vu-iterations" }

func (e PerVUIterations) validate() error {
	if e.VUs < 0 || e.Iterations < 0 || e.MaxDuration < 0 {
		return errors.New("vus, iterations and maxDuration must not be negative")
	}
	return nil
}

func (e PerVUIterations) maxVUs() int { return orDefault(e.VUs, 1) }

func (e PerVUIterations) duration() time.Duration { return durOr(e.MaxDuration, 10*time.Minute) }

func (PerVUIterations) open() bool { return false }
