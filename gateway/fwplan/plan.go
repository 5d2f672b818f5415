package fwplan

import (
	"net/netip"
	"slices"
	"time"

	"github.com/portlease/portlease/gateway"
)

// Inbound is an element of the inbound (DNAT) map: traffic for Protocol to
// ExternalPort on the external address goes to Internal. A deletion uses
// Protocol and ExternalPort alone.
type Inbound struct {
	Protocol     gateway.Protocol
	ExternalPort uint16
	Internal     netip.AddrPort
	Timeout      time.Duration // kernel timeout from now; zero: none
}

// Outbound is an element of the outbound (SNAT) map: traffic of Protocol
// from Internal leaves with source port ExternalPort. A deletion uses
// Protocol and Internal alone.
type Outbound struct {
	Protocol     gateway.Protocol
	Internal     netip.AddrPort
	ExternalPort uint16
	Timeout      time.Duration // kernel timeout from now; zero: none
}

// Plan is one transaction for the kernel: the deletions, then the
// additions, applied atomically. A key may be both deleted and added (a
// renewal, or a new owner): the addition replaces the element.
type Plan struct {
	DelIn       []Inbound
	DelOut      []Outbound
	DelPin      []Pinhole
	DelFiltered []Filtered
	AddIn       []Inbound
	AddOut      []Outbound
	AddPin      []Pinhole
	AddFiltered []Filtered
	// Flows are the connections the batch changes (see Flows); nothing
	// with Config.KeepFlows.
	Flows Flows
}

// Empty reports whether p changes nothing.
func (p *Plan) Empty() bool {
	return len(p.DelIn)+len(p.DelOut)+len(p.DelPin)+len(p.DelFiltered)+
		len(p.AddIn)+len(p.AddOut)+len(p.AddPin)+len(p.AddFiltered) == 0
}

// Plan removes the mappings in remove and then adds those in add, in the
// State, and returns the transaction that makes the kernel follow. A
// mapping is identified by (Protocol, ExternalPort); only those fields of a
// mapping to remove are used, and removing one not held is not an error.
// Adding a key held already, or removing and adding it, renews it (fresh
// timeouts) in its place among its endpoint's mappings; an added mapping
// of another endpoint becomes the newest of its new one. The oldest mapping
// of an endpoint owns its outbound element. A pinhole is identified by
// (Protocol, Internal); each pinhole, and each IPv4 mapping with filters,
// that a batch touches has its old elements deleted (DelPin, DelFiltered,
// with the filters the kernel holds) and its new ones added.
//
// The State changes at once; call Commit once the kernel took the
// transaction, Abort when it did not. Until then Plan returns ErrPending.
func (s *State) Plan(now time.Time, add, remove []gateway.Mapping) (*Plan, error) {
	if s.b != nil {
		return nil, ErrPending
	}
	for _, m := range add {
		if err := checkMapping(m); err != nil {
			return nil, err
		}
	}
	s.b = newBatch(len(add) + len(remove))
	readded := addedKeys(add)
	for _, m := range remove {
		if m.Pinhole {
			s.removePin(pinKeyOf(m))
			continue
		}
		k := inKey{m.Protocol, m.ExternalPort}
		if readded(k) {
			continue // renewed below, in its place
		}
		if e, held := s.in[k]; held {
			s.unlink(k, e)
			s.setIn(k, entry{}, false)
			s.setFilters4(k, nil)
		}
	}
	for _, m := range add {
		if m.Pinhole {
			s.putPin(now, m)
		} else {
			s.put(now, m)
			s.setFilters4(inKey{m.Protocol, m.ExternalPort}, effectiveFilters(m.Filters))
		}
	}
	p := s.elements(now)
	s.peerElements(now, p)
	s.flows(p)
	return p, nil
}

