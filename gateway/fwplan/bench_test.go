package fwplan

import (
	"runtime"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/internal/benchmaps"
)

// BenchmarkStateAdopt plans and commits 100,000 mappings, 1,000 a batch,
// into an empty State, as nftfw's BenchmarkIndexAdopt did with the index
// nftfw kept before it moved onto the State. It reports the live heap the State takes, and the time and allocations
// of planning, per mapping.
func BenchmarkStateAdopt(b *testing.B) {
	const n, batch = 100000, 1000
	add := make([]gateway.Mapping, n)
	for i := range add {
		add[i] = benchmaps.Mapping(i)
	}
	var perMapping float64
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		b.StartTimer()

		s := New(Config{TimeoutGrace: 30 * time.Second}, time.Now())
		for i := 0; i < n; i += batch {
			if _, err := s.Plan(time.Now(), add[i:i+batch], nil); err != nil {
				b.Fatal(err)
			}
			s.Commit()
		}

		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		perMapping = float64(int64(ms.HeapAlloc)-int64(before)) / n
		if len(s.in) != n || len(s.out) != n {
			b.Fatalf("State holds %d mappings and %d endpoints; want %d", len(s.in), len(s.out), n)
		}
		runtime.KeepAlive(s)
		b.StartTimer()
	}
	b.ReportMetric(perMapping, "B/mapping")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/mapping")
}
