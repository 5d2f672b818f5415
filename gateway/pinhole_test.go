package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
)

var (
	host6  = netip.MustParseAddr("2001:db8:1::10")
	host6b = netip.MustParseAddr("2001:db8:1::11")
	lan6   = netip.MustParsePrefix("2001:db8:1::/64")
)

// dualPolicy allows the default ports to the IPv4 and the IPv6 LAN.
func dualPolicy() Policy {
	p := defaultPolicy()
	p.Rules = append(p.Rules, Rule{Allow: true, ExternalPorts: DefaultPorts, Internal: lan6, InternalPorts: DefaultPorts})
	return p
}

func pinholeReq(p Protocol, addr netip.Addr, port uint16, filters ...Filter) MapRequest {
	return MapRequest{Protocol: p, Internal: netip.AddrPortFrom(addr, port), Lifetime: time.Hour, Origin: OriginPCP, Filters: filters}
}

func filter(prefix string, port uint16) Filter {
	return Filter{Remote: netip.MustParsePrefix(prefix), Port: port}
}

// heldPinhole returns what the fake firewall holds for the pinhole of an
// endpoint.
func (f *recordingFirewall) heldPinhole(p Protocol, ap netip.AddrPort) (Mapping, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.held[kernelKey{p, ap.Port(), ap.Addr()}]
	return m, ok
}

