package upnpsrv

import (
	"cmp"
	"context"
	"errors"
	"net/netip"
	"slices"

	"github.com/portlease/portlease/gateway"
)

// core is what the server needs of the lease core. *gateway.Table satisfies
// it; tests hide the optional methods below behind it to exercise the
// fallbacks.
type core interface {
	Map(ctx context.Context, req gateway.MapRequest) (gateway.MapResult, error)
	DeleteExternal(ctx context.Context, p gateway.Protocol, port uint16) (gateway.Lease, error)
	LookupExternal(p gateway.Protocol, port uint16) (gateway.Lease, bool)
	ExternalAddress() netip.Addr
	Len() int
	Leases() []gateway.Lease
}

// ordered is the ordered view of the lease table that the port-mapping
// listings of WANIPConnection need: leases in (protocol, external port)
// order, TCP before UDP. A table without it is served by sorting Leases,
// which costs O(n log n) a request instead of O(log n).
type ordered interface {
	// LeaseAt returns the i-th lease (GetGenericPortMappingEntry).
	LeaseAt(i int) (gateway.Lease, bool)
	// LeasesInRange returns at most max leases of protocol p with an
	// external port from lo to hi, in port order (GetListOfPortMappings).
	LeasesInRange(p gateway.Protocol, lo, hi uint16, max int) []gateway.Lease
	// DeleteExternalRange removes the leases of protocol p with an
	// external port from lo to hi for which match reports true, and
	// returns them (DeletePortMappingRange).
	DeleteExternalRange(ctx context.Context, p gateway.Protocol, lo, hi uint16, match func(gateway.Lease) bool) []gateway.Lease
}

// watcher tells of every change of the leases. fn must not block. A table
// without it is polled while somebody subscribes to events.
type watcher interface {
	Watch(fn func()) (stop func())
}

// leaseTable is the lease core as the server uses it: the optional methods
// when the table has them, fallbacks otherwise.
type leaseTable struct {
	core
	ord   ordered // nil: sort Leases
	watch watcher // nil: poll Len
}

func newLeaseTable(c core) leaseTable {
	t := leaseTable{core: c}
	t.ord, _ = c.(ordered)
	t.watch, _ = c.(watcher)
	return t
}

// leaseKey identifies a lease by its external side, the key of the
// listings' order.
type leaseKey struct {
	proto gateway.Protocol
	port  uint16
}

func keyOf(l gateway.Lease) leaseKey { return leaseKey{l.Protocol, l.ExternalPort} }

func compareKeys(a, b leaseKey) int {
	if c := cmp.Compare(a.proto, b.proto); c != 0 {
		return c
	}
	return cmp.Compare(a.port, b.port)
}

// sorted returns every lease in listing order (the fallback).
func (t leaseTable) sorted() []gateway.Lease {
	ls := t.Leases()
	slices.SortFunc(ls, func(a, b gateway.Lease) int { return compareKeys(keyOf(a), keyOf(b)) })
	return ls
}

// at returns the i-th lease in listing order.
func (t leaseTable) at(i int) (gateway.Lease, bool) {
	if i < 0 {
		return gateway.Lease{}, false
	}
	if t.ord != nil {
		return t.ord.LeaseAt(i)
	}
	ls := t.sorted()
	if i >= len(ls) {
		return gateway.Lease{}, false
	}
	return ls[i], true
}

// after returns the first lease after k in listing order.
func (t leaseTable) after(k leaseKey) (gateway.Lease, bool) {
	if t.ord == nil {
		for _, l := range t.sorted() {
			if compareKeys(keyOf(l), k) > 0 {
				return l, true
			}
		}
		return gateway.Lease{}, false
	}
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
		if ls := t.ord.LeasesInRange(p, lo, 0xFFFF, 1); len(ls) > 0 {
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
	if t.ord == nil {
		for _, l := range t.sorted() {
			if l.Protocol == p && l.ExternalPort >= lo && l.ExternalPort <= hi && match(l) {
				out = append(out, l)
				if len(out) == max {
					break
				}
			}
		}
		return out
	}
	// Ask in chunks: match may leave out most of what the table holds.
	const chunk = 256
	for {
		ls := t.ord.LeasesInRange(p, lo, hi, chunk)
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

// deleteRange removes the leases of protocol p from lo to hi that match
// reports true for. With the ordered table the check and the removal are
// one step of the table; the fallback looks each one up again just before
// removing it.
func (t leaseTable) deleteRange(ctx context.Context, p gateway.Protocol, lo, hi uint16, match func(gateway.Lease) bool) ([]gateway.Lease, error) {
	if t.ord != nil {
		return t.ord.DeleteExternalRange(ctx, p, lo, hi, match), nil
	}
	var out []gateway.Lease
	for _, l := range t.inRange(p, lo, hi, 1<<17, match) {
		cur, ok := t.LookupExternal(p, l.ExternalPort)
		if !ok || cur.Internal != l.Internal || !match(cur) {
			continue
		}
		gone, err := t.DeleteExternal(ctx, p, l.ExternalPort)
		switch {
		case errors.Is(err, gateway.ErrNotFound):
		case err != nil:
			return out, err
		default:
			out = append(out, gone)
		}
	}
	return out, nil
}
