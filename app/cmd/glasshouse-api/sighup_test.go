package main

import (
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGHUPReopensLogFile builds the real binary with LOG_FILE set, does
// what logrotate does (rename the file, send SIGHUP), and checks that the
// process is still serving and writes its next records to a new file at
// LOG_FILE, while the renamed file keeps the earlier ones.
func TestSIGHUPReopensLogFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if runtime.GOOS == "windows" {
		t.Skip("no SIGHUP on Windows")
	}
	dir := t.TempDir()
	logFile := filepath.Join(dir, "api.log")
	addr := freeAddr(t)
	base := "http://" + addr
	p := startBinary(t, "", "ADDR="+addr, "ADMIN_ADDR="+freeAddr(t), "DATA_DIR="+t.TempDir(), "LOG_FILE="+logFile)
	get := func(path string) int {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// waitFor polls until cond holds; the 30 s bound only guards a hang.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			select {
			case <-p.exited:
				t.Fatalf("process exited while waiting for %s: %v\n%s", what, p.err, p.out)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\n%s", what, p.out)
			}
		}
	}
	fileHas := func(path, s string) bool {
		b, _ := os.ReadFile(path)
		return strings.Contains(string(b), s)
	}
	waitFor("ready", func() bool { return get("/health/ready") == 200 })
	get("/health?before=1")
	waitFor("the first access record", func() bool { return fileHas(logFile, `"path":"/health"`) })

	rotated := logFile + ".1"
	if err := os.Rename(logFile, rotated); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor("the reopen record", func() bool { return fileHas(logFile, "log file reopened") })
	if got := get("/health/live"); got != 200 {
		t.Fatalf("after SIGHUP: /health/live %d, want 200", got)
	}
	waitFor("the next access record in the new file", func() bool { return fileHas(logFile, `"path":"/health/live"`) })
	if fileHas(rotated, `"path":"/health/live"`) || fileHas(rotated, "log file reopened") {
		t.Errorf("records after SIGHUP went to the rotated file too")
	}
	if !fileHas(rotated, `"path":"/health"`) {
		t.Errorf("rotated file lost the records before SIGHUP")
	}
}