func TestPinholeGrantRenewDelete(t *testing.T) {
	ctx := context.Background()
	tab, fw := newTestTable(t, dualPolicy())
	ep := netip.AddrPortFrom(host6, 8080)
	res, err := tab.Map(ctx, pinholeReq(TCP, host6, 8080))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pinhole || res.PinholeID == 0 || res.ExternalPort != 8080 || res.Renewed {
		t.Fatalf("grant = %+v; want a new pinhole of port 8080 with a UniqueID", res)
	}
	if m, ok := fw.heldPinhole(TCP, ep); !ok || !m.Pinhole || m.ExternalPort != 8080 || m.Lifetime <= 0 {
		t.Fatalf("firewall holds %+v, %v; want the pinhole", m, ok)
	}
	if _, ok := fw.has(TCP, 8080); ok {
		t.Fatal("the pinhole reached the firewall as an IPv4 mapping")
	}
	// Renewals over any protocol keep the UniqueID; a new filter set
	// reaches the kernel.
	for _, origin := range []Origin{OriginPCP, OriginUPnP, OriginNATPMP} {
		req := pinholeReq(TCP, host6, 8080)
		req.Origin = origin
		again, err := tab.Map(ctx, req)
		if err != nil || !again.Renewed || again.PinholeID != res.PinholeID {
			t.Fatalf("renewal over %v = %+v, %v; want the same pinhole", origin, again, err)
		}
	}
	if _, err := tab.Map(ctx, pinholeReq(TCP, host6, 8080, filter("2001:db8:99::/48", 0))); err != nil {
		t.Fatal(err)
	}
	if m, _ := fw.heldPinhole(TCP, ep); len(m.Filters) != 1 {
		t.Fatalf("firewall holds %+v after a renewal with a filter", m)
	}
	if got := tab.Pinholes(); len(got) != 1 || got[0].PinholeID != res.PinholeID || tab.Len() != 1 || len(tab.Leases()) != 1 {
		t.Fatalf("Pinholes() = %+v, Len() = %d", got, tab.Len())
	}
	if l, ok := tab.Lookup(TCP, ep); !ok || l.PinholeID != res.PinholeID {
		t.Fatalf("Lookup = %+v, %v", l, ok)
	}
	if _, ok := tab.LeaseAt(0); ok {
		t.Fatal("LeaseAt walks pinholes; it is for IPv4 port mappings")
	}
	if _, err := tab.UpdatePinhole(ctx, res.PinholeID, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := tab.UpdatePinhole(ctx, res.PinholeID+1, time.Hour); !errors.Is(err, ErrNotFound) {
		t.Fatalf("UpdatePinhole of an unknown ID = %v; want ErrNotFound", err)
	}
	if _, err := tab.Delete(ctx, TCP, ep); err != nil {
		t.Fatal(err)
	}
	if _, ok := fw.heldPinhole(TCP, ep); ok || tab.Len() != 0 {
		t.Fatal("the deleted pinhole stayed")
	}
	if _, ok := tab.Pinhole(res.PinholeID); ok {
		t.Fatal("Pinhole finds a deleted pinhole")
	}
	if _, err := tab.DeletePinhole(ctx, res.PinholeID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DeletePinhole of a deleted one = %v; want ErrNotFound", err)
	}
}

func TestPinholeRequests(t *testing.T) {
	upnp := func(r MapRequest) MapRequest { r.Origin = OriginUPnP; return r }
	checked := func(r MapRequest, nonce byte) MapRequest { r.Nonce, r.CheckNonce = [12]byte{nonce}, true; return r }
	exact := func(r MapRequest, port uint16) MapRequest { r.ExternalPort, r.Exact = port, true; return r }
	tests := []struct {
		name     string
		policy   Policy
		first    MapRequest
		second   MapRequest
		want     error
		renewed  bool
		pinholes int
	}{
		{"same endpoint, same filter over UPnP renews", dualPolicy(),
			upnp(pinholeReq(UDP, host6, 4000, filter("2001:db8:9::1/128", 0))), upnp(pinholeReq(UDP, host6, 4000, filter("2001:db8:9::1/128", 0))), nil, true, 1},
		{"UPnP with another filter conflicts", dualPolicy(),
			upnp(pinholeReq(UDP, host6, 4000, filter("2001:db8:9::1/128", 0))), upnp(pinholeReq(UDP, host6, 4000)), ErrConflict, false, 1},
		{"PCP renewal with another nonce", dualPolicy(),
			checked(pinholeReq(UDP, host6, 4000), 1), checked(pinholeReq(UDP, host6, 4000), 2), ErrNonceMismatch, false, 1},
		{"PCP renewal with its nonce", dualPolicy(),
			checked(pinholeReq(UDP, host6, 4000), 1), checked(pinholeReq(UDP, host6, 4000), 1), nil, true, 1},
		{"another host's endpoint is another pinhole", dualPolicy(),
			pinholeReq(UDP, host6, 4000), pinholeReq(UDP, host6b, 4000), nil, false, 2},
		{"other protocol is another pinhole", dualPolicy(),
			pinholeReq(UDP, host6, 4000), pinholeReq(TCP, host6, 4000), nil, false, 2},
		{"IPv4 rules never allow an IPv6 host", defaultPolicy(),
			pinholeReq(UDP, host6b, 4001), pinholeReq(UDP, host6, 4000), ErrNotAuthorized, false, 0},
		{"rules see the internal port as the external one", dualPolicy(),
			pinholeReq(UDP, host6b, 4001), pinholeReq(UDP, host6, 80), ErrNotAuthorized, false, 1},
		{"PREFER_FAILURE for another external port", dualPolicy(),
			pinholeReq(UDP, host6b, 4001), exact(pinholeReq(UDP, host6, 4000), 4444), ErrConflict, false, 1},
		{"PREFER_FAILURE for its own port", dualPolicy(),
			pinholeReq(UDP, host6b, 4001), exact(pinholeReq(UDP, host6, 4000), 4000), nil, false, 2},
		{"filters that overlap in part", dualPolicy(),
			pinholeReq(UDP, host6b, 4001), pinholeReq(UDP, host6, 4000, filter("2001:db8::/32", 80), filter("2001:db8:5::/48", 0)), ErrBadRequest, false, 1},
		{"an IPv4 filter on a pinhole", dualPolicy(),
			pinholeReq(UDP, host6b, 4001), pinholeReq(UDP, host6, 4000, filter("203.0.113.0/24", 0)), ErrBadRequest, false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			tab, _ := newTestTable(t, tc.policy)
			first, err := tab.Map(ctx, tc.first)
			if err != nil && !errors.Is(err, ErrNotAuthorized) {
				t.Fatal(err)
			}
			res, err := tab.Map(ctx, tc.second)
			if !errors.Is(err, tc.want) || (tc.want != nil) != (err != nil) {
				t.Fatalf("second request = %v; want %v", err, tc.want)
			}
			if err == nil && (res.Renewed != tc.renewed || tc.renewed && res.PinholeID != first.PinholeID) {
				t.Fatalf("second request = %+v; renewed want %v (first %+v)", res, tc.renewed, first)
			}
			if n := len(tab.Pinholes()); n != tc.pinholes {
				t.Fatalf("%d pinholes; want %d", n, tc.pinholes)
			}
		})
	}
}

