package ratelimit

import "net/netip"

// hostTable keeps a value per host for at most max hosts, the least
// recently used dropped first when a new one comes: the state a gateway
// keeps for each LAN host it hears from must not grow with the addresses a
// hostile host can use. Every operation costs O(1). It is not safe for
// concurrent use: its owner holds a lock.
type hostTable[V any] struct {
	max   int
	hosts map[netip.Addr]*hostEntry[V]
	// lru is the sentinel of a circular list of the entries, most
	// recently used first: the idlest is lru.prev.
	lru hostEntry[V]
}

// hostEntry is one host's value in a hostTable.
type hostEntry[V any] struct {
	host       netip.Addr
	val        V
	prev, next *hostEntry[V]
}

func newHostTable[V any](max int) *hostTable[V] {
	h := &hostTable[V]{max: max, hosts: make(map[netip.Addr]*hostEntry[V])}
	h.lru.prev, h.lru.next = &h.lru, &h.lru
	return h
}

// use returns host's entry, made with the zero value when there is none
// (fresh reports that), and marks it the most recently used. Making one when
// the bound is reached drops the idlest host's entry, which evict is given
// first.
func (h *hostTable[V]) use(host netip.Addr, evict func(host netip.Addr, val *V)) (e *hostEntry[V], fresh bool) {
	if e = h.hosts[host]; e != nil {
		h.unlink(e)
		h.pushFront(e)
		return e, false
	}
	if len(h.hosts) >= h.max {
		e = h.lru.prev
		h.unlink(e)
		delete(h.hosts, e.host)
		evict(e.host, &e.val)
		*e = hostEntry[V]{}
	} else {
		e = new(hostEntry[V])
	}
	e.host = host
	h.hosts[host] = e
	h.pushFront(e)
	return e, true
}

// len returns the number of hosts that have an entry.
func (h *hostTable[V]) len() int { return len(h.hosts) }

func (h *hostTable[V]) unlink(e *hostEntry[V]) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (h *hostTable[V]) pushFront(e *hostEntry[V]) {
	e.prev, e.next = &h.lru, h.lru.next
	h.lru.next.prev = e
	h.lru.next = e
}
