package gateway

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// testClock is a clock that moves only when told.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// newObservedTable returns a table with a fake firewall, a journal and a
// clock of the test's own.
func newObservedTable(t *testing.T, p Policy) (*Table, *recordingFirewall, *recordingJournal, *testClock) {
	t.Helper()
	fw, j, clock := newRecordingFirewall(), &recordingJournal{}, newTestClock()
	tab := New(Config{Policy: p, Firewall: fw, Journal: j, Now: clock.Now, Rand: rand.New(rand.NewPCG(1, 2))})
	return tab, fw, j, clock
}

// newEvents returns the events after *seen and moves *seen on.
func newEvents(t *testing.T, tab *Table, seen *uint64) []Event {
	t.Helper()
	events, newest := tab.Events(*seen)
	if len(events) > 0 && events[len(events)-1].Seq != newest {
		t.Fatalf("Events' newest = %d; the last event returned is %d", newest, events[len(events)-1].Seq)
	}
	*seen = newest
	return events
}

// wantEvent checks an event's kind, Reason, Requester and lease.
func wantEvent(t *testing.T, e Event, kind EventKind, reason string, requester netip.Addr, p Protocol, internal netip.AddrPort, eport uint16) {
	t.Helper()
	if e.Kind != kind || e.Reason != reason || e.Requester != requester || e.Lease.Protocol != p || e.Lease.Internal != internal || e.Lease.ExternalPort != eport {
		t.Fatalf("event %+v; want %v reason %q requester %v, %v %v -> %d", e, kind, reason, requester, p, internal, eport)
	}
}

