package upnpsrv

import (
	"context"
	"net/netip"
	"time"

	"github.com/portlease/portlease/gateway"
)

// core is what the server needs of the lease core, *gateway.Table: the
// mappings by external key, the ordered view that the port-mapping listings
// of WANIPConnection walk in (protocol, external port) order at O(log n) a
// step, and word of every change for eventing.
type core interface {
	Map(ctx context.Context, req gateway.MapRequest) (gateway.MapResult, error)
	LookupExternal(p gateway.Protocol, port uint16) (gateway.Lease, bool)
	ExternalAddress() netip.Addr
	Len() int
	// LeaseAt returns the i-th lease (GetGenericPortMappingEntry).
	LeaseAt(i int) (gateway.Lease, bool)
	// LeasesInRange returns at most max leases of protocol p with an
	// external port from lo to hi, in port order (GetListOfPortMappings).
	LeasesInRange(p gateway.Protocol, lo, hi uint16, max int) []gateway.Lease
	// DeleteExternalRange removes the leases of protocol p with an
	// external port from lo to hi for which match reports true, and
	// returns them (DeletePortMapping, DeletePortMappingRange).
	DeleteExternalRange(ctx context.Context, p gateway.Protocol, lo, hi uint16, match func(gateway.Lease) bool) []gateway.Lease
	// Watch calls fn, which must not block, after every change of the
	// leases.
	Watch(fn func()) (stop func())
}

var _ core = (*gateway.Table)(nil)

// pinholeCore is what WANIPv6FirewallControl:1 needs of the lease core
// besides core: its IPv6 pinholes by UPnP UniqueID. Map with an IPv6
// Internal makes or renews a pinhole (ErrConflict: the endpoint has one
// with other filters). *gateway.Table has them; a core without them (a
// test's) gets no WANIPv6FirewallControl service. The errors are gateway.ErrNotFound
// for no live pinhole of that id, and those of Map.
type pinholeCore interface {
	Pinhole(id uint16) (gateway.Lease, bool)
	UpdatePinhole(ctx context.Context, id uint16, lifetime time.Duration) (gateway.MapResult, error)
	DeletePinhole(ctx context.Context, id uint16) (gateway.Lease, error)
}

var _ pinholeCore = (*gateway.Table)(nil)

// leaseTable is the lease core with the listing helpers of the server.
type leaseTable struct {
	core
}

func newLeaseTable(c core) leaseTable { return leaseTable{core: c} }

// leaseKey identifies a lease by its external side, the key of the
// listings' order.
type leaseKey struct {
	proto gateway.Protocol
	port  uint16
}

func keyOf(l gateway.Lease) leaseKey { return leaseKey{l.Protocol, l.ExternalPort} }

// at returns the i-th lease in listing order.
func (t leaseTable) at(i int) (gateway.Lease, bool) {
	if i < 0 {
		return gateway.Lease{}, false
	}
	return t.LeaseAt(i)
}

// after returns the first lease after k in listing order.
func (t leaseTable) after(k leaseKey) (gateway.Lease, bool) {
	for _, p := range [...]gateway.Protocol{gateway.TCP, gateway.UDP} {
		lo := uint16(0)
		switch {
		case p < k.proto:
			continue
		case p == k.proto && k.port == 0xFFFF:
			continue
		case p == k.proto:
			lo = k.port + 1
		}
		if ls := t.LeasesInRange(p, lo, 0xFFFF, 1); len(ls) > 0 {
			return ls[0], true
		}
	}
	return gateway.Lease{}, false
}

// inRange returns up to max leases of protocol p with an external port from
// lo to hi for which match reports true, in port order.
func (t leaseTable) inRange(p gateway.Protocol, lo, hi uint16, max int, match func(gateway.Lease) bool) []gateway.Lease {
	var out []gateway.Lease
	if max <= 0 || lo > hi {
		return nil
	}
	// Ask in chunks: match may leave out most of what the table holds.
	const chunk = 256
	for {
		ls := t.LeasesInRange(p, lo, hi, chunk)
		for _, l := range ls {
			if match(l) {
				out = append(out, l)
				if len(out) == max {
					return out
				}
			}
		}
		if len(ls) < chunk {
			return out
		}
		last := ls[len(ls)-1].ExternalPort
		if last >= hi {
			return out
		}
		lo = last + 1
	}
}
