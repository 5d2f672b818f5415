package gateway

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// recordingFirewall is a Firewall that keeps what it was told, as the kernel
// would, and can be made to fail.
type recordingFirewall struct {
	mu         sync.Mutex
	held       map[kernelKey]Mapping
	applies    int
	reconciles int
	fail       func(add, remove []Mapping) error
}

func newRecordingFirewall() *recordingFirewall {
	return &recordingFirewall{held: make(map[kernelKey]Mapping)}
}

func (f *recordingFirewall) Apply(_ context.Context, add, remove []Mapping) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(add, remove); err != nil {
			return err
		}
	}
	f.applies++
	for _, m := range remove {
		delete(f.held, kernelKeyOf(&m))
	}
	for _, m := range add {
		if _, dup := f.held[kernelKeyOf(&m)]; dup {
			return fmt.Errorf("element %v exists", kernelKeyOf(&m))
		}
		f.held[kernelKeyOf(&m)] = m
	}
	return nil
}

// Reconcile makes the recorded state want, counting as the kernel backend
// does.
// List returns what the fake kernel holds.
func (f *recordingFirewall) List(context.Context) ([]Mapping, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Collect(maps.Values(f.held)), nil
}

// The table calls none of these.
func (f *recordingFirewall) SetExternalAddress(context.Context, netip.Addr) error  { return nil }
func (f *recordingFirewall) SetInterfaces(context.Context, string, []string) error { return nil }
func (f *recordingFirewall) Watch(ctx context.Context, _, _ func()) error {
	<-ctx.Done()
	return ctx.Err()
}
func (f *recordingFirewall) Release() error { return nil }

func (f *recordingFirewall) Reconcile(_ context.Context, want []Mapping) (Reconciled, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(want, nil); err != nil {
			return Reconciled{}, err
		}
	}
	var r Reconciled
	next := make(map[kernelKey]Mapping, len(want))
	for _, m := range want {
		k := kernelKeyOf(&m)
		if old, ok := f.held[k]; ok && old.Internal == m.Internal {
			r.Adopted++
		} else {
			r.Added++
		}
		next[k] = m
	}
	for k, old := range f.held {
		if m, ok := next[k]; !ok || m.Internal != old.Internal {
			r.Removed++
		}
	}
	f.held = next
	f.reconciles++
	return r, nil
}

func (f *recordingFirewall) Close() error { return nil }

func (f *recordingFirewall) has(p Protocol, port uint16) (Mapping, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.held[kernelKey{proto: p, port: port}]
	return m, ok
}

func (f *recordingFirewall) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.held)
}

var (
	client1 = netip.MustParseAddr("198.51.100.10")
	client2 = netip.MustParseAddr("198.51.100.11")
	lan     = netip.MustParsePrefix("198.51.100.0/24")
)

func defaultPolicy() Policy {
	return Policy{Rules: []Rule{{Allow: true, ExternalPorts: DefaultPorts, Internal: lan, InternalPorts: DefaultPorts}}}
}

func newTestTable(t testing.TB, p Policy) (*Table, *recordingFirewall) {
	t.Helper()
	fw := newRecordingFirewall()
	tab := New(Config{Policy: p, Firewall: fw, Rand: rand.New(rand.NewPCG(1, 2))})
	return tab, fw
}

func mapReq(p Protocol, addr netip.Addr, iport, eport uint16) MapRequest {
	return MapRequest{Protocol: p, Internal: netip.AddrPortFrom(addr, iport), ExternalPort: eport, Lifetime: time.Hour, Origin: OriginNATPMP}
}

func TestMapGrantsSuggestedPort(t *testing.T) {
	tab, fw := newTestTable(t, defaultPolicy())
	res, err := tab.Map(context.Background(), mapReq(TCP, client1, 8080, 8080))
	if err != nil {
		t.Fatal(err)
	}
	if res.ExternalPort != 8080 || res.Renewed {
		t.Fatalf("Map = port %d renewed %v; want 8080, new", res.ExternalPort, res.Renewed)
	}
	m, ok := fw.has(TCP, 8080)
	if !ok || m.Internal != netip.AddrPortFrom(client1, 8080) {
		t.Fatalf("firewall holds %v, %v; want the mapping to %v:8080", m, ok, client1)
	}
}

