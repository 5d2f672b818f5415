package gateway

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Pinholes are leases like the others (Map makes them for IPv6 internal
// endpoints); UPnP WANIPv6FirewallControl:1 also names them by UniqueID
// (Lease.PinholeID), which these methods take.

// Pinhole returns the pinhole of UniqueID id (UPnP GetPinholePackets,
// CheckPinholeWorking).
func (t *Table) Pinhole(id uint16) (Lease, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lid, ok := t.pinholes.lookup(id)
	if !ok {
		return Lease{}, false
	}
	return t.lease(lid), true
}

// Pinholes returns every pinhole in UniqueID order. It costs O(n log n)
// for n pinholes.
func (t *Table) Pinholes() []Lease {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Lease, 0, len(t.pinholes.byID))
	for _, lid := range t.pinholes.byID {
		out = append(out, t.lease(lid))
	}
	slices.SortFunc(out, func(a, b Lease) int { return cmp.Compare(a.PinholeID, b.PinholeID) })
	return out
}

// UpdatePinhole gives the pinhole of UniqueID id a new lifetime, capped by
// Policy.MaxLifetime (UPnP UpdatePinhole, WANIPv6FirewallControl:1
// §2.5.6), and returns once the kernel holds it. ErrNotFound when there is
// no such pinhole, ErrBadRequest for a lifetime that is not positive.
func (t *Table) UpdatePinhole(ctx context.Context, id uint16, lifetime time.Duration) (MapResult, error) {
	if lifetime <= 0 {
		return MapResult{}, fmt.Errorf("%w: lifetime %v", ErrBadRequest, lifetime)
	}
	if err := ctx.Err(); err != nil {
		return MapResult{}, err
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return MapResult{}, ErrClosed
	}
	lid, ok := t.pinholes.lookup(id)
	if !ok {
		t.mu.Unlock()
		return MapResult{}, ErrNotFound
	}
	now := t.now()
	lifetime = min(lifetime, t.policy.MaxLifetime)
	p := t.renew(lid, now, t.since(now.Add(lifetime)), t.store.filters(lid), "", lifetime)
	countOrigin(&t.counts.renewed, p.res.Origin)
	t.events.add(now, EventRenewed, &p.res.Lease, netip.Addr{}, "")
	t.mu.Unlock()
	return t.finishMap(p)
}

// DeletePinhole removes the pinhole of UniqueID id (UPnP DeletePinhole,
// WANIPv6FirewallControl:1 §2.5.7). ErrNotFound when there is none.
func (t *Table) DeletePinhole(ctx context.Context, id uint16) (Lease, error) {
	return t.deletePinhole(id, removedByClient)
}

// deletePinhole removes the pinhole of UniqueID id.
func (t *Table) deletePinhole(id uint16, why removal) (Lease, error) {
	t.mu.Lock()
	lid, ok := t.pinholes.lookup(id)
	if !ok {
		t.mu.Unlock()
		return Lease{}, ErrNotFound
	}
	return t.remove([]leaseID{lid}, why)[0], nil
}
