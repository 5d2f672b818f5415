package client

import (
	"errors"
	"net/netip"
	"testing"
)

// fakeLinks are the links of a machine with a wired link (2), a
// point-to-point one without a subnet holding its peer (3) and a Wi-Fi
// link (4), for pickRoutes.
func fakeLinks(t *testing.T) routeLookups {
	t.Helper()
	p := netip.MustParsePrefix
	links := map[int]linkInfo{
		2: {name: "eth0", addrs: []linkAddr{
			{prefix: p("198.51.100.20/24")},
			{prefix: p("fe80::20/64")},
			{prefix: p("fd00::20/64")},
			{prefix: p("2001:db8:1::99/64"), avoid: true},
			{prefix: p("2001:db8:1::20/64")},
		}},
		3: {name: "ppp0", addrs: []linkAddr{{prefix: p("198.51.100.77/32")}}},
		4: {name: "wlan0", addrs: []linkAddr{
			{prefix: p("203.0.113.7/24")},
			{prefix: p("fd00:1::7/64")},
		}},
	}
	return routeLookups{
		link: func(index int) (linkInfo, error) {
			l, ok := links[index]
			if !ok {
				return linkInfo{}, errors.New("no such link")
			}
			return l, nil
		},
		localTo: func(gw netip.Addr) (netip.Addr, error) {
			if gw == netip.MustParseAddr("192.0.2.1") {
				return netip.MustParseAddr("198.51.100.77"), nil
			}
			return netip.Addr{}, errors.New("no route")
		},
	}
}

func TestPickRoutes(t *testing.T) {
	a := netip.MustParseAddr
	defaults := []defaultRoute{
		{ifindex: 4, gw: a("203.0.113.1"), metric: 600},
		{ifindex: 2, gw: a("198.51.100.1"), metric: 100},
		{ifindex: 2, gw: a("198.51.100.1"), metric: 200}, // the same (link, router) again
		{ifindex: 3, gw: a("192.0.2.1"), metric: 100},    // peer off the link's subnet
		{ifindex: 0, gw: a("198.51.100.254")},            // no link
		{ifindex: 2, gw: a("0.0.0.0")},                   // no router
		{ifindex: 2, gw: a("fe80::1%eth0"), metric: 1024},
		{ifindex: 4, gw: a("fe80::2"), metric: 1},              // only a unique local address
		{ifindex: 2, gw: a("::ffff:198.51.100.2"), metric: 50}, // mapped: IPv4
	}
	tests := []struct {
		name  string
		v6    bool
		iface string
		want  []route
	}{
		{"IPv4", false, "", []route{
			{iface: "eth0", ifindex: 2, local: a("198.51.100.20"), gw: a("198.51.100.2"), metric: 50},
			{iface: "eth0", ifindex: 2, local: a("198.51.100.20"), gw: a("198.51.100.1"), metric: 100},
			{iface: "ppp0", ifindex: 3, local: a("198.51.100.77"), gw: a("192.0.2.1"), metric: 100},
			{iface: "wlan0", ifindex: 4, local: a("203.0.113.7"), gw: a("203.0.113.1"), metric: 600},
		}},
		{"IPv4 on wlan0", false, "wlan0", []route{
			{iface: "wlan0", ifindex: 4, local: a("203.0.113.7"), gw: a("203.0.113.1"), metric: 600},
		}},
		{"IPv6", true, "", []route{
			{iface: "eth0", ifindex: 2, local: a("2001:db8:1::20"), gw: a("fe80::1"), metric: 1024},
		}},
		{"IPv6 on wlan0", true, "wlan0", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pickRoutes(defaults, tt.v6, tt.iface, fakeLinks(t))
			if err != nil {
				t.Fatalf("pickRoutes: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("pickRoutes = %+v; want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("pickRoutes[%d] = %+v; want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestPickRoutesErrors(t *testing.T) {
	a := netip.MustParseAddr
	for _, d := range []defaultRoute{
		{ifindex: 9, gw: a("198.51.100.1")}, // a link that is gone
		{ifindex: 3, gw: a("192.0.2.9")},    // no source address towards the router
	} {
		if got, err := pickRoutes([]defaultRoute{d}, false, "", fakeLinks(t)); err == nil {
			t.Errorf("pickRoutes(%+v) = %+v, nil error; want an error", d, got)
		}
	}
}
