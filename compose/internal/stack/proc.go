package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Process is one started program as recorded in the state file.
type Process struct {
	Name string   `json:"name"`
	PID  int      `json:"pid"`
	Args []string `json:"args"`
	// Identity distinguishes this process from a later one reusing its PID:
	// on Linux its start time in clock ticks since boot (/proc/PID/stat).
	Identity string `json:"identity"`
	Log      string `json:"log"`
}

// errNoProcess means the PID names no live process.
var errNoProcess = errors.New("no such process")

// identity returns a token that is the same for the life of process pid and
// different for any later process given the same PID. A zombie (exited but
// not reaped, as happens under an init that does not reap) counts as gone.
func identity(pid int) (string, error) {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// Fields after the command name, which is in parentheses and may
		// itself contain spaces or parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			return "", fmt.Errorf("parse /proc/%d/stat", pid)
		}
		f := strings.Fields(string(b[i+1:]))
		// f[0] is field 3 (state); starttime is field 22.
		if len(f) < 20 {
			return "", fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f))
		}
		if f[0] == "Z" || f[0] == "X" {
			return "", errNoProcess
		}
		return "linux-starttime:" + f[19], nil
	} else if _, serr := os.Stat("/proc/self/stat"); serr == nil {
		// procfs works, so the process is gone.
		return "", errNoProcess
	}
	// No procfs (macOS, BSD): ps reports the start time.
	out, err := exec.Command("ps", "-o", "lstart=", "-o", "state=", "-p", fmt.Sprint(pid)).Output()
	if err != nil {
		return "", errNoProcess
	}
	s := strings.TrimSpace(string(out))
	if s == "" || strings.HasSuffix(s, "Z") {
		return "", errNoProcess
	}
	// Drop the state column, keep the start time.
	if i := strings.LastIndexByte(s, ' '); i > 0 {
		s = strings.TrimSpace(s[:i])
	}
	return "ps-lstart:" + s, nil
}

// Alive reports whether p is still the process that was started: the PID is
// live and its identity matches the recorded one.
func (p Process) Alive() bool {
	id, err := identity(p.PID)
	return err == nil && id == p.Identity
}

// start launches name as a daemon: in its own session (so a Ctrl-C on make
// does not reach it), stdin from /dev/null, stdout and stderr appended to
// logPath. The caller records the returned Process.
func start(name, dir, logPath string, env, args []string) (Process, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return Process{}, err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return Process{}, fmt.Errorf("open %s log: %w", name, err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "\n--- %s started by glasshouse native stack at %s: %s\n", name, time.Now().Format(time.RFC3339), strings.Join(args, " "))

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return Process{}, fmt.Errorf("start %s: %w", name, err)
	}
	pid := cmd.Process.Pid
	id, err := identity(pid)
	if err != nil {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		return Process{}, fmt.Errorf("start %s: process %d exited at once (see %s)", name, pid, logPath)
	}
	// Not waited for: the process outlives this program. Release frees the
	// handle; the exit status is collected by init.
	_ = cmd.Process.Release()
	return Process{Name: name, PID: pid, Args: args, Identity: id, Log: logPath}, nil
}

// stopResult says what stop did.
type stopResult int

const (
	stopped     stopResult = iota // signalled and gone
	alreadyGone                   // not running any more
	notOurs                       // the PID now belongs to another process: left alone
	killed                        // did not exit on SIGTERM within the grace period
)

// stop sends SIGTERM to p if it is still the recorded process, waits up to
// grace for it to exit, then sends SIGKILL.
func stop(ctx context.Context, p Process, grace time.Duration) (stopResult, error) {
	id, err := identity(p.PID)
	if errors.Is(err, errNoProcess) {
		return alreadyGone, nil
	}
	if err != nil {
		return notOurs, err
	}
	if id != p.Identity {
		return notOurs, nil
	}
	if err := syscall.Kill(p.PID, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return alreadyGone, nil
		}
		return notOurs, fmt.Errorf("signal %s (pid %d): %w", p.Name, p.PID, err)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !p.Alive() {
			return stopped, nil
		}
		select {
		case <-ctx.Done():
			return notOurs, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	if p.Alive() {
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
		for range 40 {
			if !p.Alive() {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		return killed, nil
	}
	return stopped, nil
}
