package upnpsrv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/upnp"
)

// Addresses of the pinhole tests: the lab's IPv6 LAN (2001:db8::/32, docs/architecture.md).
const (
	host6A     = "2001:db8:1::10" // host A's stable address
	host6ATemp = "2001:db8:1::a1" // host A's temporary address, same link-layer address
	host6B     = "2001:db8:1::20"
	ctlFW      = "/ctl/IP6FCtl"
	evtFW      = "/evt/IP6FCtl"
)

// fakePinholes is the lease core of the pinhole tests: the table for
// IPv4, and pinholes as the core's contract describes them (one per
// protocol and internal endpoint, renewed by a request with the same
// filters, ErrConflict with others, UniqueIDs from 1).
type fakePinholes struct {
	core
	mu     sync.Mutex
	next   uint16
	byID   map[uint16]gateway.Lease
	mapErr error // returned by Map for a pinhole when set
	maps   int   // pinhole Map calls
}

func newFakePinholes(table *gateway.Table) *fakePinholes {
	return &fakePinholes{core: table, byID: map[uint16]gateway.Lease{}}
}

func (f *fakePinholes) Map(ctx context.Context, req gateway.MapRequest) (gateway.MapResult, error) {
	if !req.Internal.Addr().Is6() || req.Internal.Addr().Is4In6() {
		return f.core.Map(ctx, req)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.maps++
	if f.mapErr != nil {
		return gateway.MapResult{}, f.mapErr
	}
	now := time.Now()
	for id, l := range f.byID {
		if l.Protocol == req.Protocol && l.Internal == req.Internal {
			if !slices.Equal(l.Filters, req.Filters) {
				return gateway.MapResult{}, gateway.ErrConflict
			}
			l.Expires = now.Add(req.Lifetime)
			f.byID[id] = l
			return gateway.MapResult{Lease: l, Renewed: true, Granted: req.Lifetime}, nil
		}
	}
	f.next++
	l := gateway.Lease{Protocol: req.Protocol, Internal: req.Internal, ExternalPort: req.Internal.Port(),
		Filters: req.Filters, Pinhole: true, PinholeID: f.next, Origin: req.Origin, Created: now, Expires: now.Add(req.Lifetime)}
	f.byID[l.PinholeID] = l
	return gateway.MapResult{Lease: l, Granted: req.Lifetime}, nil
}

func (f *fakePinholes) Pinhole(id uint16) (gateway.Lease, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.byID[id]
	return l, ok
}

func (f *fakePinholes) UpdatePinhole(_ context.Context, id uint16, lifetime time.Duration) (gateway.MapResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.byID[id]
	if !ok {
		return gateway.MapResult{}, gateway.ErrNotFound
	}
	l.Expires = time.Now().Add(lifetime)
	f.byID[id] = l
	return gateway.MapResult{Lease: l, Renewed: true, Granted: lifetime}, nil
}

func (f *fakePinholes) DeletePinhole(_ context.Context, id uint16) (gateway.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.byID[id]
	if !ok {
		return gateway.Lease{}, gateway.ErrNotFound
	}
	delete(f.byID, id)
	return l, nil
}

// fakeNeighbours is a neighbour table.
type fakeNeighbours map[netip.Addr]net.HardwareAddr

func (n fakeNeighbours) LinkAddr(ip netip.Addr) (net.HardwareAddr, error) {
	if hw, ok := n[ip]; ok {
		return hw, nil
	}
	return nil, errNoNeighbour
}

// labNeighbours: host A with two IPv6 addresses and its IPv4 address on one
// link-layer address, host B on another.
var labNeighbours = fakeNeighbours{
	netip.MustParseAddr(host6A):     {0x02, 0, 0, 0, 0, 0x0a},
	netip.MustParseAddr(host6ATemp): {0x02, 0, 0, 0, 0, 0x0a},
	netip.MustParseAddr(hostA):      {0x02, 0, 0, 0, 0, 0x0a},
	netip.MustParseAddr(host6B):     {0x02, 0, 0, 0, 0, 0x0b},
}

// pinholeConfig is testConfig serving the IPv6 LAN too, with the
// neighbours of labNeighbours and fixed outbound timeouts.
func pinholeConfig(t testing.TB) Config {
	cfg := testConfig(t)
	cfg.Clients = append(cfg.Clients, netip.MustParsePrefix("2001:db8:1::/64"))
	cfg.Neighbours = labNeighbours
	cfg.OutboundTimeout = func(p gateway.Protocol) (time.Duration, error) {
		return map[gateway.Protocol]time.Duration{gateway.TCP: 7440 * time.Second, gateway.UDP: 120 * time.Second}[p], nil
	}
	return cfg
}

// startPinholeServer returns an IGD:2 server of cfg on a fake pinhole core.
func startPinholeServer(t testing.TB, cfg Config) (*Server, *fakePinholes) {
	t.Helper()
	table := newTable(t, gateway.Config{})
	f := newFakePinholes(table)
	return startServer(t, cfg, table, f), f
}

// goldenAction reads a request of upnp/testdata/soap as upnpc sent it.
func goldenAction(t testing.TB, name, action string) upnp.Action {
	t.Helper()
	b, err := os.ReadFile("../../upnp/testdata/soap/" + name)
	if err != nil {
		t.Fatal(err)
	}
	a, err := upnp.ParseActionRequest(bytes.NewReader(b), upnp.ServiceWANIPv6FC1+"#"+action)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestFirewallDescription(t *testing.T) {
	s, _ := startPinholeServer(t, pinholeConfig(t))
	w := serve(s, hostA, http.MethodGet, DescriptionPath, nil, nil)
	d, err := upnp.ParseDescription(bytes.NewReader(w.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	wcd := d.Device.Devices[0].Devices[0]
	if len(wcd.Services) != 2 || wcd.Services[0].ServiceType != upnp.ServiceWANIP2 || wcd.Services[1].ServiceType != upnp.ServiceWANIPv6FC1 ||
		wcd.Services[1].ServiceID != serviceIDFirewall || wcd.Services[1].ControlURL != ctlFW {
		t.Fatalf("WANConnectionDevice services %+v", wcd.Services)
	}
	checkSCPD(t, s, 2, wcd.Services[1])
	if _, svcs, _ := s.Advertisement(); !slices.Contains(svcs, upnp.ServiceWANIPv6FC1) {
		t.Errorf("Advertisement services %v", svcs)
	}
	loc, _ := url.Parse("http://" + gwHost + DescriptionPath)
	if cs := d.ConnectionServices(loc); len(cs) != 1 || cs[0].ServiceType != upnp.ServiceWANIP2 {
		t.Errorf("ConnectionServices = %+v", cs)
	}

	// IGD:1 has no such service.
	cfg := pinholeConfig(t)
	cfg.Version = 1
	s1, _ := startPinholeServer(t, cfg)
	for _, s := range []*Server{s1} {
		if _, svcs, _ := s.Advertisement(); slices.Contains(svcs, upnp.ServiceWANIPv6FC1) {
			t.Errorf("services %v", svcs)
		}
		if w := serve(s, host6A, http.MethodPost, ctlFW, nil, nil); w.Code != http.StatusNotFound {
			t.Errorf("POST %s: %d; want 404", ctlFW, w.Code)
		}
	}
}

// TestPinholeLifeUpnpc opens, checks, renews and deletes a pinhole with the
// requests of upnpc -6.
func TestPinholeLifeUpnpc(t *testing.T) {
	s, f := startPinholeServer(t, pinholeConfig(t))
	resp := mustCall(t, s, host6A, ctlFW, goldenAction(t, "req-addpinhole-miniupnpc.xml", upnp.ActionAddPinhole))
	id, err := upnp.UniqueID(resp)
	if err != nil || id != 1 {
		t.Fatalf("UniqueID = %d, %v", id, err)
	}
	l, _ := f.Pinhole(id)
	if l.Internal != netip.MustParseAddrPort("["+host6A+"]:8080") || l.Protocol != gateway.TCP || len(l.Filters) != 0 ||
		l.Origin != gateway.OriginUPnP || time.Until(l.Expires) > time.Hour || time.Until(l.Expires) < 50*time.Minute {
		t.Fatalf("pinhole %+v", l)
	}
	// The same request again renews it: same UniqueID, no second pinhole.
	resp = mustCall(t, s, host6A, ctlFW, goldenAction(t, "req-addpinhole-miniupnpc.xml", upnp.ActionAddPinhole))
	if again, _ := upnp.UniqueID(resp); again != id || len(f.byID) != 1 {
		t.Fatalf("renewal: UniqueID %d, %d pinholes", again, len(f.byID))
	}
	// From the host's temporary address: the same host by its link-layer address.
	resp = mustCall(t, s, host6ATemp, ctlFW, goldenAction(t, "req-addpinhole-filtered-miniupnpc.xml", upnp.ActionAddPinhole))
	if fid, _ := upnp.UniqueID(resp); fid != 2 {
		t.Fatalf("filtered pinhole UniqueID %d", fid)
	}
	fl, _ := f.Pinhole(2)
	want := []gateway.Filter{{Remote: netip.MustParsePrefix("2001:db8:2::20/128"), Port: 4000}}
	if !slices.Equal(fl.Filters, want) || fl.Protocol != gateway.UDP {
		t.Errorf("filtered pinhole %+v", fl)
	}

	resp = mustCall(t, s, host6A, ctlFW, goldenAction(t, "req-checkpinholeworking-miniupnpc.xml", upnp.ActionCheckPinholeWorking))
	if w, err := upnp.IsWorking(resp); err != nil || !w {
		t.Errorf("IsWorking = %v, %v", w, err)
	}
	mustCall(t, s, host6A, ctlFW, goldenAction(t, "req-updatepinhole-miniupnpc.xml", upnp.ActionUpdatePinhole))
	if l, _ := f.Pinhole(id); time.Until(l.Expires) < 110*time.Minute {
		t.Errorf("UpdatePinhole 7200: expires in %v", time.Until(l.Expires))
	}
	if _, err := call(t, s, host6A, ctlFW, goldenAction(t, "req-getpinholepackets-miniupnpc.xml", upnp.ActionGetPinholePackets)); codeOf(err) != 501 {
		t.Errorf("GetPinholePackets without counts: %v; want 501", err)
	}
	mustCall(t, s, host6A, ctlFW, goldenAction(t, "req-deletepinhole-miniupnpc.xml", upnp.ActionDeletePinhole))
	if _, ok := f.Pinhole(id); ok {
		t.Fatal("pinhole still there after DeletePinhole")
	}
	for _, a := range []upnp.Action{upnp.DeletePinhole(id), upnp.UpdatePinhole(id, 60), upnp.CheckPinholeWorking(id), upnp.GetPinholePackets(id)} {
		if _, err := call(t, s, host6A, ctlFW, a); codeOf(err) != int(upnp.NoSuchEntry) {
			t.Errorf("%s of a deleted pinhole: %v; want 704", a.Name, err)
		}
	}

	resp = mustCall(t, s, host6A, ctlFW, goldenAction(t, "req-getfirewallstatus-miniupnpc.xml", upnp.ActionGetFirewallStatus))
	if on, allowed, err := upnp.FirewallStatus(resp); err != nil || !on || !allowed {
		t.Errorf("FirewallStatus = %v %v %v", on, allowed, err)
	}
	resp = mustCall(t, s, host6A, ctlFW, goldenAction(t, "req-getoutboundpinholetimeout-miniupnpc.xml", upnp.ActionGetOutboundPinholeTimeout))
	if v, err := upnp.OutboundPinholeTimeout(resp); err != nil || v != 7440 {
		t.Errorf("OutboundPinholeTimeout = %d, %v; want 7440", v, err)
	}
}

func TestAddPinholeRefusals(t *testing.T) {
	base := upnp.Pinhole{InternalClient: netip.MustParseAddr(host6A), InternalPort: 8080, Protocol: upnp.PinholeTCP, LeaseTime: 600}
	with := func(mod func(*upnp.Pinhole)) upnp.Action {
		p := base
		mod(&p)
		return upnp.AddPinhole(p)
	}
	for _, tt := range []struct {
		name   string
		client string
		a      upnp.Action
		mapErr error
		code   int
	}{
		{"ICMPv6", host6A, with(func(p *upnp.Pinhole) { p.Protocol = 58 }), nil, 705},
		{"protocol wildcard", host6A, with(func(p *upnp.Pinhole) { p.Protocol = 65535 }), nil, 707},
		{"internal port wildcard", host6A, with(func(p *upnp.Pinhole) { p.InternalPort = 0 }), nil, 706},
		{"internal client wildcard", host6A, with(func(p *upnp.Pinhole) { p.InternalClient = netip.Addr{} }), nil, 708},
		{"internal client star", host6A, withArg(upnp.AddPinhole(base), upnp.ArgInternalClient, "*"), nil, 708},
		{"link-local internal client", host6A, with(func(p *upnp.Pinhole) { p.InternalClient = netip.MustParseAddr("fe80::10") }), nil, 402},
		{"IPv4 internal client", hostA, withArg(upnp.AddPinhole(base), upnp.ArgInternalClient, hostA), nil, 402},
		{"multicast remote host", host6A, with(func(p *upnp.Pinhole) { p.RemoteHost = netip.MustParseAddr("ff02::1") }), nil, 402},
		{"lease 0", host6A, with(func(p *upnp.Pinhole) { p.LeaseTime = 0 }), nil, 601},
		{"another host", host6B, upnp.AddPinhole(base), nil, 606},
		{"a host not in the neighbour table", "2001:db8:1::99", upnp.AddPinhole(base), nil, 606},
		{"rules deny", host6A, upnp.AddPinhole(base), gateway.ErrNotAuthorized, 606},
		{"no room", host6A, upnp.AddPinhole(base), gateway.ErrOutOfResources, 701},
		{"host quota", host6A, upnp.AddPinhole(base), fmt.Errorf("%w: 1", gateway.ErrHostQuota), 701},
		{"kernel refuses", host6A, upnp.AddPinhole(base), fmt.Errorf("%w: nft", gateway.ErrFirewall), 501},
		{"IPv4 client for its own IPv6 address", hostA, upnp.AddPinhole(base), nil, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, f := startPinholeServer(t, pinholeConfig(t))
			f.mapErr = tt.mapErr
			_, err := call(t, s, tt.client, ctlFW, tt.a)
			if codeOf(err) != tt.code {
				t.Fatalf("AddPinhole: %v; want %d", err, tt.code)
			}
			if tt.code != 0 && tt.mapErr == nil && f.maps != 0 {
				t.Errorf("refused request reached the core")
			}
		})
	}

	// One pinhole per endpoint: another filter for it is refused.
	s, _ := startPinholeServer(t, pinholeConfig(t))
	mustCall(t, s, host6A, ctlFW, upnp.AddPinhole(base))
	other := base
	other.RemoteHost = netip.MustParseAddr("2001:db8:2::20")
	if _, err := call(t, s, host6A, ctlFW, upnp.AddPinhole(other)); codeOf(err) != 501 {
		t.Errorf("AddPinhole with another RemoteHost: %v; want 501", err)
	}
}

func TestPinholeSecureMode(t *testing.T) {
	base := upnp.Pinhole{InternalClient: netip.MustParseAddr(host6A), InternalPort: 8080, Protocol: upnp.PinholeUDP, LeaseTime: 600}
	for _, tt := range []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"secure", func(*Config) {}, false},
		{"no neighbour table", func(c *Config) { c.Neighbours = nil }, false},
		{"third party allowed", func(c *Config) {
			c.MayActFor = func(r, i netip.Addr) bool {
				return r == netip.MustParseAddr(host6B) && i == netip.MustParseAddr(host6A)
			}
		}, true},
		{"allow foreign", func(c *Config) { c.AllowForeign = true }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := pinholeConfig(t)
			tt.mod(&cfg)
			s, _ := startPinholeServer(t, cfg)
			want := 606
			if tt.ok {
				want = 0
			}
			_, err := call(t, s, host6B, ctlFW, upnp.AddPinhole(base))
			if codeOf(err) != want {
				t.Fatalf("AddPinhole from B for A: %v; want %d", err, want)
			}
			mustCall(t, s, host6A, ctlFW, upnp.AddPinhole(base))
			for _, a := range []upnp.Action{upnp.UpdatePinhole(1, 60), upnp.CheckPinholeWorking(1), upnp.DeletePinhole(1)} {
				if _, err := call(t, s, host6B, ctlFW, a); codeOf(err) != want {
					t.Errorf("%s from B of A's pinhole: %v; want %d", a.Name, err, want)
				}
			}
		})
	}
	// Without a neighbour table the host's other address is refused too.
	cfg := pinholeConfig(t)
	cfg.Neighbours = nil
	s, _ := startPinholeServer(t, cfg)
	if _, err := call(t, s, host6ATemp, ctlFW, upnp.AddPinhole(base)); codeOf(err) != 606 {
		t.Errorf("without neighbours, A's other address: %v; want 606", err)
	}
}

