package telemetry

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// logFlushInterval bounds how long a buffered log record waits for its
// write: the most a crash can lose with LogBufferBytes set.
const logFlushInterval = 100 * time.Millisecond

// flushWriter buffers writes to an underlying writer and flushes them when
// the buffer fills, at least every interval, and on Close. bufio.Writer
// alone would hold a quiet service's last records indefinitely; this adds
// the periodic flush and is safe for concurrent use.
type flushWriter struct {
	mu     sync.Mutex
	bw     *bufio.Writer
	closed bool // after Close, every Write goes straight through
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// newFlushWriter starts the flushing goroutine; Close stops it.
func newFlushWriter(w io.Writer, size int, interval time.Duration) *flushWriter {
	fw := &flushWriter{bw: bufio.NewWriterSize(w, size), stop: make(chan struct{}), done: make(chan struct{})}
	go fw.loop(interval)
	return fw
}

func (fw *flushWriter) loop(interval time.Duration) {
	defer close(fw.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-fw.stop:
			return
		case <-t.C:
			fw.mu.Lock()
			if fw.bw.Buffered() > 0 {
				_ = fw.bw.Flush() // a failed write is retried with the next one
			}
			fw.mu.Unlock()
		}
	}
}

// Write buffers p; it writes through when p does not fit.
func (fw *flushWriter) Write(p []byte) (int, error) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	n, err := fw.bw.Write(p)
	if err == nil && fw.closed {
		err = fw.bw.Flush()
	}
	return n, err
}

// Close stops the periodic flush and writes what is buffered. Writes after
// Close go straight through, so a record logged late in shutdown is not
// lost.
func (fw *flushWriter) Close() error {
	fw.once.Do(func() { close(fw.stop) })
	<-fw.done
	fw.mu.Lock()
	defer fw.mu.Unlock()
	fw.closed = true
	return fw.bw.Flush()
}
