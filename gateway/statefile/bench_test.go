package statefile

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// BenchmarkCommit commits batches of renewals, each durable (one write, one
// fsync) on the test's temporary directory.
func BenchmarkCommit(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			f, _, err := Open(statePath(b), t0, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			leases := testLeases(1, n)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				for j := range leases {
					leases[j].Expires = t0.Add(time.Duration(i) * time.Second)
				}
				if err := f.Commit(leases, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/lease")
		})
	}
}

// BenchmarkOpen opens a state file of 100,000 leases, which it reads,
// replays and rewrites (with its fsyncs), and reports the heap the File
// keeps per live lease.
func BenchmarkOpen(b *testing.B) {
	const n = 100_000
	f := fileOf(b, n)
	path := f.path
	f.Close()
	var before, after runtime.MemStats
	var kept *File
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		f, ld, err := Open(path, t0, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(ld.Leases) != n {
			b.Fatalf("Open loaded %d leases; want %d", len(ld.Leases), n)
		}
		ld = Loaded{}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if kept != nil {
			kept.Close()
		}
		kept = f
	}
	kept.Close()
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/n, "heap-B/lease")
}

// fileOf returns an open state file of n leases (n <= 120,000).
func fileOf(b *testing.B, n int) *File {
	f, _, err := Open(statePath(b), t0, nil)
	if err != nil {
		b.Fatal(err)
	}
	leases := testLeases(1, n)
	for i := range leases { // distinct keys
		leases[i].ExternalPort = uint16(i % 60000)
		if i >= 60000 {
			leases[i].Protocol ^= 6 ^ 17 // the other of TCP and UDP
		}
	}
	if err := f.Commit(leases, nil); err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkCompact compacts a file of 100,000 live leases (one stale
// record each) and reports how long Commit is held up: the part under the
// lock at the end.
func BenchmarkCompact(b *testing.B) {
	const n = 100_000
	f := fileOf(b, n)
	defer f.Close()
	var locked time.Duration
	for b.Loop() {
		f.mu.Lock()
		c, ok := f.startCompaction(true)
		f.mu.Unlock()
		if !ok {
			b.Fatal("compaction did not start")
		}
		d, err := f.compact(c, tempName(f.path))
		if err != nil {
			b.Fatal(err)
		}
		locked += d
	}
	b.ReportMetric(float64(locked.Nanoseconds())/float64(b.N), "locked-ns/op")
}
