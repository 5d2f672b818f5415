package client

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/natpmp"
)

func TestMapNATPMP(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(f *fakePMP)
		req     Request
		want    Result
		wantErr error
		// wantCode, when set, is the *natpmp.ResultError code expected.
		wantCode natpmp.ResultCode
		// sent is whether a mapping request must reach the gateway.
		sent bool
	}{
		{
			name: "same port",
			req:  Request{Protocol: TCP, InternalPort: 4662, Lifetime: time.Hour},
			want: Result{Protocol: TCP, Internal: netip.MustParseAddrPort("127.0.0.1:4662"),
				External: netip.MustParseAddrPort("203.0.113.1:4662"), Lifetime: time.Hour, Method: NATPMP,
				Gateway: loopback, Interface: "lo"},
			sent: true,
		},
		{
			name: "lower-case protocol, other external port, default lifetime shortened",
			setup: func(f *fakePMP) {
				f.lifetime = 120
			},
			req: Request{Protocol: "udp", InternalPort: 4672, ExternalPort: 14672},
			want: Result{Protocol: UDP, Internal: netip.MustParseAddrPort("127.0.0.1:4672"),
				External: netip.MustParseAddrPort("203.0.113.1:14672"), Lifetime: 120 * time.Second, Method: NATPMP,
				Gateway: loopback, Interface: "lo"},
			sent: true,
		},
		{
			name:     "not authorized",
			setup:    func(f *fakePMP) { f.code = natpmp.NotAuthorized },
			req:      Request{Protocol: TCP, InternalPort: 4662},
			wantCode: natpmp.NotAuthorized,
			sent:     true,
		},
		{
			name:     "out of resources",
			setup:    func(f *fakePMP) { f.code = natpmp.OutOfResources },
			req:      Request{Protocol: UDP, InternalPort: 4665},
			wantCode: natpmp.OutOfResources,
			sent:     true,
		},
		{
			name:    "PCP-only server",
			setup:   func(f *fakePMP) { f.pcp = true },
			req:     Request{Protocol: TCP, InternalPort: 4662},
			wantErr: ErrUnsupported,
		},
		{
			name:    "foreign address",
			req:     Request{Protocol: TCP, InternalPort: 4662, InternalAddr: netip.MustParseAddr("127.0.0.5")},
			wantErr: ErrForeignAddress,
		},
		{
			name:    "invalid protocol",
			req:     Request{Protocol: "SCTP", InternalPort: 4662},
			wantErr: ErrInvalidRequest,
		},
		{
			name:    "internal port 0",
			req:     Request{Protocol: TCP},
			wantErr: ErrInvalidRequest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakePMP(t)
			if tt.setup != nil {
				f.set(tt.setup)
			}
			c := newTestClient(t, f, nil, func(cfg *Config) { cfg.Method = NATPMP })
			got, err := c.Map(t.Context(), tt.req)
			switch {
			case tt.wantCode != 0:
				var re *natpmp.ResultError
				if !errors.As(err, &re) || re.Code != tt.wantCode {
					t.Fatalf("Map(%v) = %v; want result code %v", tt.req, err, tt.wantCode)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Map(%v) = %v; want %v", tt.req, err, tt.wantErr)
				}
			case err != nil:
				t.Fatalf("Map(%v) = %v", tt.req, err)
			case got != tt.want:
				t.Fatalf("Map(%v) = %+v; want %+v", tt.req, got, tt.want)
			}
			if sent := len(f.mapRequests()) > 0; sent != tt.sent {
				t.Errorf("mapping request sent: %v; want %v", sent, tt.sent)
			}
		})
	}
}

func TestMapForeignAddressError(t *testing.T) {
	f := newFakePMP(t)
	c := newTestClient(t, f, nil, func(cfg *Config) { cfg.Method = NATPMP })
	foreign := netip.MustParseAddr("127.0.0.5")
	_, err := c.Map(t.Context(), Request{Protocol: TCP, InternalPort: 80, InternalAddr: foreign})
	var fe *ForeignAddressError
	if !errors.As(err, &fe) || fe.Addr != foreign || fe.Local != loopback {
		t.Fatalf("Map(foreign) = %v; want a *ForeignAddressError naming %s and %s", err, foreign, loopback)
	}
}

