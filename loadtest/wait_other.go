//go:build !linux

package loadtest

func newKernelTimer(*runner) kernelTimer { return noKernelTimer{} }

// holdMonitor does nothing here: the monitor hold (monitor_linux.go) is
// measured on Linux only.
func holdMonitor() func() { return func() {} }

func monitorHolds() int { return 0 }