func TestDeleteChecked(t *testing.T) {
	tests := []struct {
		name     string
		internal netip.AddrPort
		nonce    byte
		want     error
	}{
		{"pinhole, right nonce", netip.AddrPortFrom(host6, 5000), 1, nil},
		{"pinhole, other nonce", netip.AddrPortFrom(host6, 5000), 2, ErrNonceMismatch},
		{"IPv4, right nonce", netip.AddrPortFrom(client1, 5000), 1, nil},
		{"IPv4, other nonce", netip.AddrPortFrom(client1, 5000), 9, ErrNonceMismatch},
		{"none", netip.AddrPortFrom(host6b, 5000), 1, ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			tab, _ := newTestTable(t, dualPolicy())
			for _, a := range []netip.Addr{host6, client1} {
				req := pinholeReq(UDP, a, 5000)
				req.Nonce = [12]byte{1}
				if _, err := tab.Map(ctx, req); err != nil {
					t.Fatal(err)
				}
			}
			_, err := tab.DeleteChecked(ctx, UDP, tc.internal, [12]byte{tc.nonce})
			if !errors.Is(err, tc.want) || (tc.want != nil) != (err != nil) {
				t.Fatalf("DeleteChecked = %v; want %v", err, tc.want)
			}
			want := 2
			if tc.want == nil {
				want = 1
			}
			if tab.Len() != want {
				t.Fatalf("%d leases left; want %d", tab.Len(), want)
			}
		})
	}
}

// TestPinholeAndIPv4LeaseOfOnePort: a pinhole and an IPv4 mapping of the
// same port are apart in the table and in the kernel.
func TestPinholeAndIPv4LeaseOfOnePort(t *testing.T) {
	ctx := context.Background()
	tab, fw := newTestTable(t, dualPolicy())
	v4 := mapReq(TCP, client1, 8080, 8080)
	v4.Filters = []Filter{filter("203.0.113.7/32", 0), filter("203.0.113.0/24", 0)}
	if res, err := tab.Map(ctx, v4); err != nil || res.ExternalPort != 8080 || len(res.Filters) != 1 {
		t.Fatalf("IPv4 grant = %+v, %v; want port 8080 with the one covering filter", res, err)
	}
	if _, err := tab.Map(ctx, pinholeReq(TCP, host6, 8080)); err != nil {
		t.Fatal(err)
	}
	m, ok := fw.has(TCP, 8080)
	if !ok || m.Pinhole || fmt.Sprint(m.Filters) != "[{203.0.113.0/24 0}]" {
		t.Fatalf("firewall holds %+v for the IPv4 mapping", m)
	}
	if m, ok := fw.heldPinhole(TCP, netip.AddrPortFrom(host6, 8080)); !ok || !m.Pinhole || len(m.Filters) != 0 {
		t.Fatalf("firewall holds %+v, %v for the pinhole", m, ok)
	}
	if fw.len() != 2 || tab.Len() != 2 {
		t.Fatalf("firewall %d, table %d; want 2 each", fw.len(), tab.Len())
	}
	if _, err := tab.DeleteExternal(ctx, TCP, 8080); err != nil {
		t.Fatal(err)
	}
	if _, ok := tab.Lookup(TCP, netip.AddrPortFrom(host6, 8080)); !ok {
		t.Fatal("deleting the IPv4 mapping took the pinhole")
	}
}

