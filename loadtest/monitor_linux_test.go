package loadtest

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"
)

// monitorHeld waits until the keeper holds its P (or not), and reports
// GOMAXPROCS then.
func monitorHeld(t *testing.T, want bool) int {
	t.Helper()
	for range 2000 {
		monitorHold.Lock()
		held := monitorHold.held
		monitorHold.Unlock()
		if held == want {
			return runtime.GOMAXPROCS(0)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the keeper did not reach held=%v in 10 s", want)
	return 0
}

// TestHoldMonitor: the first hold adds one P, a second shares it, and the
// last release removes it. Releasing twice is harmless.
func TestHoldMonitor(t *testing.T) {
	before := monitorHeld(t, false)
	r1 := holdMonitor()
	if got := monitorHeld(t, true); got != before+1 {
		t.Fatalf("held: GOMAXPROCS = %d, want %d", got, before+1)
	}
	r2 := holdMonitor()
	r1()
	r1()
	if n := monitorHolds(); n != 1 {
		t.Fatalf("after one of two releases (twice): %d holds, want 1", n)
	}
	if got := monitorHeld(t, true); got != before+1 {
		t.Errorf("held twice: GOMAXPROCS = %d, want %d", got, before+1)
	}
	r2()
	if got := monitorHeld(t, false); got != before {
		t.Errorf("released: GOMAXPROCS = %d, want %d", got, before)
	}
}

// TestHeldMonitorLetsTheWorldStop: a garbage collection stops every P,
// including the one the keeper holds in a raw system call. The runtime
// normally interrupts the call with its preemption signal; with
// asynchronous preemption off it sends none, and the keeper's own timeout
// must end the call. Both run in a child process, since GODEBUG is read at
// start-up; a child whose world cannot stop hangs and is killed after a
// minute.
func TestHeldMonitorLetsTheWorldStop(t *testing.T) {
	if os.Getenv("LOADTEST_MONITOR_CHILD") == "1" {
		release := holdMonitor()
		defer release()
		monitorHeld(t, true)
		for range 3 {
			runtime.GC()
		}
		return
	}
	for _, godebug := range []string{"", "asyncpreemptoff=1"} {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHeldMonitorLetsTheWorldStop$", "-test.count=1")
		cmd.Env = append(os.Environ(), "LOADTEST_MONITOR_CHILD=1", "GODEBUG="+godebug)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("GODEBUG=%q: %v (killed: the garbage collection could not stop the keeper's P)\n%s", godebug, err, out)
		}
	}
}
