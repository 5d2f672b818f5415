package client

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

var (
	other = netip.MustParseAddrPort("127.0.0.9:4662") // another device on the LAN
	own   = netip.MustParseAddrPort("127.0.0.1:4662")
)

func TestMapUPnP(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(d *fakeIGD)
		req     Request
		want    Result
		wantErr error
		// holder is the internal endpoint that must hold the requested
		// external port afterwards.
		holder netip.AddrPort
	}{
		{
			name: "same port",
			req:  Request{Protocol: TCP, InternalPort: 4662, Lifetime: time.Hour},
			want: Result{Protocol: TCP, Internal: own, External: netip.MustParseAddrPort("203.0.113.1:4662"),
				Lifetime: time.Hour, Method: UPnP, Gateway: loopback, Interface: "lo"},
			holder: own,
		},
		{
			name:  "only permanent leases (725)",
			setup: func(d *fakeIGD) { d.permanentOnly = true },
			req:   Request{Protocol: TCP, InternalPort: 4662},
			want: Result{Protocol: TCP, Internal: own, External: netip.MustParseAddrPort("203.0.113.1:4662"),
				Method: UPnP, Gateway: loopback, Interface: "lo"},
			holder: own,
		},
		{
			name:  "lease shortened",
			setup: func(d *fakeIGD) { d.leaseCap = 300 },
			req:   Request{Protocol: TCP, InternalPort: 4662},
			want: Result{Protocol: TCP, Internal: own, External: netip.MustParseAddrPort("203.0.113.1:4662"),
				Lifetime: 300 * time.Second, Method: UPnP, Gateway: loopback, Interface: "lo"},
			holder: own,
		},
		{
			name: "another device's address",
			req:  Request{Protocol: TCP, InternalPort: 4662, InternalAddr: other.Addr(), Lifetime: time.Hour},
			want: Result{Protocol: TCP, Internal: other, External: netip.MustParseAddrPort("203.0.113.1:4662"),
				Lifetime: time.Hour, Method: UPnP, Gateway: loopback, Interface: "lo"},
			holder: other,
		},
		{
			name:    "port held by another device, keep",
			setup:   func(d *fakeIGD) { d.table[key(TCP, 4662)] = Entry{Protocol: TCP, ExternalPort: 4662, Internal: other} },
			req:     Request{Protocol: TCP, InternalPort: 4662, ExternalPort: 4662},
			wantErr: ErrConflict,
			holder:  other,
		},
		{
			name:  "port held by another device, replace",
			setup: func(d *fakeIGD) { d.table[key(TCP, 4662)] = Entry{Protocol: TCP, ExternalPort: 4662, Internal: other} },
			req:   Request{Protocol: TCP, InternalPort: 4662, ExternalPort: 4662, Lifetime: time.Hour, OnConflict: ConflictReplace},
			want: Result{Protocol: TCP, Internal: own, External: netip.MustParseAddrPort("203.0.113.1:4662"),
				Lifetime: time.Hour, Method: UPnP, Gateway: loopback, Interface: "lo"},
			holder: own,
		},
		{
			name:  "port held, any port will do",
			setup: func(d *fakeIGD) { d.table[key(TCP, 4662)] = Entry{Protocol: TCP, ExternalPort: 4662, Internal: other} },
			req:   Request{Protocol: TCP, InternalPort: 4662, Lifetime: time.Hour},
			want: Result{Protocol: TCP, Internal: own, External: netip.MustParseAddrPort("203.0.113.1:40000"),
				Lifetime: time.Hour, Method: UPnP, Gateway: loopback, Interface: "lo"},
			holder: other,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeIGD("http://127.0.0.1:5000/rootDesc.xml")
			if tt.setup != nil {
				d.set(tt.setup)
			}
			c := newTestClient(t, nil, newFakeFinder(d), func(cfg *Config) { cfg.Method = UPnP })
			got, err := c.Map(t.Context(), tt.req)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Map(%v) = %v; want %v", tt.req, err, tt.wantErr)
				}
			case err != nil:
				t.Fatalf("Map(%v) = %v", tt.req, err)
			case got != tt.want:
				t.Fatalf("Map(%v) = %+v; want %+v", tt.req, got, tt.want)
			}
			if e, ok := d.entry(TCP, 4662); !ok || e.Internal != tt.holder {
				t.Fatalf("TCP 4662 leads to %v (%v); want %v", e.Internal, ok, tt.holder)
			}
		})
	}
}