func TestMapNoGateway(t *testing.T) {
	// Nothing listens on the NAT-PMP port and there is no IGD.
	c := newTestClient(t, nil, nil, nil)
	_, err := c.Map(t.Context(), Request{Protocol: TCP, InternalPort: 4662})
	if !errors.Is(err, ErrNoGateway) {
		t.Fatalf("Map = %v; want ErrNoGateway", err)
	}
}

func TestUnmapNATPMP(t *testing.T) {
	f := newFakePMP(t)
	c := newTestClient(t, f, nil, func(cfg *Config) { cfg.Method = NATPMP })
	r := Request{Protocol: UDP, InternalPort: 4672}
	if _, err := c.Map(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	if !f.has(UDP, 4672) {
		t.Fatal("the gateway holds no mapping after Map")
	}
	if err := c.Unmap(t.Context(), r); err != nil {
		t.Fatalf("Unmap = %v", err)
	}
	if f.has(UDP, 4672) {
		t.Fatal("the gateway still holds the mapping after Unmap")
	}
	reqs := f.mapRequests()
	if last := reqs[len(reqs)-1]; !last.IsDelete() || last.InternalPort != 4672 || last.Opcode != natpmp.OpMapUDP {
		t.Fatalf("last request %+v; want a UDP deletion of internal port 4672", last)
	}
}

func TestProbeNATPMP(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fakePMP)
		want  NATPMPInfo
		class AddressClass
		dbl   bool
	}{
		{"documentation address", nil, NATPMPInfo{ExternalAddress: netip.MustParseAddr("203.0.113.1"), Epoch: 100000}, Documentation, false},
		{"carrier-grade NAT", func(f *fakePMP) { f.ext = netip.MustParseAddr("100.64.1.2") },
			NATPMPInfo{ExternalAddress: netip.MustParseAddr("100.64.1.2"), Epoch: 100000}, Shared, true},
		{"private", func(f *fakePMP) { f.ext = netip.MustParseAddr("192.168.1.2") },
			NATPMPInfo{ExternalAddress: netip.MustParseAddr("192.168.1.2"), Epoch: 100000}, Private, true},
		{"PCP only", func(f *fakePMP) { f.pcp = true }, NATPMPInfo{PCPOnly: true}, Unknown, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakePMP(t)
			if tt.setup != nil {
				f.set(tt.setup)
			}
			c := newTestClient(t, f, nil, func(cfg *Config) { cfg.Method = NATPMP })
			gws, err := c.Probe(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(gws) != 1 || gws[0].NATPMP == nil {
				t.Fatalf("Probe = %+v; want one gateway with NAT-PMP", gws)
			}
			g := gws[0]
			got := *g.NATPMP
			if got.Epoch >= tt.want.Epoch && got.Epoch < tt.want.Epoch+1000 {
				got.Epoch = tt.want.Epoch // seconds may have passed
			}
			if got != tt.want || g.AddressClass != tt.class || g.DoubleNAT != tt.dbl || g.Address != loopback || g.Local != loopback {
				t.Fatalf("Probe = %+v (NAT-PMP %+v); want %+v, class %v, double NAT %v", g, got, tt.want, tt.class, tt.dbl)
			}
		})
	}
}

// kinds returns the kinds of events, in order.
func kinds(evs []Event) []EventKind {
	out := make([]EventKind, len(evs))
	for i, ev := range evs {
		out[i] = ev.Kind
	}
	return out
}

// collect reads events of the mapping of internal port port until n have
// come; other events are skipped.
func collect(t *testing.T, c *Client, port uint16, n int) []Event {
	t.Helper()
	var out []Event
	for len(out) < n {
		ev := waitEvent(t, c, Mapped, Renewed, Recreated, Failed, Deleted)
		if ev.Request.InternalPort == port {
			out = append(out, ev)
		}
	}
	return out
}

