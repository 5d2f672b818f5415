package gateway

import "net/netip"

// byInternalEndpoint returns the NAT-PMP or PCP lease of an internal
// endpoint. t.mu must be held.
func (t *Table) byInternalEndpoint(p Protocol, internal netip.AddrPort) (leaseID, bool) {
	c := t.byClient[internal.Addr()]
	if c == nil {
		return 0, false
	}
	id, ok := c.byPort[portKey{p, internal.Port()}]
	return id, ok
}

// link adds the lease id to every index. t.mu must be held.
func (t *Table) link(id leaseID) {
	e := t.store.get(id)
	t.byExternal[e.key()] = id
	t.order.add(e.key(), 1)
	addr := e.internal().Addr()
	c := t.byClient[addr]
	if c == nil {
		c = &clientLeases{byPort: make(map[portKey]leaseID)}
		t.byClient[addr] = c
	}
	if e.origin == OriginUPnP {
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
	delete(t.byExternal, e.key())
	t.order.add(e.key(), -1)
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