// TestEventsOfLeases: a grant, a renewal, a client's deletion and the
// operator's deletions of a lease, a pinhole and a host's leases each
// leave one event, numbered in the table's order, with the time, the
// requester (of Map's events) and who deleted.
func TestEventsOfLeases(t *testing.T) {
	tab, fw, _, clock := newObservedTable(t, dualPolicy())
	ctx := context.Background()
	var seen uint64

	req := mapReq(TCP, client1, 4000, 4000)
	req.Requester = client2 // a third party
	mustMap(t, tab, req)
	events := newEvents(t, tab, &seen)
	if len(events) != 1 || events[0].Seq != 1 || !events[0].Time.Equal(clock.Now()) {
		t.Fatalf("after a grant: %+v; want one event, Seq 1, at %v", events, clock.Now())
	}
	wantEvent(t, events[0], EventGranted, "", client2, TCP, req.Internal, 4000)
	if events[0].Lease.Origin != OriginNATPMP || events[0].Lease.Expires.IsZero() {
		t.Fatalf("granted lease %+v; want NAT-PMP with an end", events[0].Lease)
	}

	clock.advance(time.Minute)
	mustMap(t, tab, req)
	events = newEvents(t, tab, &seen)
	if len(events) != 1 || events[0].Seq != 2 || !events[0].Time.Equal(clock.Now()) {
		t.Fatalf("after a renewal: %+v; want one event, Seq 2, at %v", events, clock.Now())
	}
	wantEvent(t, events[0], EventRenewed, "", client2, TCP, req.Internal, 4000)

	if _, err := tab.Delete(ctx, TCP, req.Internal); err != nil {
		t.Fatal(err)
	}
	events = newEvents(t, tab, &seen)
	if len(events) != 1 {
		t.Fatalf("after a deletion: %+v; want one event", events)
	}
	wantEvent(t, events[0], EventDeleted, ReasonClient, netip.Addr{}, TCP, req.Internal, 4000)

	up := upnpReq(UDP, client1, 5000, 5001)
	mustMap(t, tab, up)
	if _, err := tab.DeleteByOperator(ctx, UDP, 5001); err != nil {
		t.Fatal(err)
	}
	if _, ok := fw.has(UDP, 5001); ok {
		t.Fatal("the operator's deletion left the mapping in the kernel")
	}
	if _, err := tab.DeleteByOperator(ctx, UDP, 5001); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DeleteByOperator of a free port = %v; want ErrNotFound", err)
	}
	events = newEvents(t, tab, &seen)
	if len(events) != 2 {
		t.Fatalf("after a grant and the operator's deletion: %+v; want two events", events)
	}
	wantEvent(t, events[0], EventGranted, "", client1, UDP, up.Internal, 5001)
	wantEvent(t, events[1], EventDeleted, ReasonOperator, netip.Addr{}, UDP, up.Internal, 5001)

	ph := mustMap(t, tab, pinholeReq(TCP, host6, 8080))
	if _, err := tab.DeletePinholeByOperator(ctx, ph.PinholeID); err != nil {
		t.Fatal(err)
	}
	if _, ok := fw.heldPinhole(TCP, ph.Internal); ok {
		t.Fatal("the operator's deletion left the pinhole in the kernel")
	}
	if _, err := tab.DeletePinholeByOperator(ctx, ph.PinholeID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DeletePinholeByOperator of a free UniqueID = %v; want ErrNotFound", err)
	}
	events = newEvents(t, tab, &seen)
	if len(events) != 2 || !events[1].Lease.Pinhole || events[1].Lease.PinholeID != ph.PinholeID {
		t.Fatalf("after a pinhole and its deletion: %+v; want two events of pinhole %d", events, ph.PinholeID)
	}
	wantEvent(t, events[1], EventDeleted, ReasonOperator, netip.Addr{}, TCP, ph.Internal, 8080)

	// A host's leases of every protocol and origin go; another host's stay.
	mustMap(t, tab, mapReq(TCP, client1, 4000, 4000))
	mustMap(t, tab, upnpReq(UDP, client1, 5000, 5000))
	mustMap(t, tab, mapReq(TCP, client2, 4000, 4100))
	newEvents(t, tab, &seen)
	gone := tab.DeleteHost(ctx, client1)
	if len(gone) != 2 || gone[0].Protocol != TCP || gone[1].Protocol != UDP {
		t.Fatalf("DeleteHost removed %+v; want client1's TCP 4000 and UDP 5000", gone)
	}
	if tab.Len() != 1 || fw.len() != 1 {
		t.Fatalf("after DeleteHost: table %d, kernel %d; want client2's lease alone", tab.Len(), fw.len())
	}
	events = newEvents(t, tab, &seen)
	if len(events) != 2 {
		t.Fatalf("after DeleteHost: %+v; want two events", events)
	}
	wantEvent(t, events[0], EventDeleted, ReasonOperator, netip.Addr{}, TCP, netip.AddrPortFrom(client1, 4000), 4000)
	wantEvent(t, events[1], EventDeleted, ReasonOperator, netip.Addr{}, UDP, netip.AddrPortFrom(client1, 5000), 5000)
	if gone := tab.DeleteHost(ctx, client1); gone != nil {
		t.Fatalf("DeleteHost of a host without leases removed %+v", gone)
	}

	c := tab.Counters()
	if c.Granted[OriginNATPMP] != 3 || c.Granted[OriginUPnP] != 2 || c.Granted[OriginPCP] != 1 || c.Renewed[OriginNATPMP] != 1 ||
		c.Deleted[OriginNATPMP] != 2 || c.Deleted[OriginUPnP] != 2 || c.Deleted[OriginPCP] != 1 {
		t.Fatalf("counters %+v; want granted natpmp 3 upnp 2 pcp 1, renewed natpmp 1, deleted natpmp 2 upnp 2 pcp 1", c)
	}
}

