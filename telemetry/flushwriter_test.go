package telemetry

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// countingWriter records each Write it receives.
type countingWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return c.buf.Write(p)
}

func (c *countingWriter) state() (string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String(), c.writes
}

// TestFlushWriter: records wait in the buffer for at most the interval,
// many records become one write, and Close writes the rest and lets later
// writes through.
func TestFlushWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out countingWriter
		fw := newFlushWriter(&out, 4096, 100*time.Millisecond)
		for range 10 {
			fw.Write([]byte("record\n"))
		}
		if got, _ := out.state(); got != "" {
			t.Fatalf("before the interval the sink has %q, want nothing", got)
		}
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		got, writes := out.state()
		if strings.Count(got, "record\n") != 10 || writes != 1 {
			t.Fatalf("after one interval: %d records in %d writes, want 10 in 1", strings.Count(got, "record\n"), writes)
		}
		fw.Write([]byte("last\n"))
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
		if got, _ := out.state(); !strings.HasSuffix(got, "last\n") {
			t.Fatalf("Close did not flush: %q", got)
		}
		fw.Write([]byte("after close\n"))
		if got, _ := out.state(); !strings.HasSuffix(got, "after close\n") {
			t.Fatalf("a write after Close waited in the buffer: %q", got)
		}
	})
}

// TestFlushWriterFull: a record that does not fit is written at once.
func TestFlushWriterFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out countingWriter
		fw := newFlushWriter(&out, 16, time.Hour)
		defer fw.Close()
		fw.Write([]byte("0123456789abcdef-more-than-sixteen\n"))
		if got, _ := out.state(); got == "" {
			t.Fatal("a record larger than the buffer was held back")
		}
	})
}

// TestLogBufferLosesNothingOnShutdown: with LOG_BUFFER set, every record
// (ordinary and access records) is in the file after a graceful Shutdown.
func TestLogBufferLosesNothingOnShutdown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.log")
	tel, err := New(t.Context(), Config{LogFormat: "json", LogWriter: &bytes.Buffer{}, LogFile: path,
		LogBufferBytes: 64 << 10, Getenv: envMap()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		tel.Logger.Info("record", "i", i)
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(logLines(t, string(b))); got != 500 {
		t.Errorf("log file has %d records after Shutdown, want 500", got)
	}
}
