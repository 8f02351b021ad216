package loadtest

import (
	"errors"
	"fmt"
	"math"
	"time"
)

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
	// dropDue ends a dispatcher that fell behind when the scenario stops:
	// the iterations from i on that were already due are neither run nor
	// forgotten. They count as scheduled and dropped, so the accounting
	// (scheduled = started + dropped) still holds; those not yet due (an
	// abort mid-run) were never scheduled.
	dropDue := func(i int64) {
		for off, ok := a.at(i); ok && base+int64(off) <= r.nanos(); off, ok = a.at(i) {
			s.scheduled.Add(1)
			s.droppedIters.Add(1)
			r.reg.recordSink(s.dropSink, 1, time.Now())
			i++
		}
	}
	w := newWaiter(r)
	defer w.close()
	for i := int64(0); ; i++ {
		off, ok := a.at(i)
		if !ok {
			return
		}
		intended := base + int64(off)
		if d := intended - r.nanos(); d > 0 {
			if !w.until(intended, s.stopCh, s.ctx.Done()) {
				// Stopped while waiting. On a busy machine the stop and
				// this iteration's start can both have passed by the time
				// the dispatcher runs again.
				dropDue(i)
				return
			}
		} else if s.stopping() {
			dropDue(i)
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
