//go:build !linux

package loadtest

func newKernelTimer(*runner) kernelTimer { return noKernelTimer{} }