// TestEventsOfRulesAndLANs: a reload's rules and a LAN that goes away
// record their own Reason.
func TestEventsOfRulesAndLANs(t *testing.T) {
	tab, _, _, _ := newObservedTable(t, dualPolicy())
	ctx := context.Background()
	var seen uint64
	mustMap(t, tab, mapReq(TCP, client1, 4000, 4000))
	mustMap(t, tab, mapReq(TCP, client2, 4000, 4001))
	mustMap(t, tab, pinholeReq(UDP, host6, 6000))
	newEvents(t, tab, &seen)

	p := dualPolicy()
	p.Rules[0].Internal = netip.PrefixFrom(client1, 32)
	if gone := tab.Reconfigure(ctx, p); len(gone) != 1 {
		t.Fatalf("Reconfigure removed %+v; want client2's lease", gone)
	}
	events := newEvents(t, tab, &seen)
	if len(events) != 1 {
		t.Fatalf("after Reconfigure: %+v; want one event", events)
	}
	wantEvent(t, events[0], EventDeleted, ReasonRules, netip.Addr{}, TCP, netip.AddrPortFrom(client2, 4000), 4001)

	gone := tab.DeleteInside(ctx, []netip.Prefix{lan6, netip.MustParsePrefix("192.0.2.0/24")})
	if len(gone) != 1 || !gone[0].Pinhole {
		t.Fatalf("DeleteInside removed %+v; want the pinhole", gone)
	}
	events = newEvents(t, tab, &seen)
	if len(events) != 1 {
		t.Fatalf("after DeleteInside: %+v; want one event", events)
	}
	wantEvent(t, events[0], EventDeleted, ReasonLANGone, netip.Addr{}, UDP, netip.AddrPortFrom(host6, 6000), 6000)
	if tab.Len() != 1 {
		t.Fatalf("%d leases left; want client1's", tab.Len())
	}
}

// TestEventExpiry: a lease that ends leaves an expiry, without a Reason,
// at the time of the expiry loop's turn.
func TestEventExpiry(t *testing.T) {
	tab, fw, _, clock := newObservedTable(t, defaultPolicy())
	var seen uint64
	req := mapReq(UDP, client1, 5000, 5000)
	req.Lifetime = time.Minute
	mustMap(t, tab, req)
	newEvents(t, tab, &seen)
	clock.advance(2 * time.Minute)
	tab.expire()
	if _, ok := fw.has(UDP, 5000); ok {
		t.Fatal("the expired lease is still in the kernel")
	}
	events := newEvents(t, tab, &seen)
	if len(events) != 1 || !events[0].Time.Equal(clock.Now()) {
		t.Fatalf("after the lease's end: %+v; want one event at %v", events, clock.Now())
	}
	wantEvent(t, events[0], EventExpired, "", netip.Addr{}, UDP, req.Internal, 5000)
	if c := tab.Counters(); c.Expired[OriginNATPMP] != 1 || c.Deleted != [4]uint64{} {
		t.Fatalf("counters %+v; want one NAT-PMP expiry and no deletion", c)
	}
}

// TestEventsOfRefusals: each refusal is an event with what was asked and
// who asked, and is counted under its reason; every reason is in the
// counters, zero or not.
func TestEventsOfRefusals(t *testing.T) {
	p := defaultPolicy()
	p.MaxPerHost = 1
	tab, _, _, _ := newObservedTable(t, p)
	var seen uint64
	mustMap(t, tab, mapReq(TCP, client1, 4000, 4000))
	newEvents(t, tab, &seen)

	over := mapReq(UDP, client1, 4001, 4002)
	over.Requester = client2
	outside := mapReq(TCP, netip.MustParseAddr("192.0.2.7"), 4000, 0)
	bad := mapReq(TCP, client2, 4000, 0)
	bad.Lifetime = 0
	for _, c := range []struct {
		req       MapRequest
		err       error
		reason    string
		requester netip.Addr
	}{
		{over, ErrHostQuota, ReasonHostQuota, client2},
		{outside, ErrNotAuthorized, ReasonNotAllowed, outside.Internal.Addr()},
		{bad, ErrBadRequest, ReasonBadRequest, client2},
	} {
		if _, err := tab.Map(context.Background(), c.req); !errors.Is(err, c.err) {
			t.Fatalf("Map(%v) = %v; want %v", c.req.Internal, err, c.err)
		}
		events := newEvents(t, tab, &seen)
		if len(events) != 1 {
			t.Fatalf("after a refusal (%v): %+v; want one event", c.err, events)
		}
		wantEvent(t, events[0], EventRefused, c.reason, c.requester, c.req.Protocol, c.req.Internal, c.req.ExternalPort)
		if events[0].Lease.Origin != OriginNATPMP {
			t.Fatalf("refusal's lease %+v; want the origin asked", events[0].Lease)
		}
	}
	got := tab.Counters().Refused
	want := map[string]uint64{ReasonHostQuota: 1, ReasonNotAllowed: 1, ReasonBadRequest: 1,
		ReasonOutOfResources: 0, ReasonConflict: 0, ReasonNonceMismatch: 0}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Counters().Refused = %v; want %v", got, want)
	}
}

