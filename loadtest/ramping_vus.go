package loadtest

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// rampVU is a ramping-vus slot: active while its index is below the
// current target.
type rampVU struct {
	vu     *VU
	active atomic.Bool
	epoch  atomic.Int64
	wake   chan struct{}
	cancel atomic.Pointer[context.CancelFunc]
}

func (e RampingVUs) run(s *scenarioRun) {
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

// Kind implements Executor.
func (RampingVUs) Kind() string { return "ramping-vus" }

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

func (RampingVUs) open() bool { return false }

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
