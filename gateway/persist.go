package gateway

import (
	"cmp"
	"net/netip"
	"slices"
	"time"
)

// Restore puts back the leases a previous run kept (Config.Journal), before
// the table serves, and returns how many came back and the leases left
// out: those already ended, malformed ones, those the policy no longer
// allows, and any that would hold an external port, a NAT-PMP/PCP
// internal endpoint, a pinhole's endpoint or its UniqueID twice. Pinholes
// come back with their UniqueID. A lease that ends beyond the policy's
// MaxLifetime from now comes back with its end capped there, as
// Reconfigure caps it (a reload that lowered the maximum, a clock set
// back). Restore does not touch the kernel: call Resync next, which also
// has the journal forget the leases left out and keep the capped ends.
func (t *Table) Restore(leases []Lease) (restored int, skipped []Lease) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	limit := now.Add(t.policy.MaxLifetime)
	for _, l := range leases {
		l.Internal = netip.AddrPortFrom(l.Internal.Addr().Unmap(), l.Internal.Port())
		filters, err := normaliseFilters(l.Filters, l.Internal.Addr())
		if err != nil || !t.restorable(&l, now) {
			skipped = append(skipped, l)
			if !t.journalKeyHeld(&l) {
				t.journalOnly(nil, &l)
			}
			continue
		}
		l.Filters = filters
		id, e := t.store.alloc()
		if l.Pinhole {
			t.pinholes.hold(l.PinholeID, id)
			e.pinholeID = l.PinholeID
		}
		e.setInternal(l.Internal)
		// Created may precede the table's base: a negative entry time.
		e.created = int64(l.Created.Sub(t.base))
		capped := !l.Expires.IsZero() && l.Expires.After(limit)
		if capped {
			l.Expires = limit
		}
		if !l.Expires.IsZero() {
			e.expires = t.since(l.Expires)
		}
		e.eport = l.ExternalPort
		e.proto = l.Protocol
		e.origin = l.Origin
		t.store.setExtra(id, l.Nonce, l.Filters, l.Description)
		t.link(id)
		t.armed(id, now)
		if capped {
			t.journalOnly(ptr(t.lease(id)), nil)
		}
		restored++
	}
	return restored, skipped
}

// restorable reports whether lease l of a previous run may come back at
// now. t.mu must be held.
func (t *Table) restorable(l *Lease, now time.Time) bool {
	switch {
	case l.Protocol != TCP && l.Protocol != UDP,
		!l.Internal.Addr().IsValid(), l.Internal.Addr().IsUnspecified(), l.Internal.Port() == 0,
		l.ExternalPort == 0,
		l.Origin != OriginNATPMP && l.Origin != OriginPCP && l.Origin != OriginUPnP,
		!l.Expires.IsZero() && !now.Before(l.Expires),
		!t.policy.Allows(l.ExternalPort, l.Internal.Addr(), l.Internal.Port()),
		l.Internal.Addr().Zone() != "",
		l.Pinhole != l.Internal.Addr().Is6(),
		l.Pinhole && (l.PinholeID == 0 || l.ExternalPort != l.Internal.Port()),
		!l.Pinhole && l.PinholeID != 0:
		return false
	}
	if t.journalKeyHeld(l) {
		return false
	}
	if l.Origin != OriginUPnP || l.Pinhole {
		if _, held := t.byInternalEndpoint(l.Protocol, l.Internal); held {
			return false
		}
	}
	return true
}

// journalKeyHeld reports whether a lease of the table holds the journal's
// key of l: its external key, or its UniqueID for a pinhole. t.mu must be
// held.
func (t *Table) journalKeyHeld(l *Lease) bool {
	if l.Pinhole {
		_, held := t.pinholes.lookup(l.PinholeID)
		return held
	}
	_, held := t.byExternal[mappingKey{l.Protocol, l.ExternalPort}]
	return held
}

// Resync makes the kernel hold exactly what the table holds
// (Firewall.Reconcile), with every kernel timeout armed afresh, and returns
// what it found. The daemon calls it at start, after Restore, and whenever
// someone else changed the kernel's state; Run calls it after a failed
// transaction. It goes through the group commit like any change, so the
// kernel receives the table as it stands after every change queued before.
func (t *Table) Resync() (Reconciled, error) {
	ch := &change{resync: true, done: make(chan error, 1)}
	t.mu.Lock()
	t.commit.enqueue(ch)
	t.mu.Unlock()
	err := t.commit.wait(ch)
	return ch.reconciled, err
}

// resyncSnapshot is the committer's snapshot for a resync: it takes every
// change still queued (and those set aside for the journal) into the batch
// and returns them with every lease as the kernel must hold it once they
// are applied, and, withLeases, every lease as the journal must. Holding t.mu, no change
// can be queued meanwhile, so the two agree exactly.
func (t *Table) resyncSnapshot(withLeases bool) (drained []*change, want []Mapping, leases []Lease) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.commit.mu.Lock()
	drained = append(t.commit.queue, t.journalPending...)
	t.commit.queue, t.journalPending = nil, nil
	t.commit.mu.Unlock()
	ids := t.all()
	if withLeases {
		leases = make([]Lease, len(ids))
		for i, id := range ids {
			leases[i] = t.lease(id)
		}
	}
	// Oldest first, as the leases were granted: of the mappings of one
	// internal endpoint, the first granted gives its outbound traffic the
	// external port, and a resync must not move that.
	slices.SortFunc(ids, func(a, b leaseID) int {
		ea, eb := t.store.get(a), t.store.get(b)
		return cmp.Or(cmp.Compare(ea.created, eb.created), cmp.Compare(ea.proto, eb.proto), cmp.Compare(ea.eport, eb.eport),
			cmp.Compare(ea.pinholeID, eb.pinholeID))
	})
	now := t.now()
	want = make([]Mapping, len(ids))
	for i, id := range ids {
		want[i] = t.armed(id, now)
	}
	return drained, want, leases
}

// journalOnly sets aside a change for the journal alone (Restore's), which
// the next resync takes into its batch. Such changes have no waiter, so
// they must never stand in the commit queue, where a leader would hand
// one the lead. t.mu must be held.
func (t *Table) journalOnly(put, drop *Lease) {
	if t.commit.journal == nil {
		return
	}
	ch := &change{done: make(chan error, 1)}
	if put != nil {
		ch.put = ptr(*put)
	}
	if drop != nil {
		ch.drop = ptr(*drop)
	}
	t.journalPending = append(t.journalPending, ch)
}
