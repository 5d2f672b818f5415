package gateway

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"testing"
)

// checkHeap fails t unless h is a min-heap by end whose entries know their
// positions.
func checkHeap(t *testing.T, h *expiryHeap) {
	t.Helper()
	for i, id := range h.ids {
		if got := h.store.get(id).heapIndex; got != int32(i) {
			t.Fatalf("entry %d at heap position %d records %d", id, i, got)
		}
		if i > 0 && h.less(i, (i-1)/2) {
			t.Fatalf("heap position %d ends before its parent", i)
		}
	}
}

// TestExpiryHeap: random pushes, changes of end (including to none) and
// removals keep the heap ordered and every heapIndex right, and draining
// it yields the ends in order.
func TestExpiryHeap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var s leaseStore
	h := expiryHeap{store: &s}
	var live []leaseID
	for step := range 20000 {
		switch op := rng.IntN(10); {
		case op < 5 || len(live) == 0: // a new lease
			id, e := s.alloc()
			e.due = 1 + rng.Int64N(1000)
			h.fix(id)
			live = append(live, id)
		case op < 8: // a renewal, sometimes to no end
			id := live[rng.IntN(len(live))]
			s.get(id).due = rng.Int64N(1000)
			h.fix(id)
		default: // a removal
			i := rng.IntN(len(live))
			h.remove(live[i])
			s.release(live[i])
			live = slices.Delete(live, i, i+1)
		}
		if step%97 == 0 {
			checkHeap(t, &h)
		}
	}
	checkHeap(t, &h)
	want := 0
	for _, id := range live {
		if s.get(id).due != 0 {
			want++
		}
	}
	if len(h.ids) != want {
		t.Fatalf("heap holds %d leases; want the %d with an end", len(h.ids), want)
	}
	last := int64(0)
	for {
		id, ok := h.first()
		if !ok {
			break
		}
		if end := s.get(id).due; end < last {
			t.Fatalf("drained %d after %d", end, last)
		} else {
			last = end
		}
		h.remove(id)
	}
}

// TestStoreReusesSlots: a released slot is handed out again with a new
// generation, and its extra goes with it.
func TestStoreReusesSlots(t *testing.T) {
	var s leaseStore
	id, e := s.alloc()
	gen := e.gen
	s.setExtra(id, [12]byte{1}, nil, "game")
	if x := s.extra(id); x == nil || x.description != "game" {
		t.Fatalf("extra = %+v; want the description", x)
	}
	s.release(id)
	again, e := s.alloc()
	if again != id || e.gen == gen {
		t.Fatalf("alloc after release = id %d gen %d; want id %d with a generation other than %d", again, e.gen, id, gen)
	}
	if s.extra(again) != nil || len(s.extras) != 0 {
		t.Fatal("a reused slot kept the extra of its former lease")
	}
}

// TestEntryInternal: internal endpoints come back as they went in, IPv4 as
// IPv4 and IPv6 as IPv6.
func TestEntryInternal(t *testing.T) {
	for _, s := range []string{"198.51.100.10:80", "[2001:db8::10]:443", "[::ffff:198.51.100.10]:80"} {
		ap := netip.MustParseAddrPort(s)
		var e entry
		e.setInternal(ap)
		if got := e.internal(); got != ap {
			t.Errorf("internal() = %v; want %v", got, ap)
		}
	}
}

// BenchmarkGCWithTable measures a forced garbage collection with 100,000
// leases in the table: with no pointers in the store and its indexes, it
// costs about what it costs with an empty table.
func BenchmarkGCWithTable(b *testing.B) {
	for _, n := range []int{0, 100000} {
		b.Run(map[int]string{0: "leases=0", 100000: "leases=100000"}[n], func(b *testing.B) {
			tab := fillTable(b, n)
			runtime.GC()
			for b.Loop() {
				runtime.GC()
			}
			runtime.KeepAlive(tab)
		})
	}
}
