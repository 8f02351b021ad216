package telemetry

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReopenLogFile does what logrotate does: rename LOG_FILE away, then
// signal the process. After ReopenLogFile the next record goes to a new
// file at the configured path, and the renamed file keeps the earlier
// records only.
func TestReopenLogFile(t *testing.T) {
	for _, buffered := range []int{0, 4096} {
		dir := t.TempDir()
		path := filepath.Join(dir, "api.log")
		e := newTestEnv(t, nil, func(c *Config) { c.LogFile = path; c.LogBufferBytes = buffered })
		e.tel.Logger.Info("before rotation")
		rotated := path + ".1"
		if err := os.Rename(path, rotated); err != nil {
			t.Fatal(err)
		}
		if err := e.tel.ReopenLogFile(); err != nil {
			t.Fatalf("ReopenLogFile: %v", err)
		}
		e.tel.Logger.Info("after rotation")
		if err := e.tel.Shutdown(t.Context()); err != nil { // flushes a buffer
			t.Fatal(err)
		}
		old, _ := os.ReadFile(rotated)
		cur, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("buffer %d: no new log file: %v", buffered, err)
		}
		if buffered == 0 && (!strings.Contains(string(old), "before rotation") || strings.Contains(string(old), "after rotation")) {
			t.Errorf("rotated file:\n%s\nwant only the record before rotation", old)
		}
		if !strings.Contains(string(cur), "after rotation") {
			t.Errorf("buffer %d: new file:\n%s\nwant the record after rotation", buffered, cur)
		}
	}
	// Without a log file it is a no-op.
	if err := newTestEnv(t, nil).tel.ReopenLogFile(); err != nil {
		t.Errorf("ReopenLogFile without LogFile: %v", err)
	}
}
