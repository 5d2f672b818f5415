package client

import (
	"net/netip"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		addr   string
		want   AddressClass
		public bool
		double bool
	}{
		{"8.8.8.8", Public, true, false},
		{"2a00:1450::1", Public, true, false},
		{"10.1.2.3", Private, false, true},
		{"172.16.0.1", Private, false, true},
		{"172.31.255.255", Private, false, true},
		{"172.32.0.1", Public, true, false},
		{"192.168.178.1", Private, false, true},
		{"fd00::1", Private, false, true},
		{"100.64.0.1", Shared, false, true},
		{"100.127.255.254", Shared, false, true},
		{"100.128.0.1", Public, true, false},
		{"192.0.2.1", Documentation, false, false},
		{"198.51.100.1", Documentation, false, false},
		{"203.0.113.1", Documentation, false, false}, // the lab's WAN
		{"2001:db8::1", Documentation, false, false},
		{"0.0.0.0", Reserved, false, false},
		{"127.0.0.1", Reserved, false, false},
		{"169.254.1.1", Reserved, false, false},
		{"224.0.0.1", Reserved, false, false},
		{"198.18.0.1", Reserved, false, false},
		{"240.0.0.1", Reserved, false, false},
		{"255.255.255.255", Reserved, false, false},
		{"::ffff:10.0.0.1", Private, false, true},
		{"", Unknown, false, false},
	}
	for _, tt := range tests {
		var a netip.Addr
		if tt.addr != "" {
			a = netip.MustParseAddr(tt.addr)
		}
		if got := Classify(a); got != tt.want {
			t.Errorf("Classify(%s) = %v; want %v", tt.addr, got, tt.want)
		}
		if got := IsPublic(a); got != tt.public {
			t.Errorf("IsPublic(%s) = %v; want %v", tt.addr, got, tt.public)
		}
		if got := isDoubleNAT(Classify(a)); got != tt.double {
			t.Errorf("double NAT for %s = %v; want %v", tt.addr, got, tt.double)
		}
	}
}

func TestEventsDropOldest(t *testing.T) {
	c := newTestClient(t, nil, nil, func(cfg *Config) { cfg.EventBuffer = 2 })
	for i := range 5 {
		c.emit(Event{Kind: Renewed, Request: Request{Protocol: TCP, InternalPort: uint16(i + 1)}})
	}
	var got []uint16
	for range 2 {
		got = append(got, (<-c.Events()).Request.InternalPort)
	}
	if got[0] != 4 || got[1] != 5 {
		t.Fatalf("events kept %v; want the newest two, [4 5]", got)
	}
	waitLog(t, c.log, "dropped the oldest events")
}

func TestEventKindString(t *testing.T) {
	tests := []struct {
		k    EventKind
		want string
	}{
		{Mapped, "Mapped"}, {Renewed, "Renewed"}, {Recreated, "Recreated"}, {Failed, "Failed"},
		{Deleted, "Deleted"}, {ExternalAddressChanged, "ExternalAddressChanged"},
		{DoubleNATDetected, "DoubleNATDetected"}, {GatewayRestarted, "GatewayRestarted"}, {EventKind(99), "EventKind(99)"},
	}
	for _, tt := range tests {
		if got := tt.k.String(); got != tt.want {
			t.Errorf("EventKind(%d).String() = %q; want %q", int(tt.k), got, tt.want)
		}
	}
}

func TestDoubleNATEvent(t *testing.T) {
	f := newFakePMP(t)
	f.set(func(f *fakePMP) { f.ext = netip.MustParseAddr("100.64.7.8") })
	c := newTestClient(t, f, nil, func(cfg *Config) { cfg.Method = NATPMP })
	if _, err := c.Keep(t.Context(), Request{Protocol: TCP, InternalPort: 4662}); err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, c.Client, DoubleNATDetected)
	if ev.ExternalAddress != netip.MustParseAddr("100.64.7.8") || ev.Err == nil {
		t.Fatalf("DoubleNATDetected %+v", ev)
	}
}

func TestNewConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"methods", Config{Method: "natpmp"}, true},
		{"PCP", Config{Method: "PCP"}, true},
		{"bad method", Config{Method: "pcp1"}, false},
		{"IPv6 gateway", Config{Gateway: netip.MustParseAddr("2001:db8::1")}, false},
		{"bad URL", Config{DescriptionURL: "ftp://x/"}, false},
	}
	for _, tt := range tests {
		c, err := New(tt.cfg)
		if (err == nil) != tt.ok {
			t.Errorf("New(%s) = %v; want ok %v", tt.name, err, tt.ok)
		}
		if c != nil {
			c.Close()
		}
	}
}
