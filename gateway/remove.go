package gateway

import (
	"context"
	"log/slog"
	"net/netip"
	"time"
)

// Delete removes the NAT-PMP lease of an internal endpoint (NAT-PMP
// lifetime 0, RFC 6886 §3.4), or the pinhole of an IPv6 one; UPnP IPv4
// leases of the same endpoint stay. A lease made over PCP needs its nonce
// (DeleteChecked, RFC 6887 §15): Delete refuses it with ErrNonceMismatch
// and leaves it (see mayRenew); a pinhole goes whatever its origin.
func (t *Table) Delete(ctx context.Context, p Protocol, internal netip.AddrPort) (Lease, error) {
	internal = netip.AddrPortFrom(internal.Addr().Unmap(), internal.Port())
	t.mu.Lock()
	id, ok := t.byInternalEndpoint(p, internal)
	if !ok {
		t.mu.Unlock()
		return Lease{}, ErrNotFound
	}
	if e := t.store.get(id); !e.pinhole() && !mayRenew(OriginNATPMP, e.origin) {
		t.mu.Unlock()
		return Lease{}, ErrNonceMismatch
	}
	return t.remove([]leaseID{id}, removedByClient)[0], nil
}

// DeleteChecked is Delete for a request that must carry the lease's nonce
// (PCP deletion, RFC 6887 §15): ErrNonceMismatch when the nonce differs,
// ErrNotFound when there is no lease.
func (t *Table) DeleteChecked(ctx context.Context, p Protocol, internal netip.AddrPort, nonce [12]byte) (Lease, error) {
	internal = netip.AddrPortFrom(internal.Addr().Unmap(), internal.Port())
	t.mu.Lock()
	id, ok := t.byInternalEndpoint(p, internal)
	if !ok {
		t.mu.Unlock()
		return Lease{}, ErrNotFound
	}
	if t.store.nonce(id) != nonce {
		t.mu.Unlock()
		return Lease{}, ErrNonceMismatch
	}
	return t.remove([]leaseID{id}, removedByClient)[0], nil
}

// DeleteExternal removes the IPv4 lease holding an external port (UPnP
// DeletePortMapping).
func (t *Table) DeleteExternal(ctx context.Context, p Protocol, port uint16) (Lease, error) {
	return t.deleteExternal(p, port, removedByClient)
}

// deleteExternal removes the IPv4 lease holding an external port.
func (t *Table) deleteExternal(p Protocol, port uint16, why removal) (Lease, error) {
	t.mu.Lock()
	id, ok := t.byExternal[mappingKey{p, port}]
	if !ok {
		t.mu.Unlock()
		return Lease{}, ErrNotFound
	}
	return t.remove([]leaseID{id}, why)[0], nil
}

// DeleteClient removes every lease of protocol p that client holds and that
// one of origins made (all of them when origins is empty): NAT-PMP's
// deletion of all mappings, internal port 0 and lifetime 0 (RFC 6886 §3.4).
// It costs O(the client's leases).
func (t *Table) DeleteClient(ctx context.Context, p Protocol, client netip.Addr, origins ...Origin) []Lease {
	return t.deleteClient(p, client, func(id leaseID) bool {
		return len(origins) == 0 || containsOrigin(origins, t.store.get(id).origin)
	})
}

// DeleteClientNonce removes every lease of protocol p that client holds,
// that origin made and that carries nonce: PCP's deletion of all of an
// address's mappings, internal port 0 and lifetime 0 (RFC 6887 §11.1,
// §15). It costs O(the client's leases).
func (t *Table) DeleteClientNonce(ctx context.Context, p Protocol, client netip.Addr, origin Origin, nonce [12]byte) []Lease {
	return t.deleteClient(p, client, func(id leaseID) bool {
		return t.store.get(id).origin == origin && t.store.nonce(id) == nonce
	})
}

// deleteClient removes the leases of protocol p of client for which match
// (called with t.mu held) reports true.
func (t *Table) deleteClient(p Protocol, client netip.Addr, match func(leaseID) bool) []Lease {
	client = client.Unmap()
	t.mu.Lock()
	var victims []leaseID
	pick := func(id leaseID) {
		if t.store.get(id).proto == p && match(id) {
			victims = append(victims, id)
		}
	}
	if c := t.byClient[client]; c != nil {
		for _, id := range c.byPort {
			pick(id)
		}
		for id := range c.upnp {
			pick(id)
		}
	}
	if len(victims) == 0 {
		t.mu.Unlock()
		return nil
	}
	return t.remove(victims, removedByClient)
}

func containsOrigin(os []Origin, o Origin) bool {
	for _, x := range os {
		if x == o {
			return true
		}
	}
	return false
}

// remove unlinks victims, records why among the events and the counters,
// queues their removal from the firewall and the journal, releases t.mu
// (which the caller holds) and waits for them.
func (t *Table) remove(victims []leaseID, why removal) []Lease {
	now := t.now()
	out := make([]Lease, len(victims))
	changes := make([]*change, len(victims))
	for i, id := range victims {
		out[i] = t.lease(id)
		t.noteRemoval(now, &out[i], why)
		changes[i] = &change{remove: ptr(t.mapping(id)), done: make(chan error, 1)}
		t.enqueue(changes[i], nil, &out[i])
		t.unlink(id)
	}
	t.mu.Unlock()
	for i, ch := range changes {
		if err := t.commit.wait(ch); err != nil {
			t.logLease(slog.LevelError, "removal not applied", &out[i], now, err)
			continue
		}
		t.logLease(slog.LevelInfo, why.message(), &out[i], now)
	}
	t.changed()
	return out
}

// DeleteExternalRange removes the leases of protocol p whose external port
// lies in [lo, hi] and for which match returns true (UPnP
// DeletePortMappingRange), and returns them.
func (t *Table) DeleteExternalRange(ctx context.Context, p Protocol, lo, hi uint16, match func(Lease) bool) []Lease {
	t.mu.Lock()
	var victims []leaseID
	for _, l := range t.inRange(p, lo, hi, len(t.byExternal)) {
		if match == nil || match(l) {
			victims = append(victims, t.byExternal[mappingKey{l.Protocol, l.ExternalPort}])
		}
	}
	if len(victims) == 0 {
		t.mu.Unlock()
		return nil
	}
	return t.remove(victims, removedByClient)
}

// Reconfigure puts a new policy in force. Leases the new policy no longer
// allows are removed and returned; the others stay, their lifetimes capped by
// the new maximum.
func (t *Table) Reconfigure(ctx context.Context, p Policy) []Lease {
	p = p.withDefaults()
	t.mu.Lock()
	t.policy = p
	now := t.now()
	limit := t.since(now.Add(p.MaxLifetime))
	var victims []leaseID
	for _, id := range t.all() {
		e := t.store.get(id)
		if !p.Allows(e.eport, e.internal().Addr(), e.iport) {
			victims = append(victims, id)
			continue
		}
		if e.expires != 0 && e.expires > limit {
			e.expires = limit
			t.schedule(id, min(e.due, limit))
		}
	}
	if len(victims) == 0 {
		t.mu.Unlock()
		return nil
	}
	return t.remove(victims, removedByRules)
}

// noteRemoval counts the removal of lease l and records it among the
// events. t.mu must be held.
func (t *Table) noteRemoval(now time.Time, l *Lease, why removal) {
	if why.kind() == EventExpired {
		countOrigin(&t.counts.expired, l.Origin)
	} else {
		countOrigin(&t.counts.deleted, l.Origin)
	}
	t.events.add(now, why.kind(), l, netip.Addr{}, why.reason())
}