func TestMapConflictNamesHolder(t *testing.T) {
	d := newFakeIGD("http://127.0.0.1:5000/rootDesc.xml")
	d.table[key(UDP, 4672)] = Entry{Protocol: UDP, ExternalPort: 4672, Internal: other, Description: "theirs"}
	c := newTestClient(t, nil, newFakeFinder(d), func(cfg *Config) { cfg.Method = UPnP })
	_, err := c.Map(t.Context(), Request{Protocol: UDP, InternalPort: 4672, ExternalPort: 4672})
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Holder.Internal != other || ce.ExternalPort != 4672 {
		t.Fatalf("Map = %v; want a *ConflictError naming %v", err, other)
	}
}

func TestAutoChoosesProtocol(t *testing.T) {
	tests := []struct {
		name   string
		pmp    bool
		req    Request
		method Method
	}{
		{"NAT-PMP answers", true, Request{Protocol: TCP, InternalPort: 4662}, NATPMP},
		{"NAT-PMP absent", false, Request{Protocol: TCP, InternalPort: 4662}, UPnP},
		{"another device's address", true, Request{Protocol: TCP, InternalPort: 4662, InternalAddr: other.Addr()}, UPnP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f *fakePMP
			if tt.pmp {
				f = newFakePMP(t)
			}
			d := newFakeIGD("http://127.0.0.1:5000/rootDesc.xml")
			c := newTestClient(t, f, newFakeFinder(d), nil)
			got, err := c.Map(t.Context(), tt.req)
			if err != nil || got.Method != tt.method {
				t.Fatalf("Map(%v) = %+v, %v; want method %v", tt.req, got, err, tt.method)
			}
		})
	}
}

func TestDescriptionURL(t *testing.T) {
	a := newFakeIGD("http://127.0.0.1:5000/a.xml")
	b := newFakeIGD("http://127.0.0.1:5001/b.xml")
	c := newTestClient(t, nil, newFakeFinder(a, b), func(cfg *Config) {
		cfg.Method = UPnP
		cfg.Gateway = netip.Addr{} // the URL's host is the gateway
		cfg.DescriptionURL = b.location
	})
	if _, err := c.Map(t.Context(), Request{Protocol: TCP, InternalPort: 4662}); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.entry(TCP, 4662); !ok {
		t.Fatal("the IGD of DescriptionURL holds no mapping")
	}
	if _, ok := a.entry(TCP, 4662); ok {
		t.Fatal("the other IGD holds the mapping")
	}
}

func TestKeepUPnPRecreates(t *testing.T) {
	tests := []struct {
		name  string
		check time.Duration
		// lose makes the gateway lose the mapping and tell, or not.
		lose func(t *testing.T, d *fakeIGD, f *fakeFinder)
	}{
		{
			name:  "entry missing at a periodic check",
			check: 200 * time.Millisecond,
			lose: func(t *testing.T, d *fakeIGD, f *fakeFinder) {
				d.set(func(d *fakeIGD) { clear(d.table) })
			},
		},
		{
			name:  "entry disabled at a periodic check",
			check: 200 * time.Millisecond,
			lose: func(t *testing.T, d *fakeIGD, f *fakeFinder) {
				d.set(func(d *fakeIGD) {
					e := d.table[key(TCP, 4662)]
					e.Enabled = false
					d.table[key(TCP, 4662)] = e
				})
			},
		},
		{
			name:  "NOTIFY with a new BOOTID",
			check: time.Hour,
			lose: func(t *testing.T, d *fakeIGD, f *fakeFinder) {
				d.set(func(d *fakeIGD) { clear(d.table) })
				// The same BOOTID, and another device's new one, say
				// nothing.
				f.notify(t, netip.MustParseAddrPort("127.0.0.1:1900"), notice{nts: "ssdp:alive", usn: d.uuid + "::upnp:rootdevice", bootID: 1})
				f.notify(t, netip.MustParseAddrPort("127.0.0.7:1900"), notice{nts: "ssdp:alive", usn: "uuid:someone-else::upnp:rootdevice", bootID: 1})
				f.notify(t, netip.MustParseAddrPort("127.0.0.7:1900"), notice{nts: "ssdp:alive", usn: "uuid:someone-else::upnp:rootdevice", bootID: 2})
				f.notify(t, netip.MustParseAddrPort("127.0.0.1:1900"), notice{nts: "ssdp:alive", usn: d.uuid + "::urn:schemas-upnp-org:device:InternetGatewayDevice:2", bootID: 2})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeIGD("http://127.0.0.1:5000/rootDesc.xml")
			f := newFakeFinder(d)
			c := newTestClient(t, nil, f, func(cfg *Config) {
				cfg.Method = UPnP
				cfg.CheckInterval = tt.check
			})
			m, err := c.Keep(t.Context(), Request{Protocol: TCP, InternalPort: 4662})
			if err != nil {
				t.Fatal(err)
			}
			waitEvent(t, c.Client, Mapped)
			tt.lose(t, d, f)
			ev := waitEvent(t, c.Client, Recreated, Failed)
			if ev.Kind != Recreated || ev.Result.External.Port() != 4662 {
				t.Fatalf("event %v (%v); want Recreated", ev, ev.Err)
			}
			if e, ok := d.entry(TCP, 4662); !ok || !e.Enabled || e.Internal != own {
				t.Fatalf("the gateway holds %+v, %v after re-creation", e, ok)
			}
			m.Stop()
		})
	}
}

