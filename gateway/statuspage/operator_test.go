package statuspage

import (
	"context"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
)

// TestDeleteRecordedAsOperator: the page's deletions reach the real lease
// core as the operator's (gateway.ReasonOperator in its events), not as a
// client's, and a host's deletion takes all of its leases, of both
// protocols.
func TestDeleteRecordedAsOperator(t *testing.T) {
	table := gateway.New(gateway.Config{Policy: gateway.Policy{
		MaxLifetime: time.Hour,
		Rules: []gateway.Rule{{Allow: true, ExternalPorts: gateway.DefaultPorts,
			Internal: netip.MustParsePrefix("198.51.100.0/24"), InternalPorts: gateway.DefaultPorts}},
	}})
	defer table.Close()
	for _, r := range []gateway.MapRequest{
		{Protocol: gateway.TCP, Internal: netip.MustParseAddrPort("198.51.100.2:8080"), ExternalPort: 8080, Lifetime: time.Hour, Origin: gateway.OriginNATPMP},
		{Protocol: gateway.TCP, Internal: netip.MustParseAddrPort("198.51.100.3:2222"), ExternalPort: 2222, Lifetime: time.Hour, Origin: gateway.OriginNATPMP},
		{Protocol: gateway.UDP, Internal: netip.MustParseAddrPort("198.51.100.3:5353"), ExternalPort: 5353, Lifetime: time.Hour, Origin: gateway.OriginNATPMP},
	} {
		if _, err := table.Map(context.Background(), r); err != nil {
			t.Fatalf("map %v: %v", r.Internal, err)
		}
	}
	_, before := table.Events(0)
	h := newHandler(t, Config{Table: table, Admin: true, Token: testToken})
	for _, body := range []string{`{"what":"lease","proto":"tcp","externalPort":8080}`, `{"what":"host","host":"198.51.100.3"}`} {
		if w := post(h, testToken, "application/json", body); w.Code != http.StatusOK {
			t.Fatalf("POST %s: %d %s", body, w.Code, w.Body)
		}
	}
	if n := len(table.Leases()); n != 0 {
		t.Errorf("%d leases left; want none", n)
	}
	events, _ := table.Events(before)
	if len(events) != 3 {
		t.Fatalf("%d events after the deletions; want 3: %+v", len(events), events)
	}
	for _, e := range events {
		if e.Kind != gateway.EventDeleted || e.Reason != gateway.ReasonOperator {
			t.Errorf("event of %v: %v, reason %q; want deleted by %q", e.Lease.Internal, e.Kind, e.Reason, gateway.ReasonOperator)
		}
	}
}
