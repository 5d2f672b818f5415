package labpeers

import "github.com/portlease/portlease/internal/syncbuf"

// Output collects a process's output, for tests that read it while the
// process runs; it is safe for concurrent use. The zero value is empty.
type Output = syncbuf.Buffer