func TestMapTakenPortGetsAnother(t *testing.T) {
	tab, _ := newTestTable(t, defaultPolicy())
	ctx := context.Background()
	if _, err := tab.Map(ctx, mapReq(TCP, client1, 8080, 8080)); err != nil {
		t.Fatal(err)
	}
	res, err := tab.Map(ctx, mapReq(TCP, client2, 8080, 8080))
	if err != nil {
		t.Fatal(err)
	}
	if res.ExternalPort == 8080 || !DefaultPorts.Contains(res.ExternalPort) {
		t.Fatalf("second client got port %d; want another port in %v", res.ExternalPort, DefaultPorts)
	}
}

func TestMapRenewalKeepsPort(t *testing.T) {
	tab, fw := newTestTable(t, defaultPolicy())
	ctx := context.Background()
	first, err := tab.Map(ctx, mapReq(UDP, client1, 4000, 0))
	if err != nil {
		t.Fatal(err)
	}
	again, err := tab.Map(ctx, mapReq(UDP, client1, 4000, 5555))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Renewed || again.ExternalPort != first.ExternalPort {
		t.Fatalf("renewal = port %d renewed %v; want port %d renewed", again.ExternalPort, again.Renewed, first.ExternalPort)
	}
	if fw.len() != 1 || tab.Len() != 1 {
		t.Fatalf("after renewal firewall holds %d, table %d; want 1 and 1", fw.len(), tab.Len())
	}
}

func TestMapCompanionProtocolSharesPort(t *testing.T) {
	tab, _ := newTestTable(t, defaultPolicy())
	ctx := context.Background()
	// Another client holds UDP 7000, so the TCP mapping of client1 port 7000
	// and then its UDP one cannot both get 7000 by suggestion alone.
	if _, err := tab.Map(ctx, mapReq(TCP, client2, 7000, 7000)); err != nil {
		t.Fatal(err)
	}
	tcp, err := tab.Map(ctx, mapReq(TCP, client1, 7000, 7000))
	if err != nil {
		t.Fatal(err)
	}
	udp, err := tab.Map(ctx, mapReq(UDP, client1, 7000, 7000))
	if err != nil {
		t.Fatal(err)
	}
	if udp.ExternalPort != tcp.ExternalPort {
		t.Fatalf("UDP mapping got port %d, TCP %d; want the same", udp.ExternalPort, tcp.ExternalPort)
	}
}

func TestMapReservedPortNeverGranted(t *testing.T) {
	fw := newRecordingFirewall()
	tab := New(Config{Policy: Policy{Ports: PortRange{2000, 2001}}, Firewall: fw,
		Reserved: func(p Protocol, port uint16) bool { return port == 2000 }})
	ctx := context.Background()
	res, err := tab.Map(ctx, mapReq(TCP, client1, 2000, 2000))
	if err != nil {
		t.Fatal(err)
	}
	if res.ExternalPort != 2001 {
		t.Fatalf("got port %d; want 2001 (2000 is reserved)", res.ExternalPort)
	}
	if _, err := tab.Map(ctx, mapReq(TCP, client2, 2000, 2000)); !errors.Is(err, ErrOutOfResources) {
		t.Fatalf("Map with every port taken or reserved = %v; want ErrOutOfResources", err)
	}
}

