package gateway

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
)

// Deletions that come from no client's request: the operator's (the
// control socket, the status page) and the daemon's when a LAN goes away.
// They act as the client's deletions do (the kernel holds the mapping no
// more once they return) but record their own Event.Reason.

// DeleteByOperator removes the IPv4 lease holding an external port, of
// whatever origin, and records ReasonOperator. ErrNotFound when there is
// none.
func (t *Table) DeleteByOperator(ctx context.Context, p Protocol, port uint16) (Lease, error) {
	return t.deleteExternal(p, port, removedByOperator)
}

// DeletePinholeByOperator removes the pinhole of UniqueID id and records
// ReasonOperator. ErrNotFound when there is none.
func (t *Table) DeletePinholeByOperator(ctx context.Context, id uint16) (Lease, error) {
	return t.deletePinhole(id, removedByOperator)
}

// DeleteHost removes every lease of internal address addr, of every
// protocol and origin, pinholes included, records ReasonOperator and
// returns them in (protocol, external port) order; none when it holds
// none. It costs O(the host's leases).
func (t *Table) DeleteHost(ctx context.Context, addr netip.Addr) []Lease {
	t.mu.Lock()
	return t.removeHosts([]*clientLeases{t.byClient[addr.Unmap()]}, removedByOperator)
}

// DeleteInside removes every lease, pinholes included, whose internal
// address lies in one of subnets (LANs the gateway no longer serves),
// records ReasonLANGone and returns them. It costs O(hosts holding leases).
func (t *Table) DeleteInside(ctx context.Context, subnets []netip.Prefix) []Lease {
	t.mu.Lock()
	var hosts []*clientLeases
	for a, c := range t.byClient {
		if slices.ContainsFunc(subnets, func(p netip.Prefix) bool { return p.Contains(a) }) {
			hosts = append(hosts, c)
		}
	}
	return t.removeHosts(hosts, removedLANGone)
}

// removeHosts removes every lease of hosts, in (protocol, external port,
// internal address) order, and releases t.mu, which the caller holds.
func (t *Table) removeHosts(hosts []*clientLeases, why removal) []Lease {
	var victims []leaseID
	for _, c := range hosts {
		if c == nil {
			continue
		}
		for _, id := range c.byPort {
			victims = append(victims, id)
		}
		for id := range c.upnp {
			victims = append(victims, id)
		}
	}
	if len(victims) == 0 {
		t.mu.Unlock()
		return nil
	}
	slices.SortFunc(victims, func(a, b leaseID) int {
		ea, eb := t.store.get(a), t.store.get(b)
		return cmp.Or(cmp.Compare(ea.proto, eb.proto), cmp.Compare(ea.eport, eb.eport),
			ea.internal().Addr().Compare(eb.internal().Addr()))
	})
	return t.remove(victims, why)
}
