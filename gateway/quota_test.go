package gateway

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"
)

func upnpReq(p Protocol, addr netip.Addr, iport, eport uint16) MapRequest {
	return MapRequest{Protocol: p, Internal: netip.AddrPortFrom(addr, iport), ExternalPort: eport, Exact: true,
		Lifetime: time.Hour, Origin: OriginUPnP}
}

func mustMap(t *testing.T, tab *Table, req MapRequest) MapResult {
	t.Helper()
	res, err := tab.Map(context.Background(), req)
	if err != nil {
		t.Fatalf("Map(%v %v) = %v", req.Protocol, req.Internal, err)
	}
	return res
}

// TestHostQuota: a host holds at most MaxPerHost leases of every protocol
// and origin together; its renewals still pass at its limit, another host
// is served, and a deletion makes room.
func TestHostQuota(t *testing.T) {
	p := defaultPolicy()
	p.MaxPerHost = 3
	tab, _ := newTestTable(t, p)
	ctx := context.Background()
	held := []MapRequest{
		mapReq(TCP, client1, 4000, 4000),
		{Protocol: UDP, Internal: netip.AddrPortFrom(client1, 4001), Lifetime: time.Hour, Origin: OriginPCP},
		upnpReq(TCP, client1, 8080, 8080),
	}
	for _, req := range held {
		mustMap(t, tab, req)
	}
	for _, req := range []MapRequest{mapReq(UDP, client1, 5000, 0), upnpReq(TCP, client1, 8080, 8081)} {
		if _, err := tab.Map(ctx, req); !errors.Is(err, ErrHostQuota) {
			t.Fatalf("Map of a fourth lease (%v %v) = %v; want ErrHostQuota", req.Origin, req.Internal, err)
		}
	}
	for _, req := range held {
		if res := mustMap(t, tab, req); !res.Renewed {
			t.Fatalf("Map(%v %v) at the limit: %+v; want a renewal", req.Origin, req.Internal, res)
		}
	}
	mustMap(t, tab, mapReq(TCP, client2, 4000, 0))
	if _, err := tab.Delete(ctx, TCP, held[0].Internal); err != nil {
		t.Fatal(err)
	}
	mustMap(t, tab, mapReq(UDP, client1, 5000, 0))
	if got := tab.Len(); got != 4 {
		t.Fatalf("%d leases; want 4", got)
	}
}

// TestHostQuotaPinholes: pinholes count against their internal address's
// quota like mappings.
func TestHostQuotaPinholes(t *testing.T) {
	p := dualPolicy()
	p.MaxPerHost = 2
	tab, _ := newTestTable(t, p)
	mustMap(t, tab, pinholeReq(TCP, host6, 4000))
	upnp := pinholeReq(UDP, host6, 4000)
	upnp.Origin = OriginUPnP
	mustMap(t, tab, upnp)
	if _, err := tab.Map(context.Background(), pinholeReq(TCP, host6, 4001)); !errors.Is(err, ErrHostQuota) {
		t.Fatalf("Map of a third pinhole = %v; want ErrHostQuota", err)
	}
	mustMap(t, tab, pinholeReq(TCP, host6, 4000))
	mustMap(t, tab, pinholeReq(TCP, host6b, 4001))
}

// TestMaxLeases: the table holds at most MaxLeases leases, pinholes
// included; beyond it a new lease is refused with ErrOutOfResources, not
// ErrHostQuota, and renewals pass.
func TestMaxLeases(t *testing.T) {
	p := dualPolicy()
	p.MaxLeases = 3
	p.MaxPerHost = 10
	tab, _ := newTestTable(t, p)
	ctx := context.Background()
	mustMap(t, tab, mapReq(TCP, client1, 4000, 0))
	mustMap(t, tab, upnpReq(UDP, client1, 4000, 4000))
	mustMap(t, tab, pinholeReq(TCP, host6, 4000))
	for _, req := range []MapRequest{mapReq(TCP, client2, 4000, 0), pinholeReq(UDP, host6b, 4000), mapReq(UDP, client1, 4000, 0)} {
		_, err := tab.Map(ctx, req)
		if !errors.Is(err, ErrOutOfResources) || errors.Is(err, ErrHostQuota) {
			t.Fatalf("Map(%v) on a full table = %v; want ErrOutOfResources", req.Internal, err)
		}
	}
	mustMap(t, tab, mapReq(TCP, client1, 4000, 0))
	mustMap(t, tab, pinholeReq(TCP, host6, 4000))
	if _, err := tab.DeletePinhole(ctx, 1); err != nil {
		t.Fatal(err)
	}
	mustMap(t, tab, mapReq(TCP, client2, 4000, 0))
}

// TestQuotaLoweredKeepsLeases: leases beyond a limit lowered by a reload,
// or brought back from the state file under a lower limit, are kept and
// renewed; only new ones are refused.
func TestQuotaLoweredKeepsLeases(t *testing.T) {
	ctx := context.Background()
	tab, _ := newTestTable(t, defaultPolicy())
	for port := uint16(4000); port < 4003; port++ {
		mustMap(t, tab, mapReq(TCP, client1, port, 0))
	}
	lowered := defaultPolicy()
	lowered.MaxPerHost = 2
	if gone := tab.Reconfigure(ctx, lowered); len(gone) != 0 {
		t.Fatalf("Reconfigure to a lower quota removed %v", gone)
	}
	mustMap(t, tab, mapReq(TCP, client1, 4002, 0))
	if _, err := tab.Map(ctx, mapReq(TCP, client1, 4003, 0)); !errors.Is(err, ErrHostQuota) {
		t.Fatalf("Map over a lowered quota = %v; want ErrHostQuota", err)
	}

	restarted, _ := newTestTable(t, lowered)
	if n, skipped := restarted.Restore(tab.Leases()); n != 3 || len(skipped) != 0 {
		t.Fatalf("Restore under a lower quota = %d, %v skipped; want all 3 back", n, skipped)
	}
	mustMap(t, restarted, mapReq(TCP, client1, 4001, 0))
	if _, err := restarted.Map(ctx, mapReq(TCP, client1, 4003, 0)); !errors.Is(err, ErrHostQuota) {
		t.Fatalf("Map over the quota after Restore = %v; want ErrHostQuota", err)
	}
}