// addedKeys returns a test of whether a key is among those of add: a
// linear search for a few, a set for many.
func addedKeys(add []gateway.Mapping) func(inKey) bool {
	if len(add) <= linearMax {
		return func(k inKey) bool {
			return slices.ContainsFunc(add, func(m gateway.Mapping) bool {
				return !m.Pinhole && m.Protocol == k.proto && m.ExternalPort == k.eport
			})
		}
	}
	set := make(map[inKey]struct{}, len(add))
	for _, m := range add {
		if !m.Pinhole {
			set[inKey{m.Protocol, m.ExternalPort}] = struct{}{}
		}
	}
	return func(k inKey) bool { _, ok := set[k]; return ok }
}

// put adds or renews mapping m.
func (s *State) put(now time.Time, m gateway.Mapping) {
	k := inKey{m.Protocol, m.ExternalPort}
	e := entry{
		deadline: nanosOf(s.deadline(now, s.kernelTimeout(m.Lifetime))),
		addr:     m.Internal.Addr().Unmap().As4(),
		iport:    m.Internal.Port(),
	}
	ep := e.endpoint(k.proto)
	old, held := s.in[k]
	switch {
	case held && old.endpoint(k.proto) == ep:
		e.prev, e.next = old.prev, old.next
		if s.b != nil {
			s.b.out.note(s.out, ep) // its owner may be renewed
		}
	case held:
		s.unlink(k, old)
		s.link(k, &e)
	default:
		s.link(k, &e)
	}
	if i := s.setIn(k, e, true); i >= 0 {
		s.b.renewed[i] = true
	}
}

// elements makes the Plan of the pending batch: the inbound elements of
// the mappings it added or removed, and the outbound element of each
// endpoint whose owner changed or was renewed.
func (s *State) elements(now time.Time) *Plan {
	b := s.b
	p := &Plan{AddIn: make([]Inbound, 0, len(b.in.keys)), AddOut: make([]Outbound, 0, len(b.out.keys))}
	for i, k := range b.in.keys {
		old := b.in.old[i]
		if b.renewed[i] {
			if old.held {
				p.DelIn = append(p.DelIn, Inbound{Protocol: k.proto, ExternalPort: k.eport})
			}
			e := s.in[k]
			p.AddIn = append(p.AddIn, Inbound{k.proto, k.eport,
				netip.AddrPortFrom(netip.AddrFrom4(e.addr), e.iport), s.until(now, e.deadline.int64())})
			continue
		}
		if _, still := s.in[k]; old.held && !still {
			p.DelIn = append(p.DelIn, Inbound{Protocol: k.proto, ExternalPort: k.eport})
		}
	}
	for j, ep := range b.out.keys {
		old := b.out.old[j]
		internal := netip.AddrPortFrom(netip.AddrFrom4(ep.addr), ep.port)
		var was int64
		if old.held {
			was = s.deadlineBefore(inKey{ep.proto, old.v.first})
		}
		l, held := s.out[ep]
		var is int64
		if held {
			is = s.in[inKey{ep.proto, l.first}].deadline.int64()
		}
		if old.held && held && old.v.first == l.first && was == is {
			continue // the same element
		}
		if old.held {
			p.DelOut = append(p.DelOut, Outbound{Protocol: ep.proto, Internal: internal})
		}
		if held {
			p.AddOut = append(p.AddOut, Outbound{ep.proto, internal, l.first, s.until(now, is)})
		}
	}
	return p
}

// deadlineBefore returns the deadline mapping k had before the pending
// batch; k was held.
func (s *State) deadlineBefore(k inKey) int64 {
	if i := s.b.in.find(k); i >= 0 {
		return s.b.in.old[i].v.deadline.int64()
	}
	return s.in[k].deadline.int64()
}

// Commit keeps the changes of the pending Plan: the kernel took them.
func (s *State) Commit() {
	if s.b == nil {
		return
	}
	s.commitFlows()
	s.b = nil
}

// Abort undoes the changes of the pending Plan: the kernel refused them.
func (s *State) Abort() {
	if s.b == nil {
		return
	}
	s.b.in.restore(s.in)
	s.b.out.restore(s.out)
	s.b.pins.restore(s.pins)
	s.b.pinFilters.restore(s.pinFilters)
	s.b.filters4.restore(s.filters4)
	s.b = nil
}
