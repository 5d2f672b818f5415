package fwplan

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/portlease/portlease/gateway"
)

// pinKey identifies a pinhole: its protocol and internal IPv6 endpoint.
type pinKey struct {
	proto gateway.Protocol
	addr  [16]byte
	port  uint16
}

func pinKeyOf(m gateway.Mapping) pinKey {
	return pinKey{m.Protocol, m.Internal.Addr().As16(), m.Internal.Port()}
}

func (k pinKey) internal() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(k.addr), k.port)
}

// Pinhole is a pinhole's elements: inbound traffic of Protocol to the
// global IPv6 endpoint Internal is accepted, from the remote peers of
// Filters or, when there are none, from any (RFC 6887 Section 13.3 for
// filters, as nftfw's pinhole sets hold them). A deletion carries the
// filters the kernel holds, so that their elements can be named.
type Pinhole struct {
	Protocol gateway.Protocol
	Internal netip.AddrPort
	Filters  []gateway.Filter
	Timeout  time.Duration // kernel timeout from now; zero: none
}

// Filtered is the filter elements of an IPv4 mapping that admits only the
// remote peers of Filters (never empty).
type Filtered struct {
	Protocol     gateway.Protocol
	ExternalPort uint16
	Filters      []gateway.Filter
	Timeout      time.Duration // kernel timeout from now; zero: none
}

// effectiveFilters returns the filters that restrict anything, copied:
// none when one of them admits every peer.
func effectiveFilters(fs []gateway.Filter) []gateway.Filter {
	if slices.ContainsFunc(fs, func(f gateway.Filter) bool { return f.Remote.Bits() == 0 && f.Port == 0 }) {
		return nil
	}
	return slices.Clone(fs)
}

// checkPinhole checks a pinhole of a batch.
func checkPinhole(m gateway.Mapping) error {
	a := m.Internal.Addr()
	switch {
	case !a.Is6() || a.Is4In6() || a.IsUnspecified() || a.Zone() != "":
		return fmt.Errorf("fwplan: pinhole %v %v: not a global IPv6 endpoint", m.Protocol, m.Internal)
	case m.ExternalPort != 0 && m.ExternalPort != m.Internal.Port():
		return fmt.Errorf("fwplan: pinhole %v %v: external port %d differs", m.Protocol, m.Internal, m.ExternalPort)
	case m.Lifetime < 0:
		return fmt.Errorf("fwplan: pinhole %v %v: negative lifetime", m.Protocol, m.Internal)
	}
	for _, f := range m.Filters {
		if !f.Remote.IsValid() || !f.Remote.Addr().Is6() || f.Remote.Addr().Is4In6() {
			return fmt.Errorf("fwplan: pinhole %v %v: filter %v is not IPv6", m.Protocol, m.Internal, f.Remote)
		}
	}
	return nil
}

// checkFilters4 checks the filters of an IPv4 mapping: IPv4 prefixes, or
// IPv4-mapped IPv6 ones.
func checkFilters4(m gateway.Mapping) error {
	for _, f := range m.Filters {
		if a := f.Remote.Addr(); !f.Remote.IsValid() || !(a.Is4() || a.Is4In6() && f.Remote.Bits() >= 96) {
			return fmt.Errorf("fwplan: mapping %v %d: filter %v is not IPv4", m.Protocol, m.ExternalPort, f.Remote)
		}
	}
	return nil
}

// removePin removes pinhole k and its filters, if held.
func (s *State) removePin(k pinKey) {
	if _, held := s.pins[k]; held {
		s.b.pins.write(s.pins, k, nanos{}, false)
		s.b.pinFilters.write(s.pinFilters, k, nil, false)
	}
}

// putPin adds or renews pinhole m.
func (s *State) putPin(now time.Time, m gateway.Mapping) {
	k := pinKeyOf(m)
	fs := effectiveFilters(m.Filters)
	d := nanosOf(s.deadline(now, s.kernelTimeout(m.Lifetime)))
	if s.b == nil { // Wanted
		set(s.pins, k, d, true)
		set(s.pinFilters, k, fs, len(fs) > 0)
		return
	}
	s.b.pins.write(s.pins, k, d, true)
	s.b.pinFilters.write(s.pinFilters, k, fs, len(fs) > 0)
}

// setFilters4 writes the filters of IPv4 mapping k: none when it is
// removed or admits every peer.
func (s *State) setFilters4(k inKey, fs []gateway.Filter) {
	_, had := s.filters4[k]
	switch {
	case !had && len(fs) == 0:
	case s.b == nil: // Wanted
		set(s.filters4, k, fs, len(fs) > 0)
	default:
		s.b.filters4.write(s.filters4, k, fs, len(fs) > 0)
	}
}

// peerElements adds to p the elements of the pinholes and filtered IPv4
// mappings of the pending batch: each one touched has all its old
// elements deleted and its new ones added.
func (s *State) peerElements(now time.Time, p *Plan) {
	b := s.b
	for i, k := range b.pins.keys {
		if b.pins.old[i].held {
			j := b.pinFilters.find(k)
			p.DelPin = append(p.DelPin, Pinhole{Protocol: k.proto, Internal: k.internal(), Filters: b.pinFilters.old[j].v})
		}
		if d, held := s.pins[k]; held {
			p.AddPin = append(p.AddPin, Pinhole{k.proto, k.internal(), s.pinFilters[k], s.until(now, d.int64())})
		}
	}
	for i, k := range b.filters4.keys {
		if old := b.filters4.old[i]; old.held {
			p.DelFiltered = append(p.DelFiltered, Filtered{Protocol: k.proto, ExternalPort: k.eport, Filters: old.v})
		}
		if fs, held := s.filters4[k]; held {
			p.AddFiltered = append(p.AddFiltered, Filtered{k.proto, k.eport, fs, s.until(now, s.in[k].deadline.int64())})
		}
	}
}
