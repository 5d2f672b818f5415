package gateway

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// TestFreePortsAgainstScan: the free ports that freePorts counts and
// numbers are those a scan of the allowed ranges finds, in ascending order,
// for tables filled at random in both protocols, ranges at both ends of the
// port space (port 0 left out), and reserved ports found by probes.
func TestFreePortsAgainstScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	allowed := []PortRange{{0, 5}, {1000, 1100}, {40000, 40000}, {65500, 65535}}
	for round := range 50 {
		var o keyOrder
		held := map[mappingKey]bool{}
		density := rng.Float64()
		for _, r := range allowed {
			for p := int(r.Low); p <= int(r.High); p++ {
				for _, proto := range []Protocol{TCP, UDP} {
					if rng.Float64() < density {
						k := mappingKey{proto, uint16(p)}
						held[k] = true
						o.add(k, 1)
					}
				}
			}
		}
		var probed portProbes
		for range rng.IntN(6) {
			r := allowed[rng.IntN(len(allowed))]
			p := r.Low + uint16(rng.IntN(r.Size()))
			if _, known := probed.lookup(p); !known { // Map asks once a port
				probed = append(probed, portProbe{p, rng.IntN(2) == 0})
			}
		}
		for _, proto := range []Protocol{TCP, UDP} {
			var want []uint16
			for _, r := range allowed {
				for p := int(r.Low); p <= int(r.High); p++ {
					reserved, _ := probed.lookup(uint16(p))
					if p != 0 && !held[mappingKey{proto, uint16(p)}] && !reserved {
						want = append(want, uint16(p))
					}
				}
			}
			f := newFreePorts(&o, proto, allowed, probed, func(p uint16) bool { return held[mappingKey{proto, p}] }, nil)
			got := make([]uint16, 0, f.total)
			for i := range f.total {
				got = append(got, f.nth(i))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("round %d %v, probed %v: free ports %v; want %v", round, proto, probed, got, want)
			}
		}
	}
}

// TestFreePortsEmptyOrder: before the first lease (no tree yet) every
// port is free.
func TestFreePortsEmptyOrder(t *testing.T) {
	var o keyOrder
	f := newFreePorts(&o, UDP, []PortRange{{0, 65535}}, nil, func(uint16) bool { return false }, nil)
	if f.total != 65535 || f.nth(0) != 1 || f.nth(65534) != 65535 {
		t.Fatalf("empty order: total %d, first %d, last %d; want 65535, 1, 65535", f.total, f.nth(0), f.nth(65534))
	}
}

// TestMapFillsRangeExactly: a range is handed out to its last port, each
// once, in both protocols, and then refused.
func TestMapFillsRangeExactly(t *testing.T) {
	tab, _ := newTestTable(t, Policy{Ports: PortRange{5000, 5999}})
	ctx := context.Background()
	for _, proto := range []Protocol{TCP, UDP} {
		seen := map[uint16]bool{}
		for i := range 1000 {
			addr := netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i/250)})
			res, err := tab.Map(ctx, mapReq(proto, addr, uint16(1024+i%250), 0))
			if err != nil {
				t.Fatalf("%v mapping %d: %v", proto, i, err)
			}
			if seen[res.ExternalPort] || !res.Renewed && (res.ExternalPort < 5000 || res.ExternalPort > 5999) {
				t.Fatalf("%v mapping %d got port %d, seen %v", proto, i, res.ExternalPort, seen[res.ExternalPort])
			}
			seen[res.ExternalPort] = true
		}
		if _, err := tab.Map(ctx, mapReq(proto, client2, 9999, 0)); !errors.Is(err, ErrOutOfResources) {
			t.Fatalf("%v Map on a full range = %v; want ErrOutOfResources", proto, err)
		}
	}
}

// BenchmarkMapRefusedFull measures the refusal of a request when every
// port it may have is taken: the whole range (ports=N), or the subset the
// rules allow the requester while the rest of the range is free
// (subset=N). The cost must not grow with N (freeports.go).
func BenchmarkMapRefusedFull(b *testing.B) {
	for _, n := range []int{1000, 10000, 64512} {
		b.Run(fmt.Sprintf("ports=%d", n), func(b *testing.B) {
			benchmarkRefused(b, Policy{Ports: PortRange{1024, uint16(1024 + n - 1)}}, n)
		})
	}
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("subset=%d", n), func(b *testing.B) {
			sub := PortRange{1024, uint16(1024 + n - 1)}
			all := PortRange{0, 65535}
			p := Policy{Rules: []Rule{
				{Allow: true, ExternalPorts: sub, Internal: netip.PrefixFrom(client2, 32), InternalPorts: all},
				{Allow: false, ExternalPorts: all, Internal: netip.PrefixFrom(client2, 32), InternalPorts: all},
				{Allow: true, ExternalPorts: DefaultPorts, Internal: lan, InternalPorts: all},
			}}
			benchmarkRefused(b, p, n)
		})
	}
}

// benchmarkRefused fills the first n ports from 1024 with TCP leases of
// client1 and its neighbours, then has client2 ask for one.
func benchmarkRefused(b *testing.B, p Policy, n int) {
	tab := New(Config{Policy: p, Rand: rand.New(rand.NewPCG(1, 2))})
	ctx := context.Background()
	for i := range n {
		addr := netip.AddrFrom4([4]byte{198, 51, 100, byte(100 + i/60000)})
		req := mapReq(TCP, addr, uint16(1024+i%60000), uint16(1024+i))
		req.Exact = true
		if _, err := tab.Map(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	req := mapReq(TCP, client2, 5000, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tab.Map(ctx, req); !errors.Is(err, ErrOutOfResources) {
			b.Fatalf("Map = %v; want ErrOutOfResources", err)
		}
	}
}
