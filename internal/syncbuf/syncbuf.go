// Package syncbuf holds Buffer, an in-memory sink that several goroutines
// may write to while a test reads it: a server's log output, typically.
// It is for tests. telemetry and examples/orders keep their own copies,
// so that each can be copied out of this repository with its tests.
//
// Its imports are limited to the standard library (TestImports).
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer whose Write and String are safe for
// concurrent use. The zero value is an empty buffer ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p; it never fails.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