func TestKeepNATPMPRenewsAtHalfLifetime(t *testing.T) {
	f := newFakePMP(t)
	f.set(func(f *fakePMP) { f.lifetime = 2 }) // renewals every second
	c := newTestClient(t, f, nil, func(cfg *Config) { cfg.Method = NATPMP })
	m, err := c.Keep(t.Context(), Request{Protocol: TCP, InternalPort: 4662})
	if err != nil {
		t.Fatal(err)
	}
	evs := collect(t, c.Client, 4662, 3)
	if got, want := kinds(evs), []EventKind{Mapped, Renewed, Renewed}; !equalKinds(got, want) {
		t.Fatalf("events %v; want %v", got, want)
	}
	for _, ev := range evs {
		if ev.Result.External != netip.MustParseAddrPort("203.0.113.1:4662") || ev.Result.Lifetime != 2*time.Second {
			t.Fatalf("event %v: result %+v", ev.Kind, ev.Result)
		}
	}
	// Every renewal asks for the external port granted.
	for _, r := range f.mapRequests() {
		if r.SuggestedExternalPort != 4662 || r.InternalPort != 4662 {
			t.Fatalf("request %+v; want internal and suggested external port 4662", r)
		}
	}
	if res, ok := m.Current(); !ok || res.External.Port() != 4662 {
		t.Fatalf("Current = %+v, %v", res, ok)
	}
	if err := m.Close(t.Context()); err != nil {
		t.Fatalf("Close = %v", err)
	}
	waitEvent(t, c.Client, Deleted)
	if f.has(TCP, 4662) {
		t.Fatal("the gateway still holds the mapping after Close")
	}
	if _, ok := m.Current(); ok {
		t.Fatal("Current reports a mapping after Close")
	}
}

func equalKinds(a, b []EventKind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestKeepNATPMPRecreates(t *testing.T) {
	tests := []struct {
		name string
		// check is the check interval: short to find the restart by the
		// periodic external address request, long (an hour) to find it
		// by the announcement alone.
		check    time.Duration
		announce bool
	}{
		{name: "epoch going backwards at a periodic check", check: 200 * time.Millisecond},
		{name: "announcement from the gateway", check: time.Hour, announce: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakePMP(t)
			c := newTestClient(t, f, nil, func(cfg *Config) {
				cfg.Method = NATPMP
				cfg.CheckInterval = tt.check
			})
			m1, err := c.Keep(t.Context(), Request{Protocol: TCP, InternalPort: 4662})
			if err != nil {
				t.Fatal(err)
			}
			m2, err := c.Keep(t.Context(), Request{Protocol: UDP, InternalPort: 4672})
			if err != nil {
				t.Fatal(err)
			}
			waitEvent(t, c.Client, ExternalAddressChanged)
			f.restart()
			if f.has(TCP, 4662) || f.has(UDP, 4672) {
				t.Fatal("restart kept the table")
			}
			if tt.announce {
				f.announce(t, loopback, c.announce)
			}
			ev := waitEvent(t, c.Client, GatewayRestarted)
			if ev.Gateway != loopback {
				t.Fatalf("GatewayRestarted for %v; want %v", ev.Gateway, loopback)
			}
			seen := map[uint16]bool{}
			for len(seen) < 2 {
				ev := waitEvent(t, c.Client, Recreated, Failed)
				if ev.Kind == Failed {
					t.Fatalf("Failed: %v", ev.Err)
				}
				seen[ev.Request.InternalPort] = true
			}
			if !f.has(TCP, 4662) || !f.has(UDP, 4672) {
				t.Fatal("the mappings are not on the gateway again")
			}
			m1.Stop()
			m2.Stop()
		})
	}
}

func TestAnnouncementFromAnotherHostIgnored(t *testing.T) {
	f := newFakePMP(t)
	c := newTestClient(t, f, nil, func(cfg *Config) { cfg.Method = NATPMP })
	if _, err := c.Keep(t.Context(), Request{Protocol: TCP, InternalPort: 4662}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, c.Client, ExternalAddressChanged)
	f.restart()
	// 127.0.0.2 is not the gateway: RFC 6886 §3.2.1 says to discard it.
	f.announce(t, netip.MustParseAddr("127.0.0.2"), c.announce)
	waitLog(t, c.log, "ignoring a NAT-PMP announcement from a host that is not our gateway")
	select {
	case ev := <-c.Events():
		t.Fatalf("event %v after an announcement from another host", ev)
	default:
	}
	// The same announcement from the gateway is heard.
	f.announce(t, loopback, c.announce)
	waitEvent(t, c.Client, GatewayRestarted)
	waitEvent(t, c.Client, Recreated)
}

