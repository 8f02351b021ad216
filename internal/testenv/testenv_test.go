package testenv

import (
	"testing"
	"time"
)

// TestStartLogPerProcess starts three processes under one name in one
// directory: they share the log file, and each one's Log is its own part.
func TestStartLogPerProcess(t *testing.T) {
	dir := t.TempDir()
	var procs []*Process
	for _, out := range []string{"first", "", "third"} {
		p := Start(t, dir, "p", "/bin/sh", []string{"-c", "test -z \"$OUT\" || echo \"$OUT\""}, []string{"OUT=" + out})
		if err := p.Wait(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	for i, want := range []string{"first\n", "", "third\n"} {
		if got := procs[i].Log(); got != want {
			t.Errorf("process %d: Log() = %q, want %q", i, got, want)
		}
	}
}
