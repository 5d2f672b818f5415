package labpeers

import (
	"bytes"
	"sync"
)

// Output collects a process's output, for tests that read it while the
// process runs; it is safe for concurrent use. The zero value is empty.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// WriteString appends s.
func (o *Output) WriteString(s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.b.WriteString(s)
}

// Len returns the number of bytes written so far.
func (o *Output) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Len()
}

// String returns everything written.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// Since returns what was written after the first off bytes.
func (o *Output) Since(off int) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(o.b.Bytes()[off:])
}
