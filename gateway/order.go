package gateway

// keyOrder counts the leases at each external key in a Fenwick (binary
// indexed) tree over every (protocol, port) slot, so that the i-th lease in
// (protocol, external port) order is found in O(log 65536) steps, and its
// rank likewise. UPnP clients walk the table by index
// (GetGenericPortMappingEntry, IGD WANIPConnection:1 §2.4.14); with this
// order an index keeps naming the same entry while entries after it come and
// go, and a walk never costs a scan.
//
// The same tree counts the free ports for allocation (freeports.go).
//
// The slots are TCP ports 0-65535 then UDP ports 0-65535: 2×65536 int32
// counters, 512 KiB, allocated when the first lease is.
type keyOrder struct {
	tree []int32 // 1-based Fenwick tree; len = orderSlots+1
}

const (
	orderPortSlots = 1 << 16
	orderSlots     = 2 * orderPortSlots
)

// slot returns the 0-based slot of a key, or -1 for a protocol the order
// does not hold.
func slot(k mappingKey) int {
	switch k.proto {
	case TCP:
		return int(k.port)
	case UDP:
		return orderPortSlots + int(k.port)
	}
	return -1
}

func keyAt(s int) mappingKey {
	if s >= orderPortSlots {
		return mappingKey{UDP, uint16(s - orderPortSlots)}
	}
	return mappingKey{TCP, uint16(s)}
}

func (o *keyOrder) add(k mappingKey, delta int32) {
	s := slot(k)
	if s < 0 {
		return
	}
	if o.tree == nil {
		o.tree = make([]int32, orderSlots+1)
	}
	for i := s + 1; i <= orderSlots; i += i & -i {
		o.tree[i] += delta
	}
}

// rank returns the number of leases at slots before k's.
func (o *keyOrder) rank(k mappingKey) int {
	s := slot(k)
	if s < 0 || o.tree == nil {
		return 0
	}
	n := 0
	for i := s; i > 0; i -= i & -i {
		n += int(o.tree[i])
	}
	return n
}

// nth returns the key of the lease at 0-based index n in order.
func (o *keyOrder) nth(n int) (mappingKey, bool) {
	if n < 0 || o.tree == nil {
		return mappingKey{}, false
	}
	pos, rest := 0, n+1
	for step := orderSlots; step > 0; step >>= 1 {
		if next := pos + step; next <= orderSlots && int(o.tree[next]) < rest {
			pos = next
			rest -= int(o.tree[next])
		}
	}
	if pos >= orderSlots {
		return mappingKey{}, false
	}
	return keyAt(pos), true
}
