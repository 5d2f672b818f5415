package fwplan

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
)

// benchMapping returns the i-th of 100,000 mappings, those of nftfw's
// BenchmarkReconcile100k (indexMapping): TCP then UDP, external port 1024+i%50000, a
// thousand internal ports on each of a hundred addresses, with a one-hour
// lifetime.
func benchMapping(i int) gateway.Mapping {
	p := gateway.TCP
	if i >= 50000 {
		p = gateway.UDP
	}
	return gateway.Mapping{
		Protocol:     p,
		ExternalPort: uint16(1024 + i%50000),
		Internal:     netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i / 1000 >> 8), byte(i / 1000)}), uint16(20000+i%1000)),
		Lifetime:     time.Hour,
	}
}

// BenchmarkStateAdopt plans and commits 100,000 mappings, 1,000 a batch,
// into an empty State, as nftfw's BenchmarkIndexAdopt did with the index
// nftfw kept before it moved onto the State. It reports the live heap the State takes, and the time and allocations
// of planning, per mapping.
func BenchmarkStateAdopt(b *testing.B) {
	const n, batch = 100000, 1000
	add := make([]gateway.Mapping, n)
	for i := range add {
		add[i] = benchMapping(i)
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