func TestKeepUPnPTakenByAnotherHost(t *testing.T) {
	d := newFakeIGD("http://127.0.0.1:5000/rootDesc.xml")
	c := newTestClient(t, nil, newFakeFinder(d), func(cfg *Config) {
		cfg.Method = UPnP
		cfg.CheckInterval = 200 * time.Millisecond
	})
	m, err := c.Keep(t.Context(), Request{Protocol: TCP, InternalPort: 4662, ExternalPort: 4662})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, c.Client, Mapped)
	d.set(func(d *fakeIGD) {
		d.table[key(TCP, 4662)] = Entry{Protocol: TCP, ExternalPort: 4662, Internal: other, Enabled: true}
	})
	ev := waitEvent(t, c.Client, Failed)
	var ce *ConflictError
	if !errors.As(ev.Err, &ce) || ce.Holder.Internal != other {
		t.Fatalf("Failed with %v; want a *ConflictError naming %v", ev.Err, other)
	}
	if _, ok := m.Current(); ok {
		t.Fatal("Current reports the mapping another host took")
	}
	// Close leaves the other host's mapping alone.
	if err := m.Close(t.Context()); !errors.Is(err, ErrConflict) {
		t.Fatalf("Close = %v; want ErrConflict", err)
	}
	if e, _ := d.entry(TCP, 4662); e.Internal != other {
		t.Fatalf("Close removed another host's mapping: %+v", e)
	}
}

func TestKeepUPnPPermanentLease(t *testing.T) {
	d := newFakeIGD("http://127.0.0.1:5000/rootDesc.xml")
	d.permanentOnly = true
	c := newTestClient(t, nil, newFakeFinder(d), func(cfg *Config) {
		cfg.Method = UPnP
		cfg.CheckInterval = 100 * time.Millisecond
	})
	m, err := c.Keep(t.Context(), Request{Protocol: UDP, InternalPort: 4672})
	if err != nil {
		t.Fatal(err)
	}
	if ev := waitEvent(t, c.Client, Mapped); ev.Result.Lifetime != 0 {
		t.Fatalf("Mapped with lifetime %v; want permanent", ev.Result.Lifetime)
	}
	// Checks pass quietly; a lost entry is made again.
	d.set(func(d *fakeIGD) { clear(d.table) })
	waitEvent(t, c.Client, Recreated)
	if err := m.Close(t.Context()); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if ev := waitEvent(t, c.Client, Deleted, Renewed); ev.Kind != Deleted {
		t.Fatalf("event %v; a permanent lease is never renewed", ev)
	}
	if _, ok := d.entry(UDP, 4672); ok {
		t.Fatal("Close left the permanent mapping")
	}
}

