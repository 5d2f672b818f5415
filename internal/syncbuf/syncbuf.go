// Package syncbuf is a buffer that one goroutine writes while others read
// it: the output of a process, or a logger's, read by a test as it runs.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer collects a process's output, for tests that read it while the
// process runs; it is safe for concurrent use. The zero value is empty.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Buffer) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// WriteString appends s.
func (o *Buffer) WriteString(s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.b.WriteString(s)
}

// Len returns the number of bytes written so far.
func (o *Buffer) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Len()
}

// String returns everything written.
func (o *Buffer) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// Since returns what was written after the first off bytes.
func (o *Buffer) Since(off int) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(o.b.Bytes()[off:])
}