// TestMapProbesWithoutTheLock: Config.Reserved, which costs system calls in
// the daemon, is asked without the table's lock held; a port taken while
// it was being asked about is not granted twice; and no port is asked about
// twice in one request, however many are reserved.
func TestMapProbesWithoutTheLock(t *testing.T) {
	ctx := context.Background()
	var tab *Table
	asked := map[uint16]int{}
	stolen := false
	tab = New(Config{Policy: Policy{Ports: PortRange{3000, 3009}}, Reserved: func(p Protocol, port uint16) bool {
		if !tab.mu.TryLock() {
			t.Errorf("Reserved(%v, %d) called with the table's lock held", p, port)
		} else {
			tab.mu.Unlock()
		}
		asked[port]++
		if port == 3000 && !stolen {
			// Another client takes the port while this one is asked about.
			stolen = true
			if _, err := tab.Map(ctx, mapReq(TCP, client2, 3000, 3000)); err != nil {
				t.Errorf("the other client's Map: %v", err)
			}
		}
		return port != 3000 && port != 3007
	}})
	res, err := tab.Map(ctx, mapReq(TCP, client1, 3000, 3000))
	if err != nil {
		t.Fatal(err)
	}
	if res.ExternalPort != 3007 {
		t.Fatalf("got port %d; want 3007, the only port neither reserved nor taken meanwhile", res.ExternalPort)
	}
	if l, _ := tab.LookupExternal(TCP, 3000); l.Internal.Addr() != client2 {
		t.Fatalf("port 3000 is held by %v; want the client that took it meanwhile", l.Internal)
	}
	for port, n := range asked {
		if limit := map[bool]int{true: 2, false: 1}[port == 3000]; n > limit { // once by each client
			t.Errorf("port %d asked about %d times; want at most %d", port, n, limit)
		}
	}
	upnp := MapRequest{Protocol: UDP, Internal: netip.AddrPortFrom(client1, 4000), ExternalPort: 3001, Exact: true, Lifetime: time.Hour, Origin: OriginUPnP}
	if _, err := tab.Map(ctx, upnp); !errors.Is(err, ErrConflict) {
		t.Fatalf("an exact request for a reserved port = %v; want ErrConflict", err)
	}
}

func TestMapRules(t *testing.T) {
	p := Policy{Rules: []Rule{
		{Allow: false, ExternalPorts: PortRange{1024, 65535}, Internal: netip.MustParsePrefix("198.51.100.11/32"), InternalPorts: PortRange{1, 65535}},
		{Allow: false, ExternalPorts: PortRange{6000, 6999}, Internal: lan, InternalPorts: PortRange{1, 65535}},
		{Allow: true, ExternalPorts: PortRange{5000, 7999}, Internal: lan, InternalPorts: PortRange{1024, 65535}},
	}}
	tests := []struct {
		name     string
		req      MapRequest
		want     error
		wantPort func(uint16) bool
	}{
		{"allowed suggestion", mapReq(TCP, client1, 5000, 5000), nil, func(p uint16) bool { return p == 5000 }},
		{"denied suggestion moved into allowed range", mapReq(TCP, client1, 5001, 6500), nil,
			func(p uint16) bool { return (p >= 5000 && p < 6000) || (p >= 7000 && p <= 7999) }},
		{"denied client", mapReq(TCP, client2, 5002, 5002), ErrNotAuthorized, nil},
		{"denied internal port", mapReq(TCP, client1, 80, 5003), ErrNotAuthorized, nil},
		{"address outside every rule", mapReq(TCP, netip.MustParseAddr("203.0.113.9"), 5004, 5004), ErrNotAuthorized, nil},
		{"exact denied port", MapRequest{Protocol: TCP, Internal: netip.AddrPortFrom(client1, 5005), ExternalPort: 6001, Exact: true, Lifetime: time.Hour}, ErrNotAuthorized, nil},
	}
	tab, _ := newTestTable(t, p)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tab.Map(context.Background(), tt.req)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Map(%+v) = %v; want %v", tt.req, err, tt.want)
			}
			if tt.wantPort != nil && !tt.wantPort(res.ExternalPort) {
				t.Fatalf("Map(%+v) gave port %d, outside what the rules allow", tt.req, res.ExternalPort)
			}
		})
	}
}

func TestMapExactConflict(t *testing.T) {
	tab, _ := newTestTable(t, defaultPolicy())
	ctx := context.Background()
	if _, err := tab.Map(ctx, mapReq(TCP, client1, 9000, 9000)); err != nil {
		t.Fatal(err)
	}
	req := mapReq(TCP, client2, 9000, 9000)
	req.Exact = true
	if _, err := tab.Map(ctx, req); !errors.Is(err, ErrConflict) {
		t.Fatalf("exact Map of a held port = %v; want ErrConflict", err)
	}
}

