package loadtest

import (
	"os"
	"runtime"
	"sync"
	"syscall"
	"unsafe"
)

// The monitor hold keeps the Go runtime's monitor thread (sysmon) out of
// its deep sleep while a precise schedule runs.
//
// Whenever every P is idle, sysmon sleeps until woken, and the first system
// call after that (the timer arming, the request's write) wakes it; it then
// polls every 20 us until the process is idle again. An open-loop generator
// goes idle between every arrival and its response and again until the next
// arrival, so that is two extra thread wake-ups per request, each costing
// about 15 us of CPU on this project's virtual machine (`make
// bench-loadgen` measured 62 us per request at 5,000 req/s without the
// hold, 46-51 us with it). While held, one extra P runs the keeper, a goroutine blocked in a
// raw ppoll (no runtime system call hook, so its P stays running): never
// are all Ps idle, and sysmon keeps its normal cadence, which backs off to
// one wake-up per 10 ms. The call returns on every signal, which is how
// the runtime preempts the keeper (a garbage collection's stop-the-world,
// sysmon's 10 ms preemption), and on its own 10 ms timeout when
// asynchronous preemption is off; the keeper then passes a preemption
// point, so the runtime can stop its P whenever it needs to.
//
// The keeper goroutine is started at package initialisation, outside any
// testing/synctest bubble: a bubble never becomes idle while one of its
// goroutines is in a system call, so the keeper must not belong to one.
var monitorHold struct {
	sync.Mutex
	n    int           // holds taken and not released
	wake chan struct{} // capacity 1: a hold was taken
	held bool          // the keeper holds its P (for tests)
}

func init() {
	monitorHold.wake = make(chan struct{}, 1)
	go keeper()
}

// holdMonitor takes a hold; the returned function releases it. The keeper
// adds its P shortly after the first hold and removes it within 10 ms of
// the last release.
func holdMonitor() (release func()) {
	m := &monitorHold
	m.Lock()
	m.n++
	m.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			m.Lock()
			m.n--
			m.Unlock()
		})
	}
}

func monitorHolds() int {
	monitorHold.Lock()
	defer monitorHold.Unlock()
	return monitorHold.n
}

// keeper waits for a hold, then keeps one extra P running until every
// hold is released, and waits again.
func keeper() {
	m := &monitorHold
	for range m.wake {
		if monitorHolds() == 0 {
			continue
		}
		prev := runtime.GOMAXPROCS(0)
		runtime.GOMAXPROCS(prev + 1)
		m.Lock()
		m.held = true
		m.Unlock()
		for monitorHolds() > 0 {
			ts := syscall.Timespec{Nsec: 10_000_000} // ppoll writes back what is left
			syscall.RawSyscall6(syscall.SYS_PPOLL, 0, 0, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
			preemptionPoint()
		}
		if runtime.GOMAXPROCS(0) == prev+1 {
			restoreGOMAXPROCS(prev)
		}
		m.Lock()
		m.held = false
		m.Unlock()
	}
}

// preemptionPoint is a call the runtime can preempt the keeper at: a
// pending preemption request makes the function's stack check fail.
//
//go:noinline
func preemptionPoint() {}

// restoreGOMAXPROCS puts back n, as the runtime's default when that is
// what it was, so that the runtime goes on following CPU limit changes.
func restoreGOMAXPROCS(n int) {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.SetDefaultGOMAXPROCS()
		if runtime.GOMAXPROCS(0) == n {
			return
		}
	}
	runtime.GOMAXPROCS(n)
}
