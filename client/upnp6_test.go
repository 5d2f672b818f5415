package client

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

var hostV6 = netip.MustParseAddr("2001:db8:1::10") // a LAN host's global IPv6 address

func TestMapPinholeUPnP(t *testing.T) {
	peer := netip.MustParsePrefix("2001:db8:2::7/128")
	tests := []struct {
		name    string
		method  Method
		setup   func(d *fakeIGD)
		filters []Filter
		want    upnpPinhole
		wantErr error
	}{
		{name: "any peer", method: UPnP,
			want: upnpPinhole{proto: UDP, internal: netip.AddrPortFrom(hostV6, 4672), lease: 3600}},
		{name: "auto without PCP", method: Auto,
			want: upnpPinhole{proto: UDP, internal: netip.AddrPortFrom(hostV6, 4672), lease: 3600}},
		{name: "one peer and port", method: UPnP, filters: []Filter{{Remote: peer, Port: 4000}},
			want: upnpPinhole{proto: UDP, internal: netip.AddrPortFrom(hostV6, 4672), lease: 3600,
				remote: peer.Addr(), remotePort: 4000}},
		{name: "two peers", method: UPnP, wantErr: ErrUnsupported,
			filters: []Filter{{Remote: peer}, {Remote: netip.MustParsePrefix("2001:db8:3::7/128")}}},
		{name: "a prefix", method: UPnP, wantErr: ErrUnsupported,
			filters: []Filter{{Remote: netip.MustParsePrefix("2001:db8:2::/64")}}},
		{name: "no firewall control", method: UPnP, wantErr: ErrUnsupported,
			setup: func(d *fakeIGD) { d.noFirewall = true }},
		{name: "NAT-PMP cannot", method: NATPMP, wantErr: ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeIGD("http://127.0.0.1:5000/rootDesc.xml")
			if tt.setup != nil {
				d.set(tt.setup)
			}
			c := newTestClient(t, nil, newFakeFinder(d), func(cfg *Config) { cfg.Method = tt.method })
			req := Request{Protocol: UDP, InternalPort: 4672, InternalAddr: hostV6, Lifetime: time.Hour, Filters: tt.filters}
			got, err := c.Map(t.Context(), req)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Map(%v) = %v; want %v", req, err, tt.wantErr)
				}
				if len(d.pinholes) != 0 {
					t.Fatalf("the IGD holds %v after a refusal", d.pinholes)
				}
				return
			}
			if err != nil {
				t.Fatalf("Map(%v) = %v", req, err)
			}
			want := Result{Protocol: UDP, Internal: netip.AddrPortFrom(hostV6, 4672), External: netip.AddrPortFrom(hostV6, 4672),
				Lifetime: time.Hour, Method: UPnP, Pinhole: true, PinholeID: 1, Gateway: loopback, Interface: "lo"}
			if got != want {
				t.Fatalf("Map(%v) = %+v; want %+v", req, got, want)
			}
			if p, ok := d.pinhole(1); !ok || p != tt.want {
				t.Fatalf("the IGD holds %+v, %v; want %+v", p, ok, tt.want)
			}
		})
	}
}

func TestPinholeLeaseBounds(t *testing.T) {
	d := newFakeIGD("http://127.0.0.1:5000/rootDesc.xml")
	c := newTestClient(t, nil, newFakeFinder(d), func(cfg *Config) { cfg.Method = UPnP })
	got, err := c.Map(t.Context(), Request{Protocol: TCP, InternalPort: 80, InternalAddr: hostV6, Lifetime: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := d.pinhole(got.PinholeID); p.lease != 86400 || got.Lifetime != 24*time.Hour {
		t.Errorf("a two-day pinhole asked %d s, granted %v; want 86400 s (A_ARG_TYPE_LeaseTime's maximum)", p.lease, got.Lifetime)
	}
}

func TestKeepPinholeUPnP(t *testing.T) {
	d := newFakeIGD("http://127.0.0.1:5000/rootDesc.xml")
	c := newTestClient(t, nil, newFakeFinder(d), func(cfg *Config) {
		cfg.Method = UPnP
		cfg.CheckInterval = 200 * time.Millisecond
	})
	m, err := c.Keep(t.Context(), Request{Protocol: TCP, InternalPort: 4662, InternalAddr: hostV6})
	if err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, c.Client, Mapped)
	if !ev.Result.Pinhole || ev.Result.PinholeID != 1 || ev.Result.Method != UPnP {
		t.Fatalf("Mapped %+v; want pinhole 1 over UPnP", ev.Result)
	}
	// A periodic check renews the pinhole by its UniqueID.
	eventually(t, "UpdatePinhole of pinhole 1", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.updates > 0 && len(d.pinholes) == 1
	})
	// The gateway loses it: the next check opens it again, under a new
	// UniqueID that the mapping keeps.
	d.set(func(d *fakeIGD) { clear(d.pinholes) })
	ev = waitEvent(t, c.Client, Recreated, Failed)
	if ev.Kind != Recreated || ev.Result.PinholeID != 2 {
		t.Fatalf("event %v (%v, id %d); want Recreated as pinhole 2", ev, ev.Err, ev.Result.PinholeID)
	}
	if err := m.Close(t.Context()); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if _, ok := d.pinhole(2); ok {
		t.Error("pinhole 2 still open after Close")
	}
}

func TestUnmapPinholeUPnP(t *testing.T) {
	d := newFakeIGD("http://127.0.0.1:5000/rootDesc.xml")
	c := newTestClient(t, nil, newFakeFinder(d), func(cfg *Config) { cfg.Method = UPnP })
	req := Request{Protocol: TCP, InternalPort: 4662, InternalAddr: hostV6}
	got, err := c.Map(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Unmap(t.Context(), req); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("Unmap without the UniqueID = %v; want ErrInvalidRequest", err)
	}
	req.PinholeID = got.PinholeID
	if err := c.Unmap(t.Context(), req); err != nil {
		t.Fatalf("Unmap = %v", err)
	}
	if _, ok := d.pinhole(got.PinholeID); ok {
		t.Error("the pinhole is still open")
	}
	if err := c.Unmap(t.Context(), req); !errors.Is(err, ErrNotFound) {
		t.Errorf("Unmap again = %v; want ErrNotFound", err)
	}
}
