package gateway

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
)

// MaxFilters is the most filters one mapping may carry. A PCP request of
// the largest size (1100 bytes, RFC 6887 §7) holds 43 FILTER options.
const MaxFilters = 64

// normaliseFilters returns fs as the kernel is given them: each prefix
// masked and of the family of internal (an IPv4-mapped prefix of /96 or
// longer is taken as IPv4), sorted by address, prefix length and port,
// without duplicates and without a filter that another covers (a wider or
// equal prefix with port 0 or the same port). A filter of any address and
// any port admits every peer: the result is then empty.
//
// Two filters that overlap without one covering the other (10.0.0.0/8 port
// 80 and 10.1.0.0/16 any port) have no normal form as a set of disjoint
// elements and are refused with ErrBadRequest, as are an invalid prefix,
// one of the other family and more than MaxFilters filters.
func normaliseFilters(fs []Filter, internal netip.Addr) ([]Filter, error) {
	if len(fs) == 0 {
		return nil, nil
	}
	if len(fs) > MaxFilters {
		return nil, fmt.Errorf("%w: %d filters (at most %d)", ErrBadRequest, len(fs), MaxFilters)
	}
	out := make([]Filter, 0, len(fs))
	for _, f := range fs {
		p := f.Remote
		if !p.IsValid() {
			return nil, fmt.Errorf("%w: filter prefix %v", ErrBadRequest, p)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if p.Addr().Zone() != "" || p.Addr().Is4() != internal.Is4() {
			return nil, fmt.Errorf("%w: filter prefix %v for internal address %v", ErrBadRequest, f.Remote, internal)
		}
		out = append(out, Filter{Remote: p.Masked(), Port: f.Port})
	}
	slices.SortFunc(out, compareFilters)
	out = slices.Compact(out)
	// Covered filters go; a wider prefix sorts before the narrower ones it
	// holds, so each filter is checked against those kept before it.
	kept := out[:0]
	for _, f := range out {
		covered := false
		for _, k := range kept {
			if !k.Remote.Overlaps(f.Remote) || k.Port != 0 && f.Port != 0 && k.Port != f.Port {
				continue // disjoint
			}
			if k.Remote.Bits() <= f.Remote.Bits() && (k.Port == 0 || k.Port == f.Port) {
				covered = true
				break
			}
			return nil, fmt.Errorf("%w: filters %v port %d and %v port %d overlap", ErrBadRequest, k.Remote, k.Port, f.Remote, f.Port)
		}
		if !covered {
			kept = append(kept, f)
		}
	}
	if len(kept) == 1 && kept[0].Remote.Bits() == 0 && kept[0].Port == 0 {
		return nil, nil
	}
	return slices.Clip(kept), nil
}

// compareFilters orders filters by address, then wider prefix first, then
// port.
func compareFilters(a, b Filter) int {
	return cmp.Or(a.Remote.Addr().Compare(b.Remote.Addr()), cmp.Compare(a.Remote.Bits(), b.Remote.Bits()), cmp.Compare(a.Port, b.Port))
}
