package gateway

import "net/netip"

// The lease table keeps its leases where the garbage collector has nothing
// to do: entries are records without pointers, held in chunks, and every
// index (the maps by external port and by internal port, the expiry heap)
// holds leaseIDs rather than pointers. A collection cycle then costs the
// same with 100,000 leases as with none, which keeps the request path's
// latency flat as the table grows (BENCHMARKS.md: a forced collection took
// 4.2 ms with 100,000 leases held through pointers).

// leaseID names an entry of a leaseStore. IDs are reused once released.
type leaseID int32

// entry is a lease in the store: 56 bytes, no pointers. Times are
// nanoseconds since the table's base time, on the monotonic clock (a router
// that steps its wall clock at boot keeps its lifetimes). What only some
// leases carry (a PCP nonce, filters, a UPnP description) is kept aside in
// leaseStore.extras.
type entry struct {
	addr      [16]byte // the internal address; IPv4 in the last 4 bytes when is4
	created   int64    // since Table.base
	expires   int64    // since Table.base; 0 means no end
	due       int64    // since Table.base: when the expiry loop next acts (expire or re-arm); 0: never
	heapIndex int32    // -1 when not in the expiry heap
	gen       uint16   // counts the uses of the slot, to tell reuses apart
	iport     uint16
	eport     uint16 // a pinhole's is its iport
	pinholeID uint16 // 0: an IPv4 lease; else a pinhole's UniqueID
	proto     Protocol
	origin    Origin
	is4       bool
	hasExtra  bool
}

func (e *entry) key() mappingKey { return mappingKey{e.proto, e.eport} }

func (e *entry) pinhole() bool { return e.pinholeID != 0 }

// setInternal records the internal endpoint of e.
func (e *entry) setInternal(ap netip.AddrPort) {
	e.addr, e.is4, e.iport = ap.Addr().As16(), ap.Addr().Is4(), ap.Port()
}

func (e *entry) internal() netip.AddrPort {
	a := netip.AddrFrom16(e.addr)
	if e.is4 {
		a = a.Unmap()
	}
	return netip.AddrPortFrom(a, e.iport)
}

// leaseExtra holds what most leases do not have.
type leaseExtra struct {
	nonce       [12]byte
	filters     []Filter // normalised; never modified once set
	description string
}

// chunkSize is the number of entries in a chunk of the store: 192 KiB.
const chunkSize = 4096

// leaseStore holds entries in fixed chunks, so that growing it never copies
// or doubles it, with a free list of released slots.
type leaseStore struct {
	chunks [][]entry
	free   []leaseID
	extras map[leaseID]*leaseExtra
}

// alloc returns a zeroed entry for a new lease (heapIndex -1) and its ID.
func (s *leaseStore) alloc() (leaseID, *entry) {
	var id leaseID
	if n := len(s.free); n > 0 {
		id = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		id = leaseID(len(s.chunks) * chunkSize)
		s.chunks = append(s.chunks, make([]entry, chunkSize))
		for i := chunkSize - 1; i > 0; i-- {
			s.free = append(s.free, id+leaseID(i))
		}
	}
	e := s.get(id)
	*e = entry{heapIndex: -1, gen: e.gen + 1}
	return id, e
}

func (s *leaseStore) get(id leaseID) *entry {
	return &s.chunks[id/chunkSize][id%chunkSize]
}

// release frees the slot of id and whatever it kept aside.
func (s *leaseStore) release(id leaseID) {
	e := s.get(id)
	if e.hasExtra {
		delete(s.extras, id)
	}
	*e = entry{heapIndex: -1, gen: e.gen}
	s.free = append(s.free, id)
}

// nonce returns the PCP nonce of id, zero when it has none.
func (s *leaseStore) nonce(id leaseID) [12]byte {
	if x := s.extra(id); x != nil {
		return x.nonce
	}
	return [12]byte{}
}

// extra returns what id keeps aside, or nil.
func (s *leaseStore) extra(id leaseID) *leaseExtra {
	if !s.get(id).hasExtra {
		return nil
	}
	return s.extras[id]
}

// filters returns the filters of id, nil when it has none.
func (s *leaseStore) filters(id leaseID) []Filter {
	if x := s.extra(id); x != nil {
		return x.filters
	}
	return nil
}

// setExtra records the nonce, filters and description of id, keeping them
// aside only when one of them is set.
func (s *leaseStore) setExtra(id leaseID, nonce [12]byte, filters []Filter, description string) {
	x := s.extra(id)
	if x == nil {
		if nonce == ([12]byte{}) && len(filters) == 0 && description == "" {
			return
		}
		if s.extras == nil {
			s.extras = make(map[leaseID]*leaseExtra)
		}
		x = &leaseExtra{}
		s.extras[id] = x
		s.get(id).hasExtra = true
	}
	x.nonce, x.filters, x.description = nonce, filters, description
}

// expiryHeap is a binary min-heap of leases ordered by when the expiry loop
// must next act on them (entry.due: the lease's end, or the time to re-arm
// its kernel timeout), earliest first, that keeps each entry's heapIndex. It is written out rather than
// built on container/heap, whose interface would box every ID it pushes.
type expiryHeap struct {
	ids   []leaseID
	store *leaseStore
}

func (h *expiryHeap) less(i, j int) bool {
	return h.store.get(h.ids[i]).due < h.store.get(h.ids[j]).due
}

func (h *expiryHeap) swap(i, j int) {
	h.ids[i], h.ids[j] = h.ids[j], h.ids[i]
	h.store.get(h.ids[i]).heapIndex = int32(i)
	h.store.get(h.ids[j]).heapIndex = int32(j)
}

func (h *expiryHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			return
		}
		h.swap(i, parent)
		i = parent
	}
}

// down moves the element at i down and reports whether it moved.
func (h *expiryHeap) down(i int) bool {
	start := i
	for {
		smallest, l := i, 2*i+1
		if l >= len(h.ids) {
			break
		}
		if h.less(l, smallest) {
			smallest = l
		}
		if r := l + 1; r < len(h.ids) && h.less(r, smallest) {
			smallest = r
		}
		if smallest == i {
			break
		}
		h.swap(i, smallest)
		i = smallest
	}
	return i > start
}

// first returns the lease that is due first.
func (h *expiryHeap) first() (leaseID, bool) {
	if len(h.ids) == 0 {
		return 0, false
	}
	return h.ids[0], true
}

// remove takes id out of the heap, if it is in it.
func (h *expiryHeap) remove(id leaseID) {
	e := h.store.get(id)
	i := int(e.heapIndex)
	if i < 0 {
		return
	}
	last := len(h.ids) - 1
	if i != last {
		h.swap(i, last)
	}
	h.ids = h.ids[:last]
	e.heapIndex = -1
	if i != last && !h.down(i) {
		h.up(i)
	}
}

// fix puts id where it belongs after its due time changed: in the heap, or
// out of it when it is never due.
func (h *expiryHeap) fix(id leaseID) {
	e := h.store.get(id)
	switch {
	case e.due == 0:
		h.remove(id)
	case e.heapIndex >= 0:
		if i := int(e.heapIndex); !h.down(i) {
			h.up(i)
		}
	default:
		e.heapIndex = int32(len(h.ids))
		h.ids = append(h.ids, id)
		h.up(len(h.ids) - 1)
	}
}