// TestEventsNotApplied: a grant that the kernel refuses is taken back: a
// grant and its deletion as not applied, and a failed transaction.
func TestEventsNotApplied(t *testing.T) {
	tab, fw, _, _ := newObservedTable(t, defaultPolicy())
	fw.fail = func(add, remove []Mapping) error { return errors.New("netlink: broken") }
	if _, err := tab.Map(context.Background(), mapReq(TCP, client1, 4000, 4000)); !errors.Is(err, ErrFirewall) {
		t.Fatalf("Map = %v; want ErrFirewall", err)
	}
	events, _ := tab.Events(0)
	if len(events) != 2 {
		t.Fatalf("events %+v; want a grant and its deletion", events)
	}
	wantEvent(t, events[0], EventGranted, "", client1, TCP, netip.AddrPortFrom(client1, 4000), 4000)
	wantEvent(t, events[1], EventDeleted, ReasonNotApplied, netip.Addr{}, TCP, netip.AddrPortFrom(client1, 4000), 4000)
	// The grant's transaction failed; the take-back's removal too.
	if c := tab.Counters(); c.Transactions != 2 || c.TransactionFailures != 2 || c.Granted[OriginNATPMP] != 1 || c.Deleted[OriginNATPMP] != 1 {
		t.Fatalf("counters %+v; want 2 transactions, both failed, one grant and one deletion", c)
	}
}

// TestEventsRing: the ring keeps the last EventBacklog events; Events
// returns those after the Seq given, oldest first, and the newest Seq.
func TestEventsRing(t *testing.T) {
	tab, _, _, _ := newObservedTable(t, defaultPolicy())
	if events, newest := tab.Events(0); events != nil || newest != 0 {
		t.Fatalf("Events of a new table = %v, %d; want none, 0", events, newest)
	}
	req := mapReq(TCP, client1, 4000, 4000)
	const total = EventBacklog + 10
	for range total {
		mustMap(t, tab, req) // a grant, then renewals
	}
	events, newest := tab.Events(0)
	if newest != total || len(events) != EventBacklog || events[0].Seq != total-EventBacklog+1 {
		t.Fatalf("Events(0) after %d events: %d events from Seq %d, newest %d; want %d from %d, newest %d",
			total, len(events), events[0].Seq, newest, EventBacklog, total-EventBacklog+1, total)
	}
	for i, e := range events {
		if e.Seq != events[0].Seq+uint64(i) || e.Kind != EventRenewed {
			t.Fatalf("event %d: %+v; want renewal Seq %d", i, e, events[0].Seq+uint64(i))
		}
	}
	if events, newest := tab.Events(total - 3); len(events) != 3 || events[0].Seq != total-2 || newest != total {
		t.Fatalf("Events(newest-3) = %d events from %v, newest %d; want 3 from %d", len(events), events, newest, total-2)
	}
	if events, newest := tab.Events(total); events != nil || newest != total {
		t.Fatalf("Events(newest) = %v, %d; want none, %d", events, newest, total)
	}
	if events, newest := tab.Events(total + 5); events != nil || newest != total {
		t.Fatalf("Events(beyond newest) = %v, %d; want none, %d", events, newest, total)
	}
	if events, _ := tab.Events(5); len(events) != EventBacklog || events[0].Seq != total-EventBacklog+1 {
		t.Fatalf("Events(5), fallen behind: %d events from Seq %d; want the last %d", len(events), events[0].Seq, EventBacklog)
	}
}