// TestPinholeIDs: UniqueIDs are unique among live pinholes, never-used ones
// come first, and released ones come back oldest first.
func TestPinholeIDs(t *testing.T) {
	ctx := context.Background()
	tab, _ := newTestTable(t, dualPolicy())
	var ids []uint16
	for i := range 5 {
		res, err := tab.Map(ctx, pinholeReq(UDP, host6, uint16(3000+i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.PinholeID)
	}
	if !slices.Equal(ids, []uint16{1, 2, 3, 4, 5}) {
		t.Fatalf("IDs %v; want 1-5", ids)
	}
	for _, id := range []uint16{4, 2} {
		if _, err := tab.DeletePinhole(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	res, err := tab.Map(ctx, pinholeReq(UDP, host6, 3100))
	if err != nil || res.PinholeID != 6 {
		t.Fatalf("next ID %d, %v; want 6, not a released one", res.PinholeID, err)
	}

	// Once every ID has been used, the oldest release comes back first.
	var p pinholeIDs
	for i := range 0xFFFF {
		if id, ok := p.take(leaseID(i)); !ok || id != uint16(i+1) {
			t.Fatalf("take %d = %d, %v", i, id, ok)
		}
	}
	if _, ok := p.take(0); ok {
		t.Fatal("a 65536th ID was handed out")
	}
	p.release(4)
	p.release(2)
	p.release(9)
	p.hold(9, 1) // taken again meanwhile (Restore): passed over
	for _, want := range []uint16{4, 2} {
		if id, ok := p.take(0); !ok || id != want {
			t.Fatalf("take = %d, %v; want %d", id, ok, want)
		}
	}
	if id, ok := p.take(0); ok {
		t.Fatalf("take = %d while all are held", id)
	}
}

func TestPinholeExpiry(t *testing.T) {
	tab, fw := newTestTable(t, dualPolicy())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- tab.Run(ctx) }()
	short := pinholeReq(UDP, host6, 5000)
	short.Lifetime = 50 * time.Millisecond
	if _, err := tab.Map(ctx, pinholeReq(UDP, host6b, 5000)); err != nil {
		t.Fatal(err)
	}
	res, err := tab.Map(ctx, short)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for tab.Len() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the short pinhole never expired")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok := fw.heldPinhole(UDP, netip.AddrPortFrom(host6, 5000)); ok {
		t.Fatal("the expired pinhole is still in the firewall")
	}
	if _, ok := tab.Pinhole(res.PinholeID); ok {
		t.Fatal("the expired pinhole keeps its UniqueID")
	}
	cancel()
	<-done
}

// TestPinholeJournalAndRestore: pinholes reach the journal by UniqueID,
// come back with it, and a resync gives the kernel them again.
func TestPinholeJournalAndRestore(t *testing.T) {
	ctx := context.Background()
	j := &recordingJournal{}
	fw := newRecordingFirewall()
	tab := New(Config{Policy: dualPolicy(), Firewall: fw, Journal: j})
	f := filter("2001:db8:9::/48", 8443)
	res, err := tab.Map(ctx, pinholeReq(TCP, host6, 8443, f))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tab.Map(ctx, mapReq(TCP, client1, 8443, 18443)); err != nil {
		t.Fatal(err)
	}
	got, ok := j.leases[journalKey{n: res.PinholeID, pinhole: true}]
	if !ok || !got.Pinhole || !slices.Equal(got.Filters, []Filter{f}) {
		t.Fatalf("journal holds %+v, %v for the pinhole", got, ok)
	}
	var kept []Lease
	for _, l := range j.leases {
		kept = append(kept, l)
	}
	// A pinhole whose UniqueID is held twice comes back once.
	dup := got
	dup.Internal = netip.AddrPortFrom(host6b, 8443)
	kept = append(kept, dup)

	fw2 := newRecordingFirewall()
	tab2 := New(Config{Policy: dualPolicy(), Firewall: fw2})
	n, skipped := tab2.Restore(kept)
	if n != 2 || len(skipped) != 1 {
		t.Fatalf("Restore = %d, %d skipped; want 2, 1", n, len(skipped))
	}
	if l, ok := tab2.Pinhole(res.PinholeID); !ok || l.Internal != netip.AddrPortFrom(host6, 8443) || len(l.Filters) != 1 {
		t.Fatalf("restored pinhole %+v, %v", l, ok)
	}
	if _, err := tab2.Resync(); err != nil {
		t.Fatal(err)
	}
	if m, ok := fw2.heldPinhole(TCP, netip.AddrPortFrom(host6, 8443)); !ok || !m.Pinhole || len(m.Filters) != 1 {
		t.Fatalf("kernel after resync holds %+v, %v", m, ok)
	}
	// The next pinhole gets a fresh ID, not the restored one.
	next, err := tab2.Map(ctx, pinholeReq(TCP, host6b, 8443))
	if err != nil || next.PinholeID == res.PinholeID {
		t.Fatalf("new pinhole after Restore = %+v, %v", next, err)
	}
}

func TestNormaliseFilters(t *testing.T) {
	tests := []struct {
		name     string
		internal string
		in       []Filter
		want     string // fmt.Sprint of the result, or "error"
	}{
		{"none", "2001:db8::1", nil, "[]"},
		{"masked and sorted", "2001:db8::1", []Filter{filter("2001:db8:2::5/48", 0), filter("2001:db8:1::/48", 80)}, "[{2001:db8:1::/48 80} {2001:db8:2::/48 0}]"},
		{"duplicates", "198.51.100.1", []Filter{filter("203.0.113.1/32", 80), filter("203.0.113.1/32", 80)}, "[{203.0.113.1/32 80}]"},
		{"covered by a wider any-port filter", "198.51.100.1", []Filter{filter("203.0.113.1/32", 80), filter("203.0.113.0/24", 0)}, "[{203.0.113.0/24 0}]"},
		{"same port nested", "198.51.100.1", []Filter{filter("203.0.113.1/32", 80), filter("203.0.113.0/24", 80)}, "[{203.0.113.0/24 80}]"},
		{"other ports nested are disjoint", "198.51.100.1", []Filter{filter("203.0.113.1/32", 81), filter("203.0.113.0/24", 80)}, "[{203.0.113.0/24 80} {203.0.113.1/32 81}]"},
		{"partial overlap", "198.51.100.1", []Filter{filter("203.0.113.1/32", 0), filter("203.0.113.0/24", 80)}, "error"},
		{"any peer is no filter", "198.51.100.1", []Filter{filter("0.0.0.0/0", 0), filter("203.0.113.0/24", 80)}, "[]"},
		{"IPv4-mapped for IPv4", "198.51.100.1", []Filter{filter("::ffff:203.0.113.0/120", 0)}, "[{203.0.113.0/24 0}]"},
		{"family mismatch", "198.51.100.1", []Filter{filter("2001:db8::/32", 0)}, "error"},
		{"invalid prefix", "2001:db8::1", []Filter{{}}, "error"},
		{"too many", "2001:db8::1", make([]Filter, MaxFilters+1), "error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := normaliseFilters(tc.in, netip.MustParseAddr(tc.internal))
			got := fmt.Sprint(out)
			if err != nil {
				if !errors.Is(err, ErrBadRequest) {
					t.Fatalf("error %v is not ErrBadRequest", err)
				}
				got = "error"
			}
			if got != tc.want {
				t.Fatalf("normaliseFilters = %s (%v); want %s", got, err, tc.want)
			}
		})
	}
}

// BenchmarkMapDeletePinhole is BenchmarkMapDelete for IPv6 pinholes, with a
// table of growing size: the cost must not grow with it.
func BenchmarkMapDeletePinhole(b *testing.B) {
	for _, n := range []int{0, 1000, 10000, 50000} {
		b.Run(fmt.Sprintf("present=%d", n), func(b *testing.B) {
			tab := New(Config{})
			ctx := context.Background()
			for i := range n {
				addr := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 1, 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
				if _, err := tab.Map(ctx, pinholeReq(UDP, addr, 4000)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				req := pinholeReq(TCP, host6, uint16(1024+i%60000))
				if _, err := tab.Map(ctx, req); err != nil {
					b.Fatal(err)
				}
				if _, err := tab.Delete(ctx, TCP, req.Internal); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
