package gateway

import (
	"net/netip"
	"time"
)

// Origin names the front-end that made a lease.
type Origin uint8

// The front-ends that make leases.
const (
	OriginNATPMP Origin = iota + 1
	OriginPCP
	OriginUPnP
)

// String returns "natpmp", "pcp" or "upnp".
func (o Origin) String() string {
	switch o {
	case OriginNATPMP:
		return "natpmp"
	case OriginPCP:
		return "pcp"
	case OriginUPnP:
		return "upnp"
	}
	return "unknown"
}

// Lease is one port mapping granted to a client, in PCP's model
// (RFC 6887 §11): a mapping of an internal endpoint to an external port.
type Lease struct {
	Protocol     Protocol
	Internal     netip.AddrPort
	ExternalPort uint16
	// Nonce is the PCP mapping nonce (RFC 6887 §11.1); zero for NAT-PMP.
	Nonce [12]byte
	// Remote optionally restricts the mapping to one peer (PCP PEER,
	// RFC 6887 §12); the zero value means any.
	Remote      netip.AddrPort
	Origin      Origin
	Description string
	Created     time.Time
	// Expires is when the lease ends; the zero time means it does not
	// (a permanent UPnP IGD:1 lease).
	Expires time.Time
}

// Lifetime returns how long the lease has left at now, rounded down to whole
// seconds as the wire protocols carry it, and 0 once it has ended. A lease
// without an end returns 0 too; check Expires.IsZero first.
func (l Lease) Lifetime(now time.Time) time.Duration {
	if l.Expires.IsZero() || !now.Before(l.Expires) {
		return 0
	}
	return l.Expires.Sub(now).Truncate(time.Second)
}

func (l *Lease) mapping(now time.Time) Mapping {
	m := Mapping{Protocol: l.Protocol, ExternalPort: l.ExternalPort, Internal: l.Internal}
	if !l.Expires.IsZero() {
		m.Lifetime = max(l.Expires.Sub(now), 0)
	}
	return m
}

// entry is a lease in the table with its position in the expiry heap.
type entry struct {
	Lease
	heapIndex int // -1 when not in the heap (no expiry)
}

// internalKey identifies a lease by its internal side: one lease per
// internal endpoint and protocol (RFC 6886 §3.3, RFC 6887 §11.3).
type internalKey struct {
	proto Protocol
	addr  netip.AddrPort
}

// expiryHeap orders leases by Expires, earliest first (container/heap).
type expiryHeap []*entry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].Expires.Before(h[j].Expires) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex = i
	h[j].heapIndex = j
}
func (h *expiryHeap) Push(x any) {
	e := x.(*entry)
	e.heapIndex = len(*h)
	*h = append(*h, e)
}
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.heapIndex = -1
	*h = old[:len(old)-1]
	return e
}
