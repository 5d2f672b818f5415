package client

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/portlease/portlease/pcp"
)

func TestMapPCP(t *testing.T) {
	f := newFakePCP(t)
	pmp := newFakePMP(t)
	c := pcpTestClient(t, f, pmp, nil) // Auto: PCP first, though NAT-PMP answers too

	res, err := c.Map(t.Context(), Request{Protocol: TCP, InternalPort: 4662, Lifetime: time.Hour, Description: "eD2k"})
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Protocol: TCP, Internal: netip.MustParseAddrPort("127.0.0.1:4662"),
		External: netip.MustParseAddrPort("203.0.113.1:4662"), Lifetime: time.Hour, Method: PCP,
		Nonce: res.Nonce, Gateway: loopback, Interface: "lo"}
	if res != want || res.Nonce.IsZero() {
		t.Fatalf("Map = %+v; want %+v with a nonce", res, want)
	}
	if len(pmp.mapRequests()) != 0 {
		t.Errorf("NAT-PMP was asked too: %+v", pmp.mapRequests())
	}
	reqs := f.maps()
	if len(reqs) != 1 || reqs[0].Options.PreferFailure || reqs[0].Options.Description != "eD2k" ||
		reqs[0].Client != loopback || reqs[0].Options.ThirdParty.IsValid() {
		t.Fatalf("MAP requests %+v", reqs)
	}

	// An exact port asks with PREFER_FAILURE: taken, it is a conflict
	// carrying the result code.
	_, err = c.Map(t.Context(), Request{Protocol: TCP, InternalPort: 4663, ExternalPort: 4662})
	var pe *PCPError
	if !errors.Is(err, ErrConflict) || !errors.As(err, &pe) || pe.Code != pcp.CannotProvideExternal || pe.Lifetime != 30 {
		t.Fatalf("Map of a taken exact port = %v; want ErrConflict, CANNOT_PROVIDE_EXTERNAL", err)
	}
	if reqs := f.maps(); !reqs[len(reqs)-1].Options.PreferFailure {
		t.Error("no PREFER_FAILURE for an exact port")
	}
	if len(pmp.mapRequests()) != 0 {
		t.Error("a conflict over PCP fell back to NAT-PMP")
	}
	// Without an exact port the gateway picks another.
	res2, err := c.Map(t.Context(), Request{Protocol: TCP, InternalPort: 4663, ExternalPort: 0})
	if err != nil || res2.External.Port() == 4662 {
		t.Fatalf("Map = %+v, %v", res2, err)
	}

	// Deletion needs the nonce (§15).
	if err := c.Unmap(t.Context(), Request{Protocol: TCP, InternalPort: 4662, Nonce: newNonce()}); err == nil {
		t.Error("Unmap with another nonce succeeded")
	} else if !errors.As(err, &pe) || pe.Code != pcp.NotAuthorized {
		t.Errorf("Unmap with another nonce = %v; want NOT_AUTHORIZED", err)
	}
	if err := c.Unmap(t.Context(), Request{Protocol: TCP, InternalPort: 4662, Nonce: res.Nonce}); err != nil {
		t.Fatalf("Unmap = %v", err)
	}
	if _, ok := f.lease(pcp.ProtocolTCP, res.Internal); ok {
		t.Error("the mapping is still there")
	}
}

