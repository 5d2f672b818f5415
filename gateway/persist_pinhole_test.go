package gateway_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/statefile"
)

// TestPinholeSurvivesRestartThroughStateFile: a pinhole with a filter and
// a filtered IPv4 lease go through the real state file and come back into
// a new table with their UniqueID and filters.
func TestPinholeSurvivesRestartThroughStateFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "leases")
	policy := gateway.Policy{Rules: []gateway.Rule{
		{Allow: true, ExternalPorts: gateway.DefaultPorts, Internal: netip.MustParsePrefix("2001:db8:1::/64"), InternalPorts: gateway.DefaultPorts},
		{Allow: true, ExternalPorts: gateway.DefaultPorts, Internal: netip.MustParsePrefix("198.51.100.0/24"), InternalPorts: gateway.DefaultPorts},
	}}
	f, _, err := statefile.Open(path, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tab := gateway.New(gateway.Config{Policy: policy, Journal: f})
	filters := []gateway.Filter{{Remote: netip.MustParsePrefix("2001:db8:9::/48"), Port: 4000}}
	ph, err := tab.Map(ctx, gateway.MapRequest{Protocol: gateway.UDP, Internal: netip.MustParseAddrPort("[2001:db8:1::10]:5000"),
		Lifetime: time.Hour, Origin: gateway.OriginUPnP, Filters: filters, Description: "game"})
	if err != nil {
		t.Fatal(err)
	}
	v4filters := []gateway.Filter{{Remote: netip.MustParsePrefix("203.0.113.0/24")}}
	if _, err := tab.Map(ctx, gateway.MapRequest{Protocol: gateway.UDP, Internal: netip.MustParseAddrPort("198.51.100.10:5000"),
		ExternalPort: 5000, Lifetime: time.Hour, Origin: gateway.OriginPCP, Filters: v4filters}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	f2, ld, err := statefile.Open(path, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	tab2 := gateway.New(gateway.Config{Policy: policy, Journal: f2})
	if n, skipped := tab2.Restore(ld.Leases); n != 2 || len(skipped) != 0 {
		t.Fatalf("Restore = %d, skipped %v; want 2, none", n, skipped)
	}
	got, ok := tab2.Pinhole(ph.PinholeID)
	if !ok || got.Internal != ph.Internal || !slices.Equal(got.Filters, filters) || got.Description != "game" || !got.Pinhole {
		t.Fatalf("restored pinhole %+v, %v; want %+v", got, ok, ph.Lease)
	}
	if l, ok := tab2.LookupExternal(gateway.UDP, 5000); !ok || !slices.Equal(l.Filters, v4filters) || l.Pinhole {
		t.Fatalf("restored IPv4 lease %+v, %v", l, ok)
	}
}