func TestKeepNATPMPFailuresThenSuccess(t *testing.T) {
	for _, code := range []natpmp.ResultCode{natpmp.NotAuthorized, natpmp.OutOfResources} {
		t.Run(code.String(), func(t *testing.T) {
			f := newFakePMP(t)
			f.set(func(f *fakePMP) { f.code = code })
			c := newTestClient(t, f, nil, func(cfg *Config) { cfg.Method = NATPMP })
			m, err := c.Keep(t.Context(), Request{Protocol: TCP, InternalPort: 4662})
			var re *natpmp.ResultError
			if m == nil || !errors.As(err, &re) || re.Code != code {
				t.Fatalf("Keep = %v, %v; want a Mapping and result code %v", m, err, code)
			}
			ev := waitEvent(t, c.Client, Failed, Mapped)
			if ev.Kind != Failed || !errors.As(ev.Err, &re) || re.Code != code {
				t.Fatalf("first event %v (%v); want Failed with result code %v", ev.Kind, ev.Err, code)
			}
			// The keeper retries; let the next attempt succeed.
			waitEvent(t, c.Client, Failed)
			f.set(func(f *fakePMP) { f.code = natpmp.Success })
			if ev := waitEvent(t, c.Client, Mapped); ev.Result.External.Port() != 4662 {
				t.Fatalf("Mapped %+v", ev.Result)
			}
			if _, ok := m.Current(); !ok {
				t.Fatal("Current reports nothing after Mapped")
			}
		})
	}
}

func TestKeepForeignAddressOverNATPMP(t *testing.T) {
	f := newFakePMP(t)
	c := newTestClient(t, f, nil, func(cfg *Config) { cfg.Method = NATPMP })
	m, err := c.Keep(t.Context(), Request{Protocol: TCP, InternalPort: 4662, InternalAddr: netip.MustParseAddr("127.0.0.9")})
	if m == nil || !errors.Is(err, ErrForeignAddress) {
		t.Fatalf("Keep = %v, %v; want a Mapping and ErrForeignAddress", m, err)
	}
	m.Stop()
}

func TestKeepAfterClose(t *testing.T) {
	f := newFakePMP(t)
	c := newTestClient(t, f, nil, nil)
	c.Close()
	if m, err := c.Keep(context.Background(), Request{Protocol: TCP, InternalPort: 1}); m != nil || !errors.Is(err, ErrClosed) {
		t.Fatalf("Keep after Close = %v, %v; want ErrClosed", m, err)
	}
	if _, ok := <-c.Events(); ok {
		t.Fatal("Events not closed by Close")
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

func TestCloseEndsGoroutines(t *testing.T) {
	f := newFakePMP(t)
	d := newFakeIGD("http://127.0.0.1:5000/rootDesc.xml")
	before := runtime.NumGoroutine()
	c := newTestClient(t, f, newFakeFinder(d), func(cfg *Config) { cfg.CheckInterval = 50 * time.Millisecond })
	if _, err := c.Keep(t.Context(), Request{Protocol: TCP, InternalPort: 4662}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Keep(t.Context(), Request{Protocol: TCP, InternalPort: 4663, InternalAddr: other.Addr()}); err != nil {
		t.Fatal(err) // over UPnP: a NOTIFY watch runs too
	}
	waitEvent(t, c.Client, ExternalAddressChanged)
	c.Close()
	eventually(t, "the client's goroutines end", func() bool { return runtime.NumGoroutine() <= before })
}

// TestUnmapNATPMPRefusedNeedsNonce: a gateway that speaks PCP too refuses a
// NAT-PMP deletion of a mapping made over PCP (it carries no nonce, RFC 6887
// §15); Unmap without a nonce then says that the nonce map printed is
// needed, besides the refusal.
func TestUnmapNATPMPRefusedNeedsNonce(t *testing.T) {
	f := newFakePMP(t)
	f.mu.Lock()
	f.code = natpmp.NotAuthorized
	f.mu.Unlock()
	c := newTestClient(t, f, nil, func(cfg *Config) { cfg.Method = NATPMP })
	err := c.Unmap(t.Context(), Request{Protocol: TCP, InternalPort: 8080})
	if err == nil || !errors.Is(err, ErrNonceNeeded) || !strings.Contains(err.Error(), "--nonce") {
		t.Fatalf("Unmap = %v; want ErrNonceNeeded naming --nonce", err)
	}
	var re *natpmp.ResultError
	if !errors.As(err, &re) || re.Code != natpmp.NotAuthorized {
		t.Fatalf("Unmap = %v; want the gateway's NOT_AUTHORIZED kept", err)
	}
}