func TestMapPCPOptions(t *testing.T) {
	f := newFakePCP(t)
	c := pcpTestClient(t, f, nil, func(cfg *Config) { cfg.Method = PCP })
	other := netip.MustParseAddr("127.0.0.9") // not an address of this host
	filter := Filter{Remote: netip.MustParsePrefix("198.51.100.7/24"), Port: 4662}
	res, err := c.Map(t.Context(), Request{Protocol: UDP, InternalPort: 4672, InternalAddr: other, Filters: []Filter{filter}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Internal != netip.AddrPortFrom(other, 4672) {
		t.Errorf("Map = %+v", res)
	}
	reqs := f.maps()
	o := reqs[0].Options
	if o.ThirdParty != other || len(o.Filters) != 1 || o.Filters[0].Remote != netip.MustParsePrefix("198.51.100.0/24") || o.Filters[0].Port != 4662 {
		t.Errorf("options %+v; want THIRD_PARTY %s and the filter", o, other)
	}
	if _, err := c.List(t.Context()); !errors.Is(err, ErrUnsupported) {
		t.Errorf("List over PCP = %v; want ErrUnsupported", err)
	}
	if _, err := c.Map(t.Context(), Request{Protocol: UDP, InternalPort: 1, Filters: []Filter{{Remote: netip.MustParsePrefix("0.0.0.0/0")}}}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("a /0 filter = %v; want ErrInvalidRequest", err)
	}
	if err := c.Unmap(t.Context(), Request{Protocol: UDP, InternalPort: 4672}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Unmap without a nonce = %v; want ErrUnsupported", err)
	}
}

func TestPCPAgainstNATPMPServer(t *testing.T) {
	pmp := newFakePMP(t)
	// The NAT-PMP server on the PCP port answers version 0 UNSUPP_VERSION.
	c := newTestClient(t, pmp, nil, func(cfg *Config) { cfg.PCPPort = pmp.port() })
	start := time.Now()
	res, err := c.Map(t.Context(), Request{Protocol: TCP, InternalPort: 4662})
	if err != nil || res.Method != NATPMP {
		t.Fatalf("Map = %+v, %v; want NAT-PMP", res, err)
	}
	if d := time.Since(start); d > pcpIRT {
		t.Errorf("took %v: the UNSUPP_VERSION answer was not taken at once", d)
	}
	gws, err := c.Probe(t.Context())
	if err != nil || gws[0].PCP != nil || gws[0].NATPMP == nil {
		t.Errorf("Probe = %+v, %v", gws, err)
	}

	// The reverse: a PCP-only server, which NAT-PMP finds speaking
	// version 2, is mapped through over PCP.
	pmp.set(func(f *fakePMP) { f.pcp = true })
	f := newFakePCP(t)
	c = pcpTestClient(t, f, pmp, nil)
	res, err = c.Map(t.Context(), Request{Protocol: TCP, InternalPort: 4662})
	if err != nil || res.Method != PCP {
		t.Fatalf("Map = %+v, %v; want PCP", res, err)
	}
	gws, err = c.Probe(t.Context())
	if err != nil || gws[0].PCP == nil || gws[0].NATPMP == nil || !gws[0].NATPMP.PCPOnly {
		t.Errorf("Probe = %+v, %v", gws, err)
	}
}

func TestKeepPCP(t *testing.T) {
	f := newFakePCP(t)
	c := pcpTestClient(t, f, nil, nil)
	m, err := c.Keep(t.Context(), Request{Protocol: TCP, InternalPort: 4662, Lifetime: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, c.Client, Mapped)
	nonce := ev.Result.Nonce
	if ev.Result.Method != PCP || nonce.IsZero() || m.Request().Nonce != nonce {
		t.Fatalf("Mapped %+v", ev.Result)
	}
	waitEvent(t, c.Client, Renewed)

	// The gateway restarts: its next answer's epoch is invalid (§8.5)
	// and the mapping is made again.
	f.restart()
	f.announce(t, c.announce)
	waitEvent(t, c.Client, Recreated)
	waitEvent(t, c.Client, Renewed)
	for _, r := range f.maps() {
		if r.Map.Nonce != nonce {
			t.Fatalf("a request with another nonce: %+v", r)
		}
	}
	if err := m.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	reqs := f.maps()
	if last := reqs[len(reqs)-1]; last.Lifetime != 0 || last.Map.Nonce != nonce {
		t.Errorf("deletion %+v", last)
	}
	if _, ok := f.lease(pcp.ProtocolTCP, netip.MustParseAddrPort("127.0.0.1:4662")); ok {
		t.Error("the mapping is still there")
	}
}

func TestPCPStateLost(t *testing.T) {
	tests := []struct {
		prev    uint32
		elapsed time.Duration
		curr    uint32
		lost    bool
	}{
		{1000, 10 * time.Second, 1010, false},
		{1000, 0, 999, false},                   // back by one second: fine
		{1000, 0, 998, true},                    // back by more
		{1000, 100 * time.Second, 1003, true},   // the server counted far less: restarted
		{1000, 10 * time.Second, 5000, true},    // the server counted far more
		{1000, 1600 * time.Second, 2500, false}, // within 1/16
	}
	for _, tt := range tests {
		if got := pcpStateLost(tt.prev, tt.elapsed, tt.curr); got != tt.lost {
			t.Errorf("pcpStateLost(%d, %v, %d) = %v; want %v", tt.prev, tt.elapsed, tt.curr, got, tt.lost)
		}
	}
}