// TestAddressHistory: each change of the external address, its loss
// included, is kept with its time, the last AddressHistoryLen of them.
func TestAddressHistory(t *testing.T) {
	tab, _, _, clock := newObservedTable(t, defaultPolicy())
	if h := tab.AddressHistory(); len(h) != 0 {
		t.Fatalf("history of a new table: %v", h)
	}
	a := netip.MustParseAddr("203.0.113.1")
	b := netip.MustParseAddr("203.0.113.2")
	tab.SetExternalAddress(a)
	t0 := clock.Now()
	clock.advance(time.Second)
	tab.SetExternalAddress(a) // no change
	tab.SetExternalAddress(netip.Addr{})
	t1 := clock.Now()
	clock.advance(time.Second)
	tab.SetExternalAddress(b)
	want := []AddressChange{{t0, a}, {t1, netip.Addr{}}, {clock.Now(), b}}
	if got := tab.AddressHistory(); !slices.Equal(got, want) {
		t.Fatalf("AddressHistory = %v; want %v", got, want)
	}
	for i := range AddressHistoryLen + 4 {
		clock.advance(time.Second)
		tab.SetExternalAddress(netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + i)}))
	}
	h := tab.AddressHistory()
	if len(h) != AddressHistoryLen || h[len(h)-1].Addr != tab.ExternalAddress() || !h[len(h)-1].Time.Equal(clock.Now()) {
		t.Fatalf("AddressHistory after %d changes: %v; want %d, the current address last", AddressHistoryLen+7, h, AddressHistoryLen)
	}
	if first := netip.AddrFrom4([4]byte{203, 0, 113, 14}); h[0].Addr != first {
		t.Fatalf("oldest kept %v; want %v", h[0].Addr, first)
	}
}

// TestUsage: every host holding leases, by address, with its count
// across protocols and origins and the policy's share.
func TestUsage(t *testing.T) {
	p := dualPolicy()
	p.MaxPerHost = 5
	tab, _, _, _ := newObservedTable(t, p)
	mustMap(t, tab, mapReq(TCP, client2, 4000, 0))
	mustMap(t, tab, mapReq(TCP, client1, 4000, 0))
	mustMap(t, tab, upnpReq(UDP, client1, 4000, 4500))
	mustMap(t, tab, pinholeReq(UDP, host6, 4000))
	want := []HostUsage{{client1, 2, 5}, {client2, 1, 5}, {host6, 1, 5}}
	if got := tab.Usage(); !slices.Equal(got, want) {
		t.Fatalf("Usage = %v; want %v", got, want)
	}
	p.MaxPerHost = 0
	tab.Reconfigure(context.Background(), p)
	tab.DeleteHost(context.Background(), client1)
	want = []HostUsage{{client2, 1, 0}, {host6, 1, 0}}
	if got := tab.Usage(); !slices.Equal(got, want) {
		t.Fatalf("Usage after DeleteHost, without a share = %v; want %v", got, want)
	}
}

