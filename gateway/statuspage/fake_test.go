package statuspage

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/portlease/portlease/gateway"
)

// fakeTable is a Table in memory: its leases, events and address as the
// test sets them, and a log of the deletions asked of it.
type fakeTable struct {
	mu       sync.Mutex
	leases   []gateway.Lease
	events   []gateway.Event
	history  []gateway.AddressChange
	usage    []gateway.HostUsage
	external netip.Addr
	start    time.Time
	policy   gateway.Policy
	watchers map[int]func()
	nextID   int
	deleted  []string // "external tcp 8080", "pinhole 3", "host 198.51.100.2"
	reads    int      // calls of Leases
}

func newFake() *fakeTable {
	return &fakeTable{
		external: netip.MustParseAddr("203.0.113.1"),
		start:    time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		policy:   gateway.Policy{MaxPerHost: 4},
		watchers: make(map[int]func()),
	}
}

func (f *fakeTable) Leases() []gateway.Lease {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return slices.Clone(f.leases)
}

func (f *fakeTable) ExternalAddress() netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.external
}

func (f *fakeTable) Epoch() uint32 { return uint32(time.Since(f.EpochStart()) / time.Second) }

func (f *fakeTable) EpochStart() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.start
}

func (f *fakeTable) Policy() gateway.Policy { return f.policy }

func (f *fakeTable) Events(after uint64) ([]gateway.Event, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []gateway.Event
	for _, e := range f.events {
		if e.Seq > after {
			out = append(out, e)
		}
	}
	var newest uint64
	if len(f.events) > 0 {
		newest = f.events[len(f.events)-1].Seq
	}
	return out, newest
}

func (f *fakeTable) AddressHistory() []gateway.AddressChange {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.history)
}

func (f *fakeTable) Usage() []gateway.HostUsage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.usage)
}

func (f *fakeTable) Watch(fn func()) (stop func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.nextID
	f.nextID++
	f.watchers[id] = fn
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.watchers, id)
	}
}

func (f *fakeTable) watching() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.watchers)
}

// change runs fn on the table, then tells the watchers.
func (f *fakeTable) change(fn func(f *fakeTable)) {
	f.mu.Lock()
	fn(f)
	fns := make([]func(), 0, len(f.watchers))
	for _, w := range f.watchers {
		fns = append(fns, w)
	}
	f.mu.Unlock()
	for _, w := range fns {
		w()
	}
}

// add adds a lease and tells the watchers.
func (f *fakeTable) add(l gateway.Lease) {
	f.change(func(f *fakeTable) { f.leases = append(f.leases, l) })
}

// removeWhere removes the leases for which match reports true.
func (f *fakeTable) removeWhere(what string, match func(gateway.Lease) bool) []gateway.Lease {
	var out []gateway.Lease
	f.change(func(f *fakeTable) {
		f.deleted = append(f.deleted, what)
		f.leases = slices.DeleteFunc(f.leases, func(l gateway.Lease) bool {
			if match(l) {
				out = append(out, l)
				return true
			}
			return false
		})
	})
	return out
}

func (f *fakeTable) DeleteByOperator(_ context.Context, p gateway.Protocol, port uint16) (gateway.Lease, error) {
	ls := f.removeWhere("external "+p.String()+" "+strconv.Itoa(int(port)), func(l gateway.Lease) bool {
		return !l.Pinhole && l.Protocol == p && l.ExternalPort == port
	})
	if len(ls) == 0 {
		return gateway.Lease{}, gateway.ErrNotFound
	}
	return ls[0], nil
}

func (f *fakeTable) DeletePinholeByOperator(_ context.Context, id uint16) (gateway.Lease, error) {
	ls := f.removeWhere("pinhole "+strconv.Itoa(int(id)), func(l gateway.Lease) bool { return l.Pinhole && l.PinholeID == id })
	if len(ls) == 0 {
		return gateway.Lease{}, gateway.ErrNotFound
	}
	return ls[0], nil
}

func (f *fakeTable) DeleteHost(_ context.Context, addr netip.Addr) []gateway.Lease {
	return f.removeWhere("host "+addr.String(), func(l gateway.Lease) bool { return l.Internal.Addr().Unmap() == addr.Unmap() })
}

func (f *fakeTable) deletions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.deleted)
}

var _ Table = (*fakeTable)(nil)
