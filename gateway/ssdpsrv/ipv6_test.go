package ssdpsrv

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/portlease/portlease/upnp"
)

// testConfig6 serves testLinkIndex over IPv4 and IPv6.
func testConfig6() Config {
	cfg := testConfig()
	cfg.Links = append(cfg.Links, Link{
		Index:    testLinkIndex,
		Name:     "lan0",
		Addr:     netip.MustParseAddr("2001:db8:100::1"),
		Prefix:   netip.MustParsePrefix("2001:db8:100::/64"),
		Location: "http://[2001:db8:100::1]:5000/rootDesc.xml",
	})
	return cfg
}

func TestAcceptIPv6(t *testing.T) {
	s, err := newServer(testConfig6())
	if err != nil {
		t.Fatal(err)
	}
	v4, v6 := s.links[0], s.links[1]
	ll := netip.MustParseAddr("ff02::c")
	sl := netip.MustParseAddr("ff05::c")
	gw := netip.MustParseAddr("2001:db8:100::1")
	global := netip.MustParseAddrPort("[2001:db8:100::10]:40000")
	linkLocal := netip.MustParseAddrPort("[fe80::10%lan0]:40000")
	multi := msearch(t, "[ff02::c]:1900", upnp.DeviceIGD2, 2)
	uni := msearch(t, "[2001:db8:100::1]:1900", upnp.DeviceIGD2, 0)
	tests := []struct {
		name    string
		ifindex int
		dst     netip.Addr
		src     netip.AddrPort
		pkt     []byte
		link    *link
		from    netip.Addr
		err     error
	}{
		{"link-local group from link-local", testLinkIndex, ll, linkLocal, multi, v6, gw, nil},
		{"site-local group from global", testLinkIndex, sl, global, multi, v6, gw, nil},
		{"unicast", testLinkIndex, gw, global, uni, v6, gw, nil},
		{"IPv4 on the same interface", testLinkIndex, upnp.SSDPMulticastAddr().Addr(),
			netip.MustParseAddrPort("198.51.100.10:40000"), msearch(t, "", upnp.DeviceIGD2, 2), v4, netip.MustParseAddr("198.51.100.1"), nil},
		{"WAN interface", testLinkIndex + 1, ll, linkLocal, multi, nil, netip.Addr{}, errNotLink},
		{"source outside the prefix", testLinkIndex, ll, netip.MustParseAddrPort("[2001:db8:203::2]:40000"), multi, nil, netip.Addr{}, errSource},
		{"multicast source", testLinkIndex, ll, netip.MustParseAddrPort("[ff02::1]:40000"), multi, nil, netip.Addr{}, errSource},
		{"source port 0", testLinkIndex, ll, netip.MustParseAddrPort("[2001:db8:100::10]:0"), multi, nil, netip.Addr{}, errSource},
		{"IPv4 source to an IPv6 group", testLinkIndex, ll, netip.MustParseAddrPort("198.51.100.10:40000"), multi, nil, netip.Addr{}, errSource},
		{"global group", testLinkIndex, netip.MustParseAddr("ff0e::c"), global, multi, nil, netip.Addr{}, errDestination},
		{"all-nodes group", testLinkIndex, netip.MustParseAddr("ff02::1"), global, multi, nil, netip.Addr{}, errDestination},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.accept(tt.pkt, tt.ifindex, tt.dst, tt.src)
			if !errors.Is(err, tt.err) {
				t.Fatalf("accept error = %v; want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if got.link != tt.link || got.from != tt.from || got.to != tt.src {
				t.Errorf("accept = link %v from %v to %v; want link %v from %v to %v", got.link.Addr, got.from, got.to, tt.link.Addr, tt.from, tt.src)
			}
			if got.multicast != tt.dst.IsMulticast() || got.multicast && got.window != 1600*time.Millisecond {
				t.Errorf("accept = multicast %v window %v", got.multicast, got.window)
			}
		})
	}
}

func TestNewServerIPv6(t *testing.T) {
	if _, err := newServer(testConfig6()); err != nil {
		t.Fatalf("newServer with an IPv6 link: %v", err)
	}
	for _, addr := range []string{"fe80::1", "fe80::1%lan0", "::ffff:198.51.100.1", "ff02::1", "::1"} {
		cfg := testConfig6()
		cfg.Links[1].Addr, cfg.Links[1].Prefix = netip.MustParseAddr(addr), netip.Prefix{}
		if _, err := newServer(cfg); err == nil {
			t.Errorf("newServer accepted IPv6 link address %s", addr)
		}
	}
	cfg := testConfig6()
	cfg.Links[1].Prefix = netip.MustParsePrefix("2001:db8:200::/64")
	if _, err := newServer(cfg); err == nil {
		t.Error("newServer accepted an IPv6 prefix without the link's address")
	}
}

func TestNotifyHost(t *testing.T) {
	for _, tt := range []struct {
		group netip.Addr
		want  string
	}{
		{upnp.SSDPMulticastAddr().Addr(), "239.255.255.250:1900"},
		{netip.MustParseAddr("ff02::c"), "[ff02::c]:1900"},
		{netip.MustParseAddr("ff05::c"), "[ff05::c]:1900"},
	} {
		if got := notifyHost(tt.group); got != tt.want {
			t.Errorf("notifyHost(%v) = %q; want %q", tt.group, got, tt.want)
		}
	}
}
