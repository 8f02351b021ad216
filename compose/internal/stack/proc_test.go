package stack

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sleeper(t *testing.T) Process {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	p, err := start("sleeper", t.TempDir(), filepath.Join(t.TempDir(), "sleeper.log"), nil, []string{sleep, "30"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = stop(t.Context(), p, time.Second) })
	return p
}

func TestStartRecordsIdentityAndStopEndsTheProcess(t *testing.T) {
	p := sleeper(t)
	if !p.Alive() {
		t.Fatalf("started process %+v is not alive", p)
	}
	b, err := os.ReadFile(p.Log)
	if err != nil || !strings.Contains(string(b), "sleeper started by glasshouse native stack") {
		t.Errorf("log %s = %q, %v; want a start marker", p.Log, b, err)
	}
	res, err := stop(t.Context(), p, 5*time.Second)
	if err != nil || res != stopped {
		t.Fatalf("stop = %v, %v; want stopped", res, err)
	}
	if p.Alive() {
		t.Error("process still alive after stop")
	}
	// Stopping again finds nothing to do.
	if res, err := stop(t.Context(), p, time.Second); err != nil || res != alreadyGone {
		t.Errorf("second stop = %v, %v; want alreadyGone", res, err)
	}
}

func TestStopLeavesAReusedPIDAlone(t *testing.T) {
	p := sleeper(t)
	// The same PID with another start time stands for a process that took
	// over a recycled PID: it must not be signalled.
	impostor := p
	impostor.Identity = "linux-starttime:1"
	res, err := stop(t.Context(), impostor, time.Second)
	if err != nil || res != notOurs {
		t.Fatalf("stop = %v, %v; want notOurs", res, err)
	}
	if !p.Alive() {
		t.Fatal("the real process was killed through a stale record")
	}
}

func TestStopEscalatesToSIGKILL(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	marker := filepath.Join(t.TempDir(), "trapped")
	p, err := start("stubborn", t.TempDir(), filepath.Join(t.TempDir(), "s.log"), nil,
		[]string{sh, "-c", `trap "" TERM; : > "$0"; while :; do sleep 0.05; done`, marker})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the shell ignores SIGTERM.
	for i := 0; ; i++ {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if i == 200 {
			t.Fatal("the shell never installed its trap")
		}
		time.Sleep(50 * time.Millisecond)
	}
	res, err := stop(t.Context(), p, 300*time.Millisecond)
	if err != nil || res != killed {
		t.Fatalf("stop = %v, %v; want killed", res, err)
	}
	if p.Alive() {
		t.Error("process survived SIGKILL")
	}
}

func TestStartReportsAProgramThatCannotRun(t *testing.T) {
	_, err := start("missing", t.TempDir(), filepath.Join(t.TempDir(), "m.log"), nil, []string{"/nonexistent/binary"})
	if err == nil || !strings.Contains(err.Error(), "start missing") {
		t.Fatalf("err = %v, want a start error", err)
	}
}

func TestStateRoundTripAndRunning(t *testing.T) {
	p := sleeper(t)
	dead := Process{Name: "gone", PID: p.PID, Identity: "linux-starttime:1"}
	path := filepath.Join(t.TempDir(), "stack.json")
	st := &State{Processes: []Process{p, dead}, URLs: []NamedURL{{"X", "http://127.0.0.1:1/"}}}
	if err := st.save(path); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(path)
	if err != nil {
		t.Fatal(err)
	}
	live := got.running()
	if len(live) != 1 || live[0].Name != "sleeper" {
		t.Errorf("running() = %+v, want only the sleeper", live)
	}
	if s, err := loadState(filepath.Join(t.TempDir(), "none.json")); s != nil || err != nil {
		t.Errorf("missing state = %v, %v; want nil, nil", s, err)
	}
	if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadState(path); err == nil {
		t.Error("corrupt state file: want an error")
	}
}
