package natpmpsrv

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/natpmp"
)

// TestPCPLeaseNeedsNonce: NAT-PMP carries no mapping nonce, so it can
// neither renew nor delete a mapping made over PCP (RFC 6887 §11.3 and §15:
// a renewal or deletion must carry the mapping's nonce), even from the host
// that holds it: both are refused with NOT_AUTHORIZED and the PCP lease
// stays as it was. A deletion of all of the host's NAT-PMP mappings leaves it
// too.
func TestPCPLeaseNeedsNonce(t *testing.T) {
	table := newTable()
	table.SetExternalAddress(netip.MustParseAddr("203.0.113.1"))
	_, c := startServer(t, table)
	internal := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 8080)
	made, err := table.Map(context.Background(), gateway.MapRequest{Protocol: gateway.TCP, Internal: internal,
		ExternalPort: 18080, Lifetime: 10 * time.Minute, Nonce: [12]byte{1, 2, 3}, CheckNonce: true, Origin: gateway.OriginPCP})
	if err != nil {
		t.Fatal(err)
	}
	renew := askMapping(t, c, mapReq(natpmp.OpMapTCP, 8080, 18080, 3600))
	if renew.ResultCode != natpmp.NotAuthorized {
		t.Errorf("NAT-PMP renewal of a PCP mapping: %+v; want NOT_AUTHORIZED", renew)
	}
	del := askMapping(t, c, mapReq(natpmp.OpMapTCP, 8080, 0, 0))
	if del.ResultCode != natpmp.NotAuthorized {
		t.Errorf("NAT-PMP deletion of a PCP mapping: %+v; want NOT_AUTHORIZED", del)
	}
	all := askMapping(t, c, mapReq(natpmp.OpMapTCP, 0, 0, 0))
	if all.ResultCode != natpmp.Success {
		t.Errorf("NAT-PMP deletion of all: %+v; want SUCCESS", all)
	}
	l, ok := table.Lookup(gateway.TCP, internal)
	switch {
	case !ok:
		t.Fatal("NAT-PMP removed the PCP mapping")
	case l.Origin != gateway.OriginPCP || l.ExternalPort != made.ExternalPort || !l.Expires.Equal(made.Expires):
		t.Fatalf("PCP mapping after NAT-PMP requests: %+v; want it as made: %+v", l, made.Lease)
	}
}
