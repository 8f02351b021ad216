package loadtest

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestWaiterWaitsUntilItsTime: until never returns before its instant,
// on the real clock (with the kernel timer armed) and on synctest's fake
// clock, where it returns exactly at it; a closed stop channel ends the
// wait at once with false.
func TestWaiterWaitsUntilItsTime(t *testing.T) {
	check := func(t *testing.T, exact bool) {
		r := &runner{t0: time.Now()}
		w := newWaiter(r)
		defer w.close()
		for _, d := range []time.Duration{0, 300 * time.Microsecond, 1700 * time.Microsecond, 5 * time.Millisecond} {
			at := r.nanos() + int64(d)
			if !w.until(at, nil, nil) {
				t.Fatalf("until(+%v) = false without a stop", d)
			}
			if now := r.nanos(); now < at || (exact && now != at) {
				t.Errorf("until(+%v) returned at %v, %v from its instant", d, time.Duration(now), time.Duration(now-at))
			}
		}
		stop := make(chan struct{})
		close(stop)
		if w.until(r.nanos()+int64(time.Hour), stop, nil) {
			t.Error("until with a closed stop channel = true, want false")
		}
	}
	t.Run("real clock", func(t *testing.T) { check(t, false) })
	t.Run("synctest", func(t *testing.T) { synctest.Test(t, func(t *testing.T) { check(t, true) }) })
}

// TestCoarseScheduleArmsNoKernelTimer: a coarse schedule neither arms a
// kernel timer nor holds the runtime's monitor (which adds a P).
func TestCoarseScheduleArmsNoKernelTimer(t *testing.T) {
	holds := monitorHolds()
	r := &runner{t0: time.Now(), test: Test{Options: Options{CoarseSchedule: true}}}
	w := newWaiter(r)
	defer w.close()
	if _, ok := w.wake.(noKernelTimer); !ok {
		t.Errorf("CoarseSchedule: waiter wakes with %T, want Go's timers alone", w.wake)
	}
	if got := monitorHolds(); got != holds {
		t.Errorf("CoarseSchedule: monitor holds %d -> %d, want none taken", holds, got)
	}
}