// TestLeaseCounts: the leases by protocol and origin, pinholes included,
// as Leases would count them.
func TestLeaseCounts(t *testing.T) {
	tab, _, _, _ := newObservedTable(t, dualPolicy())
	mustMap(t, tab, mapReq(TCP, client2, 4000, 0))
	mustMap(t, tab, mapReq(TCP, client1, 4000, 0))
	mustMap(t, tab, upnpReq(UDP, client1, 4000, 4500))
	mustMap(t, tab, pinholeReq(UDP, host6, 4000))
	got := tab.LeaseCounts()
	want := map[Protocol][4]int{}
	for _, l := range tab.Leases() {
		c := want[l.Protocol]
		c[l.Origin]++
		want[l.Protocol] = c
	}
	if !maps.Equal(got, want) || got[TCP][OriginNATPMP] != 2 || got[UDP][OriginUPnP] != 1 {
		t.Errorf("LeaseCounts = %v; want %v", got, want)
	}
}

// TestCountersOfTransactions: every Apply and Reconcile is counted with
// its size in its bucket, and every journal write.
func TestCountersOfTransactions(t *testing.T) {
	tab, fw, j, _ := newObservedTable(t, defaultPolicy())
	ctx := context.Background()
	req := mapReq(TCP, client1, 4000, 4000)
	mustMap(t, tab, req) // 1 mapping
	mustMap(t, tab, req) // renewal: removed and added, 2
	for i := range 1100 {
		addr := netip.AddrFrom4([4]byte{198, 51, 100, byte(20 + i/100)})
		mustMap(t, tab, mapReq(UDP, addr, uint16(2000+i%100), 0))
	}
	if _, err := tab.Resync(); err != nil { // 1101 mappings
		t.Fatal(err)
	}
	if fw.reconciles != 1 {
		t.Fatalf("%d reconciliations; want 1", fw.reconciles)
	}
	fw.fail = func(add, remove []Mapping) error { return errors.New("netlink: broken") }
	if _, err := tab.Resync(); err == nil { // 1101 mappings, failed
		t.Fatal("Resync with a failing kernel succeeded")
	}
	fw.fail = nil

	c := tab.Counters()
	want := [7]uint64{1101, 1, 0, 0, 0, 0, 2} // 1,100 grants and the first; the renewal; the reconciliations
	if c.Transactions != 1104 || c.TransactionFailures != 1 || c.TransactionSizes != want || c.TransactionMappings != 1101+2+2*1101 {
		t.Fatalf("transactions %d (failed %d), sizes %v, mappings %d; want 1104 (1), %v, %d",
			c.Transactions, c.TransactionFailures, c.TransactionSizes, c.TransactionMappings, want, 1101+2+2*1101)
	}
	commits := uint64(j.commits)
	if c.JournalCommits != commits || c.JournalFailures != 0 {
		t.Fatalf("journal commits %d (failed %d); want %d (0)", c.JournalCommits, c.JournalFailures, commits)
	}

	j.mu.Lock()
	j.fail = errors.New("disk full")
	j.mu.Unlock()
	if _, err := tab.Map(ctx, mapReq(TCP, client2, 4000, 0)); !errors.Is(err, ErrJournal) {
		t.Fatalf("Map with a failing journal = %v; want ErrJournal", err)
	}
	j.mu.Lock()
	j.fail = nil
	j.mu.Unlock()
	if _, err := tab.Resync(); err != nil { // replaces the journal
		t.Fatal(err)
	}
	c = tab.Counters()
	if j.replaces != 1 || c.JournalFailures != 1 || c.JournalCommits != uint64(j.commits)+uint64(j.replaces)+1 {
		t.Fatalf("journal writes %d (failed %d); the journal took %d commits and %d replaces, and one failed",
			c.JournalCommits, c.JournalFailures, j.commits, j.replaces)
	}
}

// BenchmarkEventAdd measures what an event costs a request under the
// table's lock: one write into the ring.
func BenchmarkEventAdd(b *testing.B) {
	var r eventRing
	l := Lease{Protocol: TCP, Internal: netip.AddrPortFrom(client1, 4000), ExternalPort: 4000, Origin: OriginNATPMP, Description: "web"}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		r.add(now, EventRenewed, &l, client1, "")
	}
}
