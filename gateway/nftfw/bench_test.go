package nftfw

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/internal/benchmaps"
)

// benchMapping returns the i-th mapping of a benchmark: UDP, external port
// 10000+i, internal 198.51.100.10:20000+i, with a one-hour lifetime.
func benchMapping(i int) gateway.Mapping {
	return gateway.Mapping{
		Protocol:     gateway.UDP,
		ExternalPort: uint16(10000 + i),
		Internal:     netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, 10}), uint16(20000+i)),
		Lifetime:     time.Hour,
	}
}

// BenchmarkApplyOne adds one mapping per transaction. The ports cycle over
// 20,000 keys, so later laps replace mappings (a delete and an add).
func BenchmarkApplyOne(b *testing.B) {
	ns := newNS(b)
	f := newFirewall(b, ns, Config{})
	ctx := context.Background()
	const keys = 20000
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := f.Apply(ctx, []gateway.Mapping{benchMapping(i % keys)}, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "mappings/s")
}

// benchPinhole returns the i-th pinhole of a benchmark: UDP to
// [2001:db8:100::(i/60000)+10]:1000+i%60000, with a one-hour lifetime, and
// every other one filtered to a /64 of the WAN.
func benchPinhole(i int) gateway.Mapping {
	a := netip.MustParseAddr("2001:db8:100::10").As16()
	a[15] += byte(i / 60000)
	m := gateway.Mapping{
		Protocol:     gateway.UDP,
		ExternalPort: uint16(1000 + i%60000),
		Internal:     netip.AddrPortFrom(netip.AddrFrom16(a), uint16(1000+i%60000)),
		Lifetime:     time.Hour,
		Pinhole:      true,
	}
	m.ExternalPort = m.Internal.Port()
	if i%2 == 1 {
		m.Filters = []gateway.Filter{{Remote: netip.MustParsePrefix("2001:db8:203::/64")}}
	}
	return m
}

// BenchmarkApplyPinhole opens one pinhole per transaction, half of them
// filtered, as BenchmarkApplyOne does for mappings: the keys cycle, so
// later laps renew pinholes (a delete and an add of each element).
func BenchmarkApplyPinhole(b *testing.B) {
	ns := newNS(b)
	f := newFirewall(b, ns, Config{})
	ctx := context.Background()
	const keys = 20000
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := f.Apply(ctx, []gateway.Mapping{benchPinhole(i % keys)}, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pinholes/s")
}

// BenchmarkApplyBatch500 adds 500 new mappings per transaction; removing
// them again is not timed. It measures the nftables transaction alone: the
// conntrack look-up that granting vacated ports again costs is off.
func BenchmarkApplyBatch500(b *testing.B) {
	ns := newNS(b)
	f := newFirewall(b, ns, Config{KeepFlows: true})
	ctx := context.Background()
	const n = 500
	batch := make([]gateway.Mapping, n)
	for i := range batch {
		batch[i] = benchMapping(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := f.Apply(ctx, batch, nil); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := f.Apply(ctx, nil, batch); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "mappings/s")
}

// reconcilePinhole returns the i-th of 100,000 unfiltered pinholes of
// BenchmarkReconcile100k: TCP then UDP, 50,000 each, to ports 1024 and on
// of 2001:db8:100::(i/1000 % 50):20000+i%1000.
func reconcilePinhole(i int) gateway.Mapping {
	m := benchmaps.Mapping(i)
	a := netip.MustParseAddr("2001:db8:100::").As16()
	a[14], a[15] = byte(i%50000/1000>>8), byte(i%50000/1000)
	m.Internal = netip.AddrPortFrom(netip.AddrFrom16(a), uint16(20000+i%1000))
	m.ExternalPort, m.Pinhole = m.Internal.Port(), true
	return m
}

// BenchmarkReconcile100k reconciles 100,000 mappings (benchmaps.Mapping), or
// 100,000 unfiltered pinholes (reconcilePinhole): "adopt" finds them all in
// the kernel, as a restart does; "add" finds the table gone and installs
// it again with every mapping, as after `nft flush ruleset`.
func BenchmarkReconcile100k(b *testing.B) {
	b.Run("mappings", func(b *testing.B) { benchReconcile(b, benchmaps.Mapping) })
	b.Run("pinholes", func(b *testing.B) { benchReconcile(b, reconcilePinhole) })
}

func benchReconcile(b *testing.B, mapping func(int) gateway.Mapping) {
	const n = 100000
	want := make([]gateway.Mapping, n)
	for i := range want {
		want[i] = mapping(i)
	}
	// The leases expire at one moment: each Reconcile wants what is left
	// of their lifetime, as the lease table would.
	expiry := time.Now().Add(time.Hour)
	remaining := func() []gateway.Mapping {
		left := time.Until(expiry)
		for i := range want {
			want[i].Lifetime = left
		}
		return want
	}
	ctx := context.Background()
	run := func(b *testing.B, before func(ns testNS)) {
		ns := newNS(b)
		f := newFirewall(b, ns, Config{})
		if _, err := f.Reconcile(ctx, remaining()); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		var cpu time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			before(ns)
			w := remaining()
			used := cpuTime(b)
			b.StartTimer()
			if _, err := f.Reconcile(ctx, w); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			cpu += cpuTime(b) - used
			b.StartTimer()
		}
		// The CPU time the process took, in user space and in the
		// kernel (which walks the maps for a dump): on a shared machine
		// it varies less than the time taken.
		b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
	}
	b.Run("adopt", func(b *testing.B) { run(b, func(testNS) {}) })
	b.Run("add", func(b *testing.B) {
		run(b, func(ns testNS) { ns.nft(b, "delete", "table", "inet", DefaultTable) })
	})
}

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