func TestMapBadRequests(t *testing.T) {
	tab, _ := newTestTable(t, Policy{})
	for _, req := range []MapRequest{
		{Protocol: 1, Internal: netip.AddrPortFrom(client1, 1), Lifetime: time.Second},
		{Protocol: TCP, Internal: netip.AddrPortFrom(client1, 0), Lifetime: time.Second},
		{Protocol: TCP, Internal: netip.AddrPortFrom(netip.IPv4Unspecified(), 1), Lifetime: time.Second},
		{Protocol: TCP, Internal: netip.AddrPortFrom(client1, 1)},
	} {
		if _, err := tab.Map(context.Background(), req); !errors.Is(err, ErrBadRequest) {
			t.Errorf("Map(%+v) = %v; want ErrBadRequest", req, err)
		}
	}
}

func TestLifetimeCapped(t *testing.T) {
	now := time.Unix(1000, 0)
	tab := New(Config{Policy: Policy{MaxLifetime: time.Minute}, Now: func() time.Time { return now }})
	req := mapReq(TCP, client1, 1234, 0)
	req.Lifetime = 24 * time.Hour
	res, err := tab.Map(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Lifetime(now); got != time.Minute {
		t.Fatalf("lifetime = %v; want the 1m maximum", got)
	}
}

func TestDelete(t *testing.T) {
	tab, fw := newTestTable(t, defaultPolicy())
	ctx := context.Background()
	res, err := tab.Map(ctx, mapReq(TCP, client1, 8080, 8080))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tab.Delete(ctx, TCP, res.Internal); err != nil {
		t.Fatal(err)
	}
	if _, ok := fw.has(TCP, 8080); ok || tab.Len() != 0 {
		t.Fatalf("after Delete firewall holds it: %v, table has %d", ok, tab.Len())
	}
	if _, err := tab.Delete(ctx, TCP, res.Internal); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete = %v; want ErrNotFound", err)
	}
}

func TestDeleteClient(t *testing.T) {
	tab, fw := newTestTable(t, defaultPolicy())
	ctx := context.Background()
	for port := uint16(2000); port < 2010; port++ {
		for _, p := range []Protocol{TCP, UDP} {
			if _, err := tab.Map(ctx, mapReq(p, client1, port, port)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := tab.Map(ctx, mapReq(TCP, client2, port, 0)); err != nil {
			t.Fatal(err)
		}
	}
	upnp := mapReq(TCP, client1, 3000, 3000)
	upnp.Origin = OriginUPnP
	if _, err := tab.Map(ctx, upnp); err != nil {
		t.Fatal(err)
	}
	gone := tab.DeleteClient(ctx, TCP, client1, OriginNATPMP, OriginPCP)
	if len(gone) != 10 {
		t.Fatalf("DeleteClient removed %d leases; want 10", len(gone))
	}
	if got, want := tab.Len(), 10+10+1; got != want || fw.len() != want {
		t.Fatalf("after DeleteClient table %d, firewall %d; want %d", got, fw.len(), want)
	}
	if _, ok := tab.LookupExternal(TCP, 3000); !ok {
		t.Fatal("DeleteClient removed a UPnP lease it was not asked to")
	}
}

func TestExpiry(t *testing.T) {
	tab, fw := newTestTable(t, defaultPolicy())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- tab.Run(ctx) }()
	short := mapReq(UDP, client1, 5000, 5000)
	short.Lifetime = 50 * time.Millisecond
	long := mapReq(UDP, client1, 5001, 5001)
	if _, err := tab.Map(ctx, long); err != nil {
		t.Fatal(err)
	}
	if _, err := tab.Map(ctx, short); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for tab.Len() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the short lease never expired")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok := fw.has(UDP, 5000); ok {
		t.Fatal("the expired lease is still in the firewall")
	}
	if _, ok := fw.has(UDP, 5001); !ok {
		t.Fatal("the long lease left the firewall")
	}
	cancel()
	<-done
}

func TestFirewallFailureRollsBack(t *testing.T) {
	tab, fw := newTestTable(t, defaultPolicy())
	fw.fail = func(add, remove []Mapping) error { return errors.New("netlink: broken") }
	_, err := tab.Map(context.Background(), mapReq(TCP, client1, 8080, 8080))
	if !errors.Is(err, ErrFirewall) {
		t.Fatalf("Map with a failing firewall = %v; want ErrFirewall", err)
	}
	if tab.Len() != 0 {
		t.Fatalf("table holds %d leases after a failed grant; want 0", tab.Len())
	}
}

