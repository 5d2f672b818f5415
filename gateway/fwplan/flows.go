package fwplan

import (
	"net/netip"
	"slices"

	"github.com/portlease/portlease/gateway"
)

// Flows are the mappings a batch changed whose connections must follow
// the new rules: what gateway/conntrack deletes entries for, with the
// meaning and the fields of conntrack.Changes (which converts from Flows:
// conntrack.Changes(p.Flows)). fwplan does not import conntrack: it stays
// free of the kernel.
type Flows struct {
	// Ended are the mappings removed, or moved to another internal
	// endpoint, as they were (Protocol, ExternalPort, Internal). A renewal
	// (the same key to the same endpoint) ends nothing.
	Ended []gateway.Mapping
	// Granted are the mappings added for a key that an earlier batch
	// removed and that nothing held since (the State's vacated keys): a
	// flow may have kept sending to that port untranslated. A key never
	// held is not one, so that a batch that only adds new mappings or
	// renews asks for no conntrack dump.
	Granted []gateway.Mapping
	// Closed are the pinholes removed (RFC 6887 Section 11).
	Closed []gateway.Mapping
	// Filtered are the pinholes, and the IPv4 mappings kept on the same
	// internal endpoint, whose filters the batch changed to others that
	// restrict (RFC 6887 Section 13.3), with those filters.
	Filtered []gateway.Mapping
}

// Empty reports whether f asks for nothing.
func (f *Flows) Empty() bool {
	return len(f.Ended)+len(f.Granted)+len(f.Closed)+len(f.Filtered) == 0
}

// flows fills in p.Flows from the pending batch, as the State held things
// before it, and notes in the batch the keys it vacates and grants again
// (Commit records them). With Config.KeepFlows it does nothing.
func (s *State) flows(p *Plan) {
	if s.cfg.KeepFlows {
		return
	}
	b := s.b
	for i, k := range b.in.keys {
		old := b.in.old[i]
		e, held := s.in[k]
		moved := old.held && (!held || e.addr != old.v.addr || e.iport != old.v.iport)
		if moved {
			p.Flows.Ended = append(p.Flows.Ended, gateway.Mapping{Protocol: k.proto, ExternalPort: k.eport,
				Internal: netip.AddrPortFrom(netip.AddrFrom4(old.v.addr), old.v.iport)})
		}
		_, vacated := s.vacated[k]
		switch {
		case b.renewed[i] && vacated:
			b.granted = append(b.granted, k)
			p.Flows.Granted = append(p.Flows.Granted, gateway.Mapping{Protocol: k.proto, ExternalPort: k.eport,
				Internal: netip.AddrPortFrom(netip.AddrFrom4(e.addr), e.iport)})
		case old.held && !held:
			b.vacated = append(b.vacated, k)
		}
	}
	for i, k := range b.pins.keys {
		if !b.pins.old[i].held {
			continue // new
		}
		m := gateway.Mapping{Protocol: k.proto, ExternalPort: k.port, Internal: k.internal(), Pinhole: true}
		fs, held := s.pinFilters[k]
		switch {
		case !s.pinHeld(k):
			p.Flows.Closed = append(p.Flows.Closed, m)
		case held && !slices.Equal(b.pinFilters.old[b.pinFilters.find(k)].v, fs):
			m.Filters = fs
			p.Flows.Filtered = append(p.Flows.Filtered, m)
		}
	}
	for i, k := range b.filters4.keys {
		fs, held := s.filters4[k]
		if !held || slices.Equal(b.filters4.old[i].v, fs) {
			continue
		}
		e := s.in[k]
		if j := b.in.find(k); j >= 0 {
			if old := b.in.old[j]; !old.held || old.v.addr != e.addr || old.v.iport != e.iport {
				continue // new, or moved: Ended has the old flows
			}
		}
		p.Flows.Filtered = append(p.Flows.Filtered, gateway.Mapping{Protocol: k.proto, ExternalPort: k.eport,
			Internal: netip.AddrPortFrom(netip.AddrFrom4(e.addr), e.iport), Filters: fs})
	}
}

// pinHeld reports whether pinhole k is held.
func (s *State) pinHeld(k pinKey) bool { _, ok := s.pins[k]; return ok }

// commitFlows records the keys the committed batch vacated and granted
// again.
func (s *State) commitFlows() {
	for _, k := range s.b.granted {
		delete(s.vacated, k)
	}
	if len(s.b.vacated) > 0 && s.vacated == nil {
		s.vacated = make(map[inKey]struct{})
	}
	for _, k := range s.b.vacated {
		s.vacated[k] = struct{}{}
	}
}