func TestUnmapUPnP(t *testing.T) {
	tests := []struct {
		name    string
		holder  netip.AddrPort // zero: no mapping
		req     Request
		wantErr error
		gone    bool
	}{
		{"own", own, Request{Protocol: TCP, InternalPort: 4662}, nil, true},
		{"missing", netip.AddrPort{}, Request{Protocol: TCP, InternalPort: 4662}, ErrNotFound, true},
		{"another host's, keep", other, Request{Protocol: TCP, InternalPort: 4662}, ErrConflict, false},
		{"another host's, replace", other, Request{Protocol: TCP, InternalPort: 4662, OnConflict: ConflictReplace}, nil, true},
		{"another host's, named", other, Request{Protocol: TCP, InternalPort: 4662, InternalAddr: other.Addr()}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeIGD("http://127.0.0.1:5000/rootDesc.xml")
			if tt.holder.IsValid() {
				d.table[key(TCP, 4662)] = Entry{Protocol: TCP, ExternalPort: 4662, Internal: tt.holder}
			}
			c := newTestClient(t, nil, newFakeFinder(d), func(cfg *Config) { cfg.Method = UPnP })
			err := c.Unmap(t.Context(), tt.req)
			if (tt.wantErr == nil && err != nil) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("Unmap(%v) = %v; want %v", tt.req, err, tt.wantErr)
			}
			if _, ok := d.entry(TCP, 4662); ok == tt.gone {
				t.Fatalf("mapping present %v after Unmap; want %v", ok, !tt.gone)
			}
		})
	}
}

func TestList(t *testing.T) {
	d := newFakeIGD("http://127.0.0.1:5000/rootDesc.xml")
	d.table[key(TCP, 4662)] = Entry{Protocol: TCP, ExternalPort: 4662, Internal: own, Enabled: true}
	c := newTestClient(t, nil, newFakeFinder(d), nil)
	entries, err := c.List(t.Context())
	if err != nil || len(entries) != 1 || entries[0].Internal != own {
		t.Fatalf("List = %+v, %v", entries, err)
	}

	f := newFakePMP(t)
	c = newTestClient(t, f, nil, nil)
	if _, err := c.List(t.Context()); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("List with NAT-PMP only = %v; want ErrUnsupported", err)
	}
}

// TestKeepUPnPAwayThenBack: a gateway that stops answering, for one failed
// attempt or for several (which send the keeper looking at every gateway
// again), and comes back having lost the mapping gets it made again and
// reported as Recreated; one that comes back holding it, as Renewed.
// AddPortMapping alone cannot tell the two apart: the entry must be read.
func TestKeepUPnPAwayThenBack(t *testing.T) {
	for _, tt := range []struct {
		name     string
		failures int
		lost     bool
		want     EventKind
	}{
		{"one failure, mapping lost", 1, true, Recreated},
		{"three failures, mapping lost", 3, true, Recreated},
		{"one failure, mapping kept", 1, false, Renewed},
		{"three failures, mapping kept", 3, false, Renewed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeIGD("http://127.0.0.1:5000/rootDesc.xml")
			f := newFakeFinder(d)
			c := newTestClient(t, nil, f, func(cfg *Config) {
				cfg.Method = UPnP
				cfg.CheckInterval = 200 * time.Millisecond
			})
			m, err := c.Keep(t.Context(), Request{Protocol: TCP, InternalPort: 4662})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Stop()
			waitEvent(t, c.Client, Mapped)
			d.set(func(d *fakeIGD) { d.fail = errors.New("connection refused") })
			for n := 0; n < tt.failures; {
				if ev := waitEvent(t, c.Client, Failed); ev.Request.Protocol != "" {
					n++ // not a gateway check's
				}
			}
			d.set(func(d *fakeIGD) {
				d.fail = nil
				if tt.lost {
					clear(d.table)
				}
			})
			ev := waitEvent(t, c.Client, Recreated, Renewed, Mapped)
			if ev.Kind != tt.want || ev.Result.External.Port() != 4662 {
				t.Fatalf("event %v; want %v of port 4662", ev, tt.want)
			}
			if e, ok := d.entry(TCP, 4662); !ok || e.Internal != own {
				t.Fatalf("the gateway holds %+v, %v after the gateway came back", e, ok)
			}
		})
	}
}
