package gateway

import "slices"

// The free ports of each protocol are the slots of keyOrder that hold no
// lease: the Fenwick tree that orders the leases for UPnP's walk already
// counts the held ports below every slot, so it counts the free ones too
// (a slot range's size less its leases), and the n-th free port is found
// by the same descent as the n-th lease, reading a node's free count as its
// width less its leases. Allocation then costs O(r log 65536) for r ranges
// the rules allow the requester, whether the table is empty, nearly full or
// full: a full range, or a full allowed subset of it, is refused without a
// look at any port, and a free port is drawn uniformly among the free ones
// rather than by trial, which degraded to a scan of the range under the
// table's lock as the range filled up (about 5 ms per refusal with the
// 64,512 default ports taken).
//
// Other structures considered: a bitmap of 65,536 bits per protocol with a
// count per 64-bit word answers "any free?" from a total but still scans
// words (1,024 per protocol) to find the n-th free port or to count a
// range; a segment tree does both in O(log n) like the Fenwick tree, but
// would be a second structure kept beside keyOrder on every grant and
// removal. Reusing keyOrder costs no memory (its 512 KiB are there already)
// and no work on the request path.
//
// Refusal of a request when every port it may have is taken
// (BenchmarkMapRefusedFull, median of 3 runs, 2 vCPU KVM guest "Oxide
// Virtual Turin-like", Go 1.26.8, load average 2-6): the whole range of N
// ports taken (ports=N), or the N ports the rules allow the requester
// while the rest is free (subset=N):
//
//	                 ports=1,000  ports=10,000  ports=64,512  subset=1,000  subset=10,000
//	before (scan)    39-42 µs     392 µs        3.65-3.73 ms  36-41 µs      380-442 µs
//	after            228 ns       280 ns        222 ns        393 ns        338 ns
//
// A grant costs what it did (BenchmarkMapDelete, 13 allocations): the
// draw replaces the random trials, and its few excluded ports live on the
// caller's stack.

// freeRank returns the number of free slots before slot s (0-based): s
// less the leases there.
func (o *keyOrder) freeRank(s int) int {
	n := s
	for i := s; i > 0 && o.tree != nil; i -= i & -i {
		n -= int(o.tree[i])
	}
	return n
}

// freeIn returns the number of ports of r, of protocol p, that no lease
// holds.
func (o *keyOrder) freeIn(p Protocol, r PortRange) int {
	lo := slot(mappingKey{p, r.Low})
	if lo < 0 {
		return 0
	}
	return o.freeRank(lo+r.Size()) - o.freeRank(lo)
}

// nthFree returns the slot of the free slot with free rank n (0-based,
// counted over every slot), or -1 when there are not that many.
func (o *keyOrder) nthFree(n int) int {
	if n < 0 {
		return -1
	}
	if o.tree == nil {
		if n >= orderSlots {
			return -1
		}
		return n
	}
	pos, rest := 0, n+1
	for step := orderSlots; step > 0; step >>= 1 {
		// tree[pos+step] counts the leases of the step slots after pos.
		if next := pos + step; next <= orderSlots {
			if free := step - int(o.tree[next]); free < rest {
				pos = next
				rest -= free
			}
		}
	}
	if pos >= orderSlots {
		return -1
	}
	return pos
}

// freePorts is the view of one allocation: the ports of one protocol in
// the allowed ranges that no lease holds, less the excluded ones, numbered
// from 0 in ascending order.
type freePorts struct {
	order  *keyOrder
	proto  Protocol
	ranges []PortRange // allowed, ascending, disjoint
	// excluded are free ports of the ranges never to hand out, ascending:
	// port 0 and those a probe found reserved.
	excluded []uint16
	total    int // free ports less excluded
}

// newFreePorts counts the free ports of p in allowed (ascending and
// disjoint) less port 0 and the reserved ones of probed. held reports
// whether a lease holds a port; excluded is room for the excluded ports
// (the caller's, so that a request allocates nothing here).
func newFreePorts(o *keyOrder, p Protocol, allowed []PortRange, probed portProbes, held func(uint16) bool, excluded []uint16) freePorts {
	f := freePorts{order: o, proto: p, ranges: allowed, excluded: excluded[:0]}
	for _, r := range allowed {
		f.total += o.freeIn(p, r)
	}
	if inRanges(allowed, 0) && !held(0) {
		f.excluded = append(f.excluded, 0)
	}
	for _, pr := range probed {
		if pr.reserved && inRanges(allowed, pr.port) && !held(pr.port) {
			f.excluded = append(f.excluded, pr.port)
		}
	}
	slices.Sort(f.excluded)
	f.excluded = slices.Compact(f.excluded)
	f.total -= len(f.excluded)
	return f
}

// rank returns the number of free ports of the allowed ranges below port,
// which they must contain, excluded ones included.
func (f *freePorts) rank(port uint16) int {
	n := 0
	for _, r := range f.ranges {
		if r.Contains(port) {
			base := slot(mappingKey{f.proto, r.Low})
			return n + f.order.freeRank(base+int(port-r.Low)) - f.order.freeRank(base)
		}
		n += f.order.freeIn(f.proto, r)
	}
	panic("gateway: port outside the allowed ranges")
}

// nth returns the free port of index n (0 <= n < total), excluded ones
// passed over.
func (f *freePorts) nth(n int) uint16 {
	// The excluded ports, ascending, shift the index past each one at or
	// below it.
	for _, p := range f.excluded {
		if f.rank(p) > n {
			break
		}
		n++
	}
	for _, r := range f.ranges {
		free := f.order.freeIn(f.proto, r)
		if n < free {
			base := slot(mappingKey{f.proto, r.Low})
			return keyAt(f.order.nthFree(f.order.freeRank(base) + n)).port
		}
		n -= free
	}
	panic("gateway: free port index out of range")
}
