package loadtest

import (
	"os"

	"golang.org/x/sys/unix"
)

// timerfd is a Linux timer file registered with the Go runtime's poller
// (os.NewFile on a non-blocking descriptor). Nothing reads it: its expiry
// (hrtimer precision) only makes the poller's epoll wait return, after
// which the scheduler runs the Go timers that are due, on time. The
// descriptor is a few hundred bytes of kernel memory and one syscall per
// wait.
type timerfd struct {
	f      *os.File
	fd     int
	offset int64 // CLOCK_MONOTONIC minus runner nanos
}

// wakeMargin arms the kernel timer just after the Go timer's instant:
// an expiry before it would wake the poller too early, and it would then
// sleep another whole millisecond.
const wakeMargin = 5_000 // ns

func newKernelTimer(r *runner) kernelTimer {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return noKernelTimer{}
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		unix.Close(fd)
		return noKernelTimer{}
	}
	return &timerfd{f: os.NewFile(uintptr(fd), "loadtest-timerfd"), fd: fd, offset: ts.Nano() - r.nanos()}
}

func (t *timerfd) arm(at int64) {
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(t.offset + at + wakeMargin)}
	unix.TimerfdSettime(t.fd, unix.TFD_TIMER_ABSTIME, &spec, nil) // on error, Go's timer alone
}

func (t *timerfd) close() { t.f.Close() }
