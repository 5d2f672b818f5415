package fwplan

import (
	"net/netip"
	"time"

	"github.com/portlease/portlease/gateway"
)

// Wanted returns the State that holds exactly the mappings and pinholes of
// want, the lease table's, oldest first (the oldest mapping of an internal
// endpoint owns its outbound element, as with Plan), and the Plan that adds
// every element of it to an empty kernel, deleting nothing. A backend's
// reconciliation compares that Plan with what its kernel holds, makes the
// kernel follow, and then replaces s by the State returned: Plan goes on
// from there.
//
// The State returned has s's Config, base and vacated keys (the ports that
// earlier batches removed stay vacated for Flows.Granted); s itself is not
// changed. A key repeated in want is held as its last mapping, in the place
// of its first. It returns ErrPending while a Plan of s is pending.
func (s *State) Wanted(now time.Time, want []gateway.Mapping) (*State, *Plan, error) {
	if s.b != nil {
		return nil, nil, ErrPending
	}
	nPins := 0
	for _, m := range want {
		if err := checkMapping(m); err != nil {
			return nil, nil, err
		}
		if m.Pinhole {
			nPins++
		}
	}
	n := len(want) - nPins
	w := &State{cfg: s.cfg, base: s.base, vacated: s.vacated,
		in: make(map[inKey]entry, n), out: make(map[endpoint]epList, n),
		pins: make(map[pinKey]nanos, nPins), pinFilters: make(map[pinKey][]gateway.Filter),
		filters4: make(map[inKey][]gateway.Filter)}
	keys := make([]inKey, 0, n)
	pins := make([]pinKey, 0, nPins)
	for _, m := range want {
		if m.Pinhole {
			if k := pinKeyOf(m); !w.pinHeld(k) {
				pins = append(pins, k)
			}
			w.putPin(now, m)
			continue
		}
		k := inKey{m.Protocol, m.ExternalPort}
		if _, held := w.in[k]; !held {
			keys = append(keys, k)
		}
		w.put(now, m) // no batch: written as they are
		w.setFilters4(k, effectiveFilters(m.Filters))
	}
	return w, w.wantedPlan(now, keys, pins), nil
}

// wantedPlan returns the additions of every element of w, which holds the
// IPv4 mappings keys and the pinholes pins, in their order; the outbound
// elements in the order of their owners.
func (w *State) wantedPlan(now time.Time, keys []inKey, pins []pinKey) *Plan {
	p := &Plan{AddIn: make([]Inbound, 0, len(keys)), AddOut: make([]Outbound, 0, len(w.out)),
		AddPin: make([]Pinhole, 0, len(pins))}
	for _, k := range keys {
		e := w.in[k]
		internal := netip.AddrPortFrom(netip.AddrFrom4(e.addr), e.iport)
		t := w.until(now, e.deadline.int64())
		p.AddIn = append(p.AddIn, Inbound{k.proto, k.eport, internal, t})
		if e.prev == 0 { // the oldest of its endpoint: the owner
			p.AddOut = append(p.AddOut, Outbound{k.proto, internal, k.eport, t})
		}
		if fs, ok := w.filters4[k]; ok {
			p.AddFiltered = append(p.AddFiltered, Filtered{k.proto, k.eport, fs, t})
		}
	}
	for _, k := range pins {
		p.AddPin = append(p.AddPin, Pinhole{k.proto, k.internal(), w.pinFilters[k], w.until(now, w.pins[k].int64())})
	}
	return p
}