func TestReconfigure(t *testing.T) {
	tab, fw := newTestTable(t, defaultPolicy())
	ctx := context.Background()
	for _, c := range []netip.Addr{client1, client2} {
		if _, err := tab.Map(ctx, mapReq(TCP, c, 4000, 0)); err != nil {
			t.Fatal(err)
		}
	}
	p := Policy{Rules: []Rule{{Allow: true, ExternalPorts: DefaultPorts, Internal: netip.PrefixFrom(client1, 32), InternalPorts: DefaultPorts}}}
	gone := tab.Reconfigure(ctx, p)
	if len(gone) != 1 || gone[0].Internal.Addr() != client2 {
		t.Fatalf("Reconfigure removed %v; want client2's lease", gone)
	}
	if tab.Len() != 1 || fw.len() != 1 {
		t.Fatalf("after Reconfigure table %d, firewall %d; want 1, 1", tab.Len(), fw.len())
	}
}

func TestConcurrentMapsAgreeWithFirewall(t *testing.T) {
	tab, fw := newTestTable(t, defaultPolicy())
	ctx := context.Background()
	var wg sync.WaitGroup
	for c := range 16 {
		wg.Go(func() {
			addr := netip.AddrFrom4([4]byte{198, 51, 100, byte(20 + c)})
			for i := range 200 {
				req := mapReq(UDP, addr, uint16(10000+i), 0)
				if _, err := tab.Map(ctx, req); err != nil {
					t.Error(err)
					return
				}
				if i%3 == 0 {
					if _, err := tab.Delete(ctx, UDP, req.Internal); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	leases := tab.Leases()
	if fw.len() != len(leases) {
		t.Fatalf("firewall holds %d mappings, table %d leases", fw.len(), len(leases))
	}
	for _, l := range leases {
		m, ok := fw.has(l.Protocol, l.ExternalPort)
		if !ok || m.Internal != l.Internal {
			t.Fatalf("lease %v: firewall holds %v, %v", l, m, ok)
		}
	}
	fw.mu.Lock()
	applies := fw.applies
	fw.mu.Unlock()
	t.Logf("%d changes in %d firewall transactions", 16*200+16*67, applies)
}

func TestFold(t *testing.T) {
	m := func(port uint16, host byte) *Mapping {
		return &Mapping{Protocol: TCP, ExternalPort: port, Internal: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, host}), 80)}
	}
	batch := []*change{
		{add: m(1, 1)},                  // added then removed: nothing
		{remove: m(1, 1)},               //
		{remove: m(2, 1)},               // held before, removed then added again
		{add: m(2, 2)},                  //
		{remove: m(3, 3)},               // held before, removed
		{add: m(4, 4)},                  // new
		{remove: m(4, 4)},               // and replaced
		{add: m(4, 5)},                  //
		{remove: m(5, 5), add: m(5, 5)}, // renewal
	}
	add, remove := fold(batch)
	wantAdd := []Mapping{*m(2, 2), *m(4, 5), *m(5, 5)}
	wantRemove := []Mapping{*m(2, 1), *m(3, 3), *m(5, 5)}
	if fmt.Sprint(add) != fmt.Sprint(wantAdd) || fmt.Sprint(remove) != fmt.Sprint(wantRemove) {
		t.Fatalf("fold = add %v remove %v;\nwant add %v remove %v", add, remove, wantAdd, wantRemove)
	}
}

func TestAllowedPorts(t *testing.T) {
	p := Policy{Ports: PortRange{1000, 9000}, Rules: []Rule{
		{Allow: false, ExternalPorts: PortRange{2000, 2999}, Internal: lan, InternalPorts: DefaultPorts},
		{Allow: true, ExternalPorts: PortRange{1, 65535}, Internal: lan, InternalPorts: DefaultPorts},
	}}
	got := fmt.Sprint(p.allowedPorts(client1, client1, 5000))
	if want := "[1000-1999 3000-9000]"; got != want {
		t.Fatalf("allowedPorts = %s; want %s", got, want)
	}
}

func benchmarkMap(b *testing.B, present int) {
	tab := New(Config{Policy: Policy{}, Rand: rand.New(rand.NewPCG(1, 2))})
	ctx := context.Background()
	for i := range present {
		addr := netip.AddrFrom4([4]byte{198, 51, byte(i >> 16), byte(i >> 8)})
		if _, err := tab.Map(ctx, mapReq(UDP, addr, uint16(1024+i&0xff), 0)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		req := mapReq(TCP, client1, uint16(1024+i%60000), 0)
		if _, err := tab.Map(ctx, req); err != nil {
			b.Fatal(err)
		}
		if _, err := tab.Delete(ctx, TCP, req.Internal); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMapDelete measures a grant and a deletion on the request path with
// a table of growing size: the cost must not grow with it.
func BenchmarkMapDelete(b *testing.B) {
	for _, n := range []int{0, 1000, 10000, 50000} {
		b.Run(fmt.Sprintf("present=%d", n), func(b *testing.B) { benchmarkMap(b, n) })
	}
}

// fillTable returns a table (no firewall) with n NAT-PMP leases, TCP and
// UDP of 100 ports on each of n/100 clients.
func fillTable(tb testing.TB, n int) *Table {
	ctx := context.Background()
	tab := New(Config{Rand: rand.New(rand.NewPCG(1, 2))})
	for i := range n {
		addr := netip.AddrFrom4([4]byte{198, 51, byte(i / 100 >> 8), byte(i / 100)})
		if _, err := tab.Map(ctx, mapReq([2]Protocol{TCP, UDP}[i%2], addr, uint16(1024+i%100), 0)); err != nil {
			tb.Fatal(err)
		}
	}
	if tab.Len() != n {
		tb.Fatalf("%d leases; want %d", tab.Len(), n)
	}
	return tab
}

// BenchmarkTableMemory fills a table with 100,000 NAT-PMP leases of
// 1,000 clients and reports the heap it holds per lease (after a garbage
// collection): the lease records, the indexes and the expiry heap.
func BenchmarkTableMemory(b *testing.B) {
	const n = 100000
	var perLease float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tab := fillTable(b, n)
		runtime.GC()
		runtime.ReadMemStats(&after)
		perLease = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(tab)
	}
	b.ReportMetric(perLease, "B/lease")
}

func BenchmarkRenew(b *testing.B) {
	tab := New(Config{})
	ctx := context.Background()
	req := mapReq(UDP, client1, 4000, 0)
	if _, err := tab.Map(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tab.Map(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// gatedFirewall holds its first Apply until released, so that a test can
// line up requests behind it.
type gatedFirewall struct {
	*recordingFirewall
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (g *gatedFirewall) Apply(ctx context.Context, add, remove []Mapping) error {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		<-g.release
	}
	return g.recordingFirewall.Apply(ctx, add, remove)
}

// waitQueued returns once n changes wait in tab's commit queue. A test
// whose requests fail instead of queueing fails here rather than hang.
func waitQueued(t *testing.T, tab *Table, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		tab.commit.mu.Lock()
		queued := len(tab.commit.queue)
		tab.commit.mu.Unlock()
		if queued == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d changes queued; want %d", queued, n)
		}
		runtime.Gosched()
	}
}

// TestGroupCommit: requests that arrive while a transaction is in progress
// are applied together in the next one, and a lone request is applied at
// once by its own caller.
func TestGroupCommit(t *testing.T) {
	fw := &gatedFirewall{recordingFirewall: newRecordingFirewall(), entered: make(chan struct{}), release: make(chan struct{})}
	tab := New(Config{Policy: defaultPolicy(), Firewall: fw})
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := tab.Map(ctx, mapReq(TCP, client1, 1500, 1500)); err != nil {
			t.Error(err)
		}
	})
	<-fw.entered // the lone first request is being applied
	const waiting = 10
	for i := range waiting {
		wg.Go(func() {
			if _, err := tab.Map(ctx, mapReq(UDP, client2, uint16(2000+i), 0)); err != nil {
				t.Error(err)
			}
		})
	}
	waitQueued(t, tab, waiting)
	close(fw.release)
	wg.Wait()
	if fw.applies != 2 || fw.len() != waiting+1 {
		t.Fatalf("%d requests took %d transactions and left %d mappings; want 2 transactions, %d mappings",
			waiting+1, fw.applies, fw.len(), waiting+1)
	}
}

// steppedFirewall holds each Apply until the test lets it go, and tells the
// test what each Apply adds.
type steppedFirewall struct {
	*recordingFirewall
	entered chan []Mapping // what each Apply adds, as it begins
	release chan struct{}  // one receive lets one Apply finish
}

func (s *steppedFirewall) Apply(ctx context.Context, add, remove []Mapping) error {
	s.entered <- add
	<-s.release
	return s.recordingFirewall.Apply(ctx, add, remove)
}

// TestGroupCommitHandsOffTheLead: a leader applies the one batch that holds
// its own change and returns; the next batch is applied by a request in it,
// not by the leader, which would make the leader's request wait for it.
func TestGroupCommitHandsOffTheLead(t *testing.T) {
	fw := &steppedFirewall{recordingFirewall: newRecordingFirewall(), entered: make(chan []Mapping), release: make(chan struct{})}
	tab := New(Config{Policy: defaultPolicy(), Firewall: fw})
	ctx := context.Background()
	first := make(chan error, 1)
	go func() {
		_, err := tab.Map(ctx, mapReq(TCP, client1, 1500, 1500))
		first <- err
	}()
	if add := <-fw.entered; len(add) != 1 || add[0].ExternalPort != 1500 {
		t.Fatalf("the first batch adds %v; want the lone request's mapping", add)
	}
	const waiting = 3
	var wg sync.WaitGroup
	for i := range waiting {
		wg.Go(func() {
			if _, err := tab.Map(ctx, mapReq(UDP, client2, uint16(2000+i), 0)); err != nil {
				t.Error(err)
			}
		})
	}
	waitQueued(t, tab, waiting)
	fw.release <- struct{}{} // the first batch ends
	if add := <-fw.entered; len(add) != waiting {
		t.Fatalf("the second batch adds %v; want the %d queued requests' mappings", add, waiting)
	}
	// The leader returns while the second batch is held; had it gone on to
	// apply that batch itself, it would not.
	select {
	case err := <-first:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the leader went on to apply the next batch instead of returning with its own result")
	}
	fw.release <- struct{}{}
	wg.Wait()
	if fw.applies != 2 || fw.len() != waiting+1 {
		t.Fatalf("%d transactions, %d mappings; want 2 and %d", fw.applies, fw.len(), waiting+1)
	}
}

// TestUPnPAndNATPMPLeasesOfOneEndpoint: UPnP names a mapping by its
// external port, NAT-PMP by its internal endpoint. A UPnP mapping of an
// endpoint that has a NAT-PMP lease adds a mapping and leaves that lease
// alone, and the other way round; deleting one leaves the other.
func TestUPnPAndNATPMPLeasesOfOneEndpoint(t *testing.T) {
	tab, fw := newTestTable(t, defaultPolicy())
	ctx := context.Background()
	pmp, err := tab.Map(ctx, mapReq(TCP, client1, 7000, 7000))
	if err != nil {
		t.Fatal(err)
	}
	upnpReq := MapRequest{Protocol: TCP, Internal: pmp.Internal, ExternalPort: 7100, Exact: true, Lifetime: time.Hour, Origin: OriginUPnP}
	up, err := tab.Map(ctx, upnpReq)
	if err != nil {
		t.Fatal(err)
	}
	if up.ExternalPort != 7100 || up.Renewed {
		t.Fatalf("UPnP mapping of the same endpoint = port %d renewed %v; want a new mapping on 7100", up.ExternalPort, up.Renewed)
	}
	again, err := tab.Map(ctx, upnpReq)
	if err != nil || !again.Renewed || again.ExternalPort != 7100 {
		t.Fatalf("the same AddPortMapping again = %+v, %v; want a renewal of 7100", again, err)
	}
	renewPMP, err := tab.Map(ctx, mapReq(TCP, client1, 7000, 0))
	if err != nil || !renewPMP.Renewed || renewPMP.ExternalPort != 7000 {
		t.Fatalf("NAT-PMP renewal = %+v, %v; want its own lease on 7000", renewPMP, err)
	}
	if tab.Len() != 2 || fw.len() != 2 {
		t.Fatalf("table %d, firewall %d; want both mappings", tab.Len(), fw.len())
	}
	if _, err := tab.Delete(ctx, TCP, pmp.Internal); err != nil {
		t.Fatal(err)
	}
	if _, ok := tab.LookupExternal(TCP, 7100); !ok {
		t.Fatal("deleting the NAT-PMP lease removed the UPnP mapping of the same endpoint")
	}
	if _, ok := fw.has(TCP, 7100); !ok || fw.len() != 1 {
		t.Fatal("the firewall lost the UPnP mapping")
	}
}

// TestRenewalChecksTheNonce: with CheckNonce, a request that names an
// existing mapping must carry its nonce (RFC 6887 §11.3); a lease made
// without one has the zero nonce. A renewal with a new description keeps
// the nonce.
func TestRenewalChecksTheNonce(t *testing.T) {
	tab, _ := newTestTable(t, defaultPolicy())
	ctx := context.Background()
	req := mapReq(TCP, client1, 6000, 6000)
	req.Nonce, req.CheckNonce, req.Origin = [12]byte{1, 2, 3}, true, OriginPCP
	if _, err := tab.Map(ctx, req); err != nil {
		t.Fatal(err)
	}
	other := req
	other.Nonce = [12]byte{9}
	if _, err := tab.Map(ctx, other); !errors.Is(err, ErrNonceMismatch) {
		t.Fatalf("renewal with another nonce = %v; want ErrNonceMismatch", err)
	}
	req.Description = "game"
	if res, err := tab.Map(ctx, req); err != nil || !res.Renewed || res.Nonce != req.Nonce || res.Description != "game" {
		t.Fatalf("renewal with the nonce = %+v, %v; want a renewal keeping the nonce, described", res, err)
	}
	plain := mapReq(UDP, client1, 6001, 6001)
	if _, err := tab.Map(ctx, plain); err != nil {
		t.Fatal(err)
	}
	plain.CheckNonce = true
	if _, err := tab.Map(ctx, plain); err != nil {
		t.Fatalf("checked renewal of a lease without nonce, zero nonce = %v; want a renewal", err)
	}
	plain.Nonce = [12]byte{1}
	if _, err := tab.Map(ctx, plain); !errors.Is(err, ErrNonceMismatch) {
		t.Fatalf("checked renewal of a lease without nonce, a nonce = %v; want ErrNonceMismatch", err)
	}
}

// TestPCPMinLifetime: a PCP request for less than Policy.PCPMinLifetime is
// granted the minimum (RFC 6887 §15), capped by MaxLifetime; NAT-PMP and
// UPnP requests get what they ask for.
func TestPCPMinLifetime(t *testing.T) {
	tests := []struct {
		origin   Origin
		ask, max time.Duration
		want     time.Duration
	}{
		{OriginPCP, 3 * time.Second, time.Hour, 120 * time.Second},
		{OriginPCP, 600 * time.Second, time.Hour, 600 * time.Second},
		{OriginPCP, 3 * time.Second, 60 * time.Second, 60 * time.Second},
		{OriginNATPMP, 3 * time.Second, time.Hour, 3 * time.Second},
		{OriginUPnP, 3 * time.Second, time.Hour, 3 * time.Second},
	}
	for i, tt := range tests {
		table := New(Config{Policy: Policy{MaxLifetime: tt.max, PCPMinLifetime: 120 * time.Second}})
		res, err := table.Map(context.Background(), MapRequest{Protocol: TCP, Internal: netip.MustParseAddrPort("198.51.100.10:8080"),
			ExternalPort: 8080, Lifetime: tt.ask, Origin: tt.origin})
		if err != nil {
			t.Fatalf("%d: Map(%v, %v) = %v", i, tt.origin, tt.ask, err)
		}
		if res.Granted != tt.want {
			t.Errorf("%d: Map(%v, %v) with maximum %v granted %v; want %v", i, tt.origin, tt.ask, tt.max, res.Granted, tt.want)
		}
		table.Close()
	}
}