func TestPinholePackets(t *testing.T) {
	cfg := pinholeConfig(t)
	packets := map[netip.AddrPort]uint64{}
	cfg.PinholePackets = func(l gateway.Lease) (uint64, error) {
		n, ok := packets[l.Internal]
		if !ok {
			return 0, errors.New("no counter")
		}
		return n, nil
	}
	s, _ := startPinholeServer(t, cfg)
	p := upnp.Pinhole{InternalClient: netip.MustParseAddr(host6A), InternalPort: 8080, Protocol: upnp.PinholeTCP, LeaseTime: 600}
	mustCall(t, s, host6A, ctlFW, upnp.AddPinhole(p))
	ep := netip.AddrPortFrom(p.InternalClient, p.InternalPort)
	if _, err := call(t, s, host6A, ctlFW, upnp.GetPinholePackets(1)); codeOf(err) != 501 {
		t.Errorf("GetPinholePackets, counter failing: %v; want 501", err)
	}
	packets[ep] = 0
	if _, err := call(t, s, host6A, ctlFW, upnp.CheckPinholeWorking(1)); codeOf(err) != int(upnp.NoTrafficReceived) {
		t.Errorf("CheckPinholeWorking without traffic: %v; want 709", err)
	}
	packets[ep] = 1<<32 + 3
	resp := mustCall(t, s, host6A, ctlFW, upnp.GetPinholePackets(1))
	if n, err := upnp.PinholePackets(resp); err != nil || n != 3 {
		t.Errorf("PinholePackets = %d, %v; want 3 (ui4 rolls over)", n, err)
	}
	if w, err := upnp.IsWorking(mustCall(t, s, host6A, ctlFW, upnp.CheckPinholeWorking(1))); err != nil || !w {
		t.Errorf("IsWorking = %v, %v", w, err)
	}
}

