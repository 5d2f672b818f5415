package gateway

import "net/netip"

// byInternalEndpoint returns the NAT-PMP or PCP lease of an internal
// endpoint, or the pinhole of an IPv6 one. t.mu must be held.
func (t *Table) byInternalEndpoint(p Protocol, internal netip.AddrPort) (leaseID, bool) {
	c := t.byClient[internal.Addr()]
	if c == nil {
		return 0, false
	}
	id, ok := c.byPort[portKey{p, internal.Port()}]
	return id, ok
}

// link adds the lease id to every index: a pinhole to the index by
// UniqueID (which its entry already names) and by internal endpoint, an
// IPv4 lease to those by external key and by internal endpoint. t.mu must
// be held.
func (t *Table) link(id leaseID) {
	e := t.store.get(id)
	if !e.pinhole() {
		t.byExternal[e.key()] = id
		t.order.add(e.key(), 1)
	}
	addr := e.internal().Addr()
	c := t.byClient[addr]
	if c == nil {
		c = &clientLeases{byPort: make(map[portKey]leaseID)}
		t.byClient[addr] = c
	}
	if e.origin == OriginUPnP && !e.pinhole() {
		if c.upnp == nil {
			c.upnp = make(map[leaseID]struct{})
		}
		c.upnp[id] = struct{}{}
	} else {
		c.byPort[portKey{e.proto, e.iport}] = id
	}
}

// unlink removes the lease id from every index and releases its slot. t.mu
// must be held.
func (t *Table) unlink(id leaseID) {
	e := t.store.get(id)
	if e.pinhole() {
		t.pinholes.release(e.pinholeID)
	} else {
		delete(t.byExternal, e.key())
		t.order.add(e.key(), -1)
	}
	addr := e.internal().Addr()
	if c := t.byClient[addr]; c != nil {
		if k := (portKey{e.proto, e.iport}); c.byPort[k] == id {
			delete(c.byPort, k)
		}
		delete(c.upnp, id)
		if c.empty() {
			delete(t.byClient, addr)
		}
	}
	t.expiry.remove(id)
	t.store.release(id)
}

// schedule sets when the expiry loop must next act on the lease id (0:
// never), and wakes the loop when the lease is now the first due.
func (t *Table) schedule(id leaseID, due int64) {
	t.store.get(id).due = due
	t.expiry.fix(id)
	if first, ok := t.expiry.first(); ok && first == id {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// held returns the lease that holds what the kernel knows as m's key: the
// pinhole of its internal endpoint, or the lease of its external key. t.mu
// must be held.
func (t *Table) held(m Mapping) (leaseID, bool) {
	if m.Pinhole {
		return t.byInternalEndpoint(m.Protocol, m.Internal)
	}
	id, ok := t.byExternal[keyOf(m)]
	return id, ok
}

// all returns the IDs of every lease, pinholes included, in no particular
// order. t.mu must be held.
func (t *Table) all() []leaseID {
	ids := make([]leaseID, 0, len(t.byExternal)+len(t.pinholes.byID))
	for _, id := range t.byExternal {
		ids = append(ids, id)
	}
	for _, id := range t.pinholes.byID {
		ids = append(ids, id)
	}
	return ids
}
