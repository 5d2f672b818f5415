package control

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/portlease/portlease/gateway"
)

// fakeTable is a Table over a slice of leases.
type fakeTable struct {
	mu       sync.Mutex
	leases   []gateway.Lease
	limit    int
	counters gateway.Counters
}

func (f *fakeTable) Leases() []gateway.Lease {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.leases)
}

func (f *fakeTable) find(match func(gateway.Lease) bool) (int, bool) {
	i := slices.IndexFunc(f.leases, match)
	return i, i >= 0
}

func (f *fakeTable) LookupExternal(p gateway.Protocol, port uint16) (gateway.Lease, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, ok := f.find(func(l gateway.Lease) bool { return !l.Pinhole && l.Protocol == p && l.ExternalPort == port })
	if !ok {
		return gateway.Lease{}, false
	}
	return f.leases[i], true
}

func (f *fakeTable) Pinhole(id uint16) (gateway.Lease, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, ok := f.find(func(l gateway.Lease) bool { return l.Pinhole && l.PinholeID == id })
	if !ok {
		return gateway.Lease{}, false
	}
	return f.leases[i], true
}

func (f *fakeTable) remove(match func(gateway.Lease) bool) []gateway.Lease {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []gateway.Lease
	f.leases = slices.DeleteFunc(f.leases, func(l gateway.Lease) bool {
		if match(l) {
			out = append(out, l)
			return true
		}
		return false
	})
	return out
}

func (f *fakeTable) DeleteByOperator(_ context.Context, p gateway.Protocol, port uint16) (gateway.Lease, error) {
	out := f.remove(func(l gateway.Lease) bool { return !l.Pinhole && l.Protocol == p && l.ExternalPort == port })
	if len(out) == 0 {
		return gateway.Lease{}, gateway.ErrNotFound
	}
	return out[0], nil
}

func (f *fakeTable) DeletePinholeByOperator(_ context.Context, id uint16) (gateway.Lease, error) {
	out := f.remove(func(l gateway.Lease) bool { return l.Pinhole && l.PinholeID == id })
	if len(out) == 0 {
		return gateway.Lease{}, gateway.ErrNotFound
	}
	return out[0], nil
}

func (f *fakeTable) DeleteHost(_ context.Context, host netip.Addr) []gateway.Lease {
	return f.remove(func(l gateway.Lease) bool { return l.Internal.Addr() == host })
}

func (f *fakeTable) Policy() gateway.Policy      { return gateway.Policy{MaxPerHost: f.limit} }
func (f *fakeTable) ExternalAddress() netip.Addr { return netip.MustParseAddr("203.0.113.1") }
func (f *fakeTable) Counters() gateway.Counters  { return f.counters }

var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// newFake returns a table of: two NAT-PMP leases and a UPnP one of
// 198.51.100.2, a PCP lease (with a nonce and a filter) of 198.51.100.3,
// a permanent UPnP lease of 198.51.100.3, and a pinhole of 2001:db8:1::2.
func newFake() *fakeTable {
	h2, h3 := netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.3")
	v6 := netip.MustParseAddr("2001:db8:1::2")
	exp := testNow.Add(time.Hour)
	return &fakeTable{limit: 1024, leases: []gateway.Lease{
		{Protocol: gateway.UDP, ExternalPort: 40001, Internal: netip.AddrPortFrom(h2, 5000), Origin: gateway.OriginNATPMP, Created: testNow, Expires: exp},
		{Protocol: gateway.TCP, ExternalPort: 40000, Internal: netip.AddrPortFrom(h2, 5000), Origin: gateway.OriginNATPMP, Created: testNow, Expires: exp},
		{Protocol: gateway.TCP, ExternalPort: 40100, Internal: netip.AddrPortFrom(h2, 8080), Origin: gateway.OriginUPnP, Description: "web", Created: testNow, Expires: exp},
		{Protocol: gateway.TCP, ExternalPort: 40200, Internal: netip.AddrPortFrom(h3, 22), Origin: gateway.OriginPCP, Nonce: [12]byte{1},
			Filters: []gateway.Filter{{Remote: netip.MustParsePrefix("203.0.113.9/32"), Port: 0}}, Created: testNow, Expires: exp.Add(-30 * time.Minute)},
		{Protocol: gateway.UDP, ExternalPort: 40300, Internal: netip.AddrPortFrom(h3, 53), Origin: gateway.OriginUPnP, Created: testNow},
		{Protocol: gateway.TCP, ExternalPort: 8080, Internal: netip.AddrPortFrom(v6, 8080), Origin: gateway.OriginPCP, Pinhole: true, PinholeID: 7, Created: testNow, Expires: exp},
	}}
}