func TestOutboundPinholeTimeout(t *testing.T) {
	s, _ := startPinholeServer(t, pinholeConfig(t))
	p := upnp.Pinhole{InternalClient: netip.MustParseAddr(host6A), InternalPort: 8080}
	for proto, want := range map[uint16]int{upnp.PinholeTCP: 7440, upnp.PinholeUDP: 120, upnp.PinholeAnyProtocol: 120, 132: -705} {
		p.Protocol = proto
		resp, err := call(t, s, host6B, ctlFW, upnp.GetOutboundPinholeTimeout(p))
		if want < 0 {
			if codeOf(err) != -want {
				t.Errorf("protocol %d: %v; want %d", proto, err, -want)
			}
			continue
		}
		if v, err := upnp.OutboundPinholeTimeout(resp); err != nil || int(v) != want {
			t.Errorf("protocol %d: %d, %v; want %d", proto, v, err, want)
		}
	}
}

func TestFirewallEvents(t *testing.T) {
	cfg := pinholeConfig(t)
	s, _ := startPinholeServer(t, cfg)
	sub := newSubscriber(t, http.StatusOK)
	subscribe(t, s, evtFW, sub.url)
	n := sub.next(t)
	if n.seq != 0 || len(n.vars) != 2 || n.vars["FirewallEnabled"] != "1" || n.vars["InboundPinholeAllowed"] != "1" {
		t.Fatalf("initial event %+v", n)
	}
}
