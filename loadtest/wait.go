package loadtest

import "time"

// waiter waits for runner times on a Go timer, with a kernel timer (see
// newKernelTimer) armed for the same instant so that an idle process wakes
// on time. Go's timers alone wake an idle process up to a millisecond late:
// the runtime's netpoller sleeps in whole milliseconds, and at 200 to 1,000
// it/s that lateness dominated schedule_lag and so http_req_latency. A
// precise waiter also holds the runtime's monitor awake (holdMonitor), so
// that waking on time does not also wake it. Only one goroutine uses a
// waiter; close releases the kernel timer and the hold.
type waiter struct {
	r       *runner
	timer   *time.Timer
	wake    kernelTimer
	release func()
}

// kernelTimer makes the Go runtime's poller return at a given runner time.
type kernelTimer interface {
	arm(at int64)
	close()
}

func newWaiter(r *runner) *waiter {
	t := time.NewTimer(time.Hour)
	t.Stop()
	w := &waiter{r: r, timer: t, wake: noKernelTimer{}, release: func() {}}
	if !r.test.Options.CoarseSchedule {
		w.wake = newKernelTimer(r)
		w.release = holdMonitor()
	}
	return w
}

// until waits until runner time at and reports true, or false as soon as
// stop or done is closed.
func (w *waiter) until(at int64, stop, done <-chan struct{}) bool {
	d := time.Duration(at - w.r.nanos())
	if d <= 0 {
		return true
	}
	w.wake.arm(at)
	w.timer.Reset(d)
	select {
	case <-w.timer.C:
		return true
	case <-stop:
	case <-done:
	}
	w.timer.Stop()
	return false
}

func (w *waiter) close() {
	w.timer.Stop()
	w.wake.close()
	w.release()
}

// noKernelTimer is the fallback where the engine has none: the schedule
// is then as precise as Go's timers.
type noKernelTimer struct{}

func (noKernelTimer) arm(int64) {}
func (noKernelTimer) close()    {}
