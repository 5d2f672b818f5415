package gateway

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sort"
	"sync/atomic"
	"testing"
)

// orderedKeys returns the table's keys by walking LeaseAt from 0.
func orderedKeys(t *testing.T, tab *Table) []string {
	t.Helper()
	var out []string
	for i := 0; ; i++ {
		l, ok := tab.LeaseAt(i)
		if !ok {
			break
		}
		out = append(out, fmt.Sprintf("%v/%d", l.Protocol, l.ExternalPort))
	}
	return out
}

func TestLeaseAtOrder(t *testing.T) {
	tab, _ := newTestTable(t, defaultPolicy())
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	type key struct {
		p    Protocol
		port uint16
	}
	var want []key
	for i := range 500 {
		p := TCP
		if rng.IntN(2) == 0 {
			p = UDP
		}
		addr := netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i%200)})
		res, err := tab.Map(ctx, mapReq(p, addr, uint16(2000+i), 0))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, key{p, res.ExternalPort})
	}
	sort.Slice(want, func(i, j int) bool {
		if want[i].p != want[j].p {
			return want[i].p < want[j].p
		}
		return want[i].port < want[j].port
	})
	got := orderedKeys(t, tab)
	if len(got) != len(want) {
		t.Fatalf("LeaseAt walked %d leases; want %d", len(got), len(want))
	}
	for i, k := range want {
		if s := fmt.Sprintf("%v/%d", k.p, k.port); got[i] != s {
			t.Fatalf("LeaseAt(%d) = %s; want %s", i, got[i], s)
		}
	}
	if _, ok := tab.LeaseAt(len(want)); ok {
		t.Fatal("LeaseAt past the end found a lease")
	}
	if _, ok := tab.LeaseAt(-1); ok {
		t.Fatal("LeaseAt(-1) found a lease")
	}
}

// TestLeaseAtStableIndexes: a lease keeps its index while leases after it
// come and go, so a client walking the table by index sees it once.
func TestLeaseAtStableIndexes(t *testing.T) {
	tab, _ := newTestTable(t, defaultPolicy())
	ctx := context.Background()
	for _, port := range []uint16{3000, 3001, 3002} {
		if _, err := tab.Map(ctx, mapReq(TCP, client1, port, port)); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := tab.LeaseAt(1)
	if _, err := tab.Map(ctx, mapReq(UDP, client1, 4000, 4000)); err != nil {
		t.Fatal(err)
	}
	if _, err := tab.Delete(ctx, TCP, netip.AddrPortFrom(client1, 3002)); err != nil {
		t.Fatal(err)
	}
	after, _ := tab.LeaseAt(1)
	if after.ExternalPort != before.ExternalPort || after.Protocol != before.Protocol {
		t.Fatalf("index 1 named %v/%d, then %v/%d after changes behind it", before.Protocol, before.ExternalPort, after.Protocol, after.ExternalPort)
	}
}

func TestLeasesInRangeAndDeleteRange(t *testing.T) {
	tab, fw := newTestTable(t, defaultPolicy())
	ctx := context.Background()
	for port := uint16(5000); port < 5010; port++ {
		for _, c := range []netip.Addr{client1} {
			if _, err := tab.Map(ctx, mapReq(UDP, c, port, port)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := tab.Map(ctx, mapReq(TCP, client2, port, port)); err != nil {
			t.Fatal(err)
		}
	}
	got := tab.LeasesInRange(UDP, 5002, 5006, 3)
	if len(got) != 3 || got[0].ExternalPort != 5002 || got[2].ExternalPort != 5004 || got[0].Protocol != UDP {
		t.Fatalf("LeasesInRange(UDP, 5002, 5006, 3) = %v", got)
	}
	if n := len(tab.LeasesInRange(UDP, 5006, 5002, 10)); n != 0 {
		t.Fatalf("an inverted range gave %d leases", n)
	}
	gone := tab.DeleteExternalRange(ctx, UDP, 5000, 5004, func(l Lease) bool { return l.ExternalPort%2 == 0 })
	if len(gone) != 3 {
		t.Fatalf("DeleteExternalRange removed %d; want 3 (5000, 5002, 5004)", len(gone))
	}
	if tab.Len() != 17 || fw.len() != 17 {
		t.Fatalf("after the range deletion table %d, firewall %d; want 17", tab.Len(), fw.len())
	}
	if n := len(tab.LeasesInRange(TCP, 0, 65535, 100)); n != 10 {
		t.Fatalf("the TCP leases: %d; want 10 untouched", n)
	}
}

func TestWatch(t *testing.T) {
	tab, _ := newTestTable(t, defaultPolicy())
	ctx := context.Background()
	var calls atomic.Int32
	stop := tab.Watch(func() { calls.Add(1) })
	req := mapReq(TCP, client1, 6000, 6000)
	if _, err := tab.Map(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, err := tab.Map(ctx, req); err != nil { // a renewal: the set is the same
		t.Fatal(err)
	}
	if _, err := tab.Delete(ctx, TCP, req.Internal); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("Watch saw %d changes; want 2 (a grant and a deletion)", n)
	}
	stop()
	if _, err := tab.Map(ctx, req); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("Watch called after stop")
	}
}

// BenchmarkLeaseAt walks a table of 50,000 leases by index.
func BenchmarkLeaseAt(b *testing.B) {
	tab := New(Config{})
	ctx := context.Background()
	for i := range 50000 {
		addr := netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
		if _, err := tab.Map(ctx, mapReq(UDP, addr, uint16(1024+i%60000), 0)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := tab.LeaseAt(i % 50000); !ok {
			b.Fatal("no lease")
		}
		i += 7919
	}
}
