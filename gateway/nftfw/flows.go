package nftfw

import (
	"slices"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/conntrack"
)

// flowChanges returns what the committed plan p changes for conntrack, as
// the index holds things before p is adopted, and keeps vacated up to date.
//
// Ended are the mappings p removes, and those it replaces by a mapping that
// leads to another internal endpoint; a renewal (the same key to the same
// endpoint) ends nothing. Granted are the mappings p adds for keys that an
// earlier transaction ended and nothing held since: a flow may have kept
// sending to such a port untranslated. A key never held is not looked at,
// so that a transaction that only adds new mappings or renews costs no dump.
// With Config.KeepFlows it returns nothing. The caller holds f.mu.
func (f *Firewall) flowChanges(p *plan) conntrack.Changes {
	var c conntrack.Changes
	if f.keepFlows {
		return c
	}
	for i, k := range p.keys.keys {
		ch := &p.ins[i]
		old, held := f.idx.in[k]
		switch {
		case held && ch.add && ch.e.addr == old.addr && ch.e.iport == old.iport:
			continue // a renewal
		case held:
			c.Ended = append(c.Ended, gateway.Mapping{
				Protocol:     k.proto,
				ExternalPort: k.eport,
				Internal:     old.endpoint(k.proto).internal(),
			})
		}
		_, wasVacated := f.vacated[k]
		switch {
		case ch.add && wasVacated:
			delete(f.vacated, k)
			c.Granted = append(c.Granted, gateway.Mapping{
				Protocol:     k.proto,
				ExternalPort: k.eport,
				Internal:     ch.e.endpoint(k.proto).internal(),
			})
		case !ch.add && held:
			if f.vacated == nil {
				f.vacated = make(map[inKey]struct{})
			}
			f.vacated[k] = struct{}{}
		}
	}
	return c
}

// peerFlowChanges adds to c what the committed peerChange pc changes for
// conntrack, as the indexes hold things before it is adopted: the pinholes
// it removes are Closed; the pinholes, and the IPv4 mappings of add kept on
// the same internal endpoint, whose filters it changes to others that
// restrict are Filtered. With Config.KeepFlows it adds nothing. The caller
// holds f.mu.
func (f *Firewall) peerFlowChanges(pc *peerChange, add []gateway.Mapping, c *conntrack.Changes) {
	if f.keepFlows || pc == nil {
		return
	}
	for k, e := range pc.pins {
		old, held := f.peers.pins[k]
		switch {
		case !held:
		case e == nil:
			c.Closed = append(c.Closed, k.mapping())
		case len(e.filters) > 0 && !slices.Equal(old.filters, e.filters):
			m := k.mapping()
			m.Filters = e.filters
			c.Filtered = append(c.Filtered, m)
		}
	}
	for _, m := range add {
		fs := effectiveFilters(m.Filters)
		if m.Pinhole || len(fs) == 0 {
			continue
		}
		k := keyOf(m)
		in, mapped := f.idx.in[k]
		if !mapped || in.addr != m.Internal.Addr().Unmap().As4() || in.iport != m.Internal.Port() {
			continue // new, or moved: Ended has the old flows
		}
		if old, held := f.peers.v4[k]; held && slices.Equal(old.filters, fs) {
			continue
		}
		c.Filtered = append(c.Filtered, gateway.Mapping{Protocol: m.Protocol, ExternalPort: m.ExternalPort,
			Internal: m.Internal, Filters: fs})
	}
}

// forgetFlows hands the conntrack changes c of a committed transaction to
// the Firewall's forgetter, which deletes their entries off the request
// path (see flowForgetter). The caller holds f.mu, so that the changes of
// transactions reach the forgetter in the order of their commits.
func (f *Firewall) forgetFlows(c conntrack.Changes) {
	f.flows.add(c)
}
