//go:build darwin || freebsd || openbsd

package client

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// The golden routing-table dumps (goldenRIB, one per system in
// route_bsd_<os>_test.go) are what sysctl NET_RT_DUMP returns on that
// system: rt_msghdr then the socket addresses its rtm_addrs names, each
// rounded up to the kernel's alignment (4 bytes on macOS, 8 on 64-bit
// FreeBSD and OpenBSD). No BSD machine was at hand: they were assembled
// field by field (by a script, the comments show each field) from
// net/route.h and netinet/in.h of each system, the layouts
// golang.org/x/net/route reads (its zsys_<os>.go sizes and
// route_classic.go/route_openbsd.go offsets), and checked by running
// ribDefaultRoutes over them with a copy of x/net/route built on Linux with
// each system's constants. Each dump holds, in order:
// an IPv4 default route on link 2, a subnet route onto link 2 (its gateway
// a link address), an IPv6 default route via fe80::1 in the kernel's form
// with the link embedded, an IPv4 default route on link 3 and a host route;
// goldenDefaults is what ribDefaultRoutes finds in it.

func zeros(n int) string { return strings.Repeat("00", n) }

func TestRIBDefaultRoutes(t *testing.T) {
	rib, err := hex.DecodeString(goldenRIB)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ribDefaultRoutes(rib)
	if err != nil {
		t.Fatalf("ribDefaultRoutes: %v", err)
	}
	if !slices.Equal(got, goldenDefaults) {
		t.Errorf("ribDefaultRoutes(golden) = %v; want %v", got, goldenDefaults)
	}

	lk := routeLookups{
		link: func(index int) (linkInfo, error) {
			switch index {
			case 2:
				return linkInfo{name: "em0", addrs: []linkAddr{
					{prefix: netip.MustParsePrefix("198.51.100.20/24")},
					{prefix: netip.MustParsePrefix("fe80::20/64")},
					{prefix: netip.MustParsePrefix("2001:db8:1::20/64")},
				}}, nil
			case 3:
				return linkInfo{name: "em1", addrs: []linkAddr{{prefix: netip.MustParsePrefix("203.0.113.7/24")}}}, nil
			}
			return linkInfo{}, errors.New("no such link")
		},
		localTo: func(gw netip.Addr) (netip.Addr, error) {
			return netip.Addr{}, errors.New("not asked for: the gateway is on-link")
		},
	}
	v4, err := pickRoutes(got, false, "", lk)
	if err != nil || len(v4) != 2 || v4[0].gw != netip.MustParseAddr("198.51.100.1") || v4[0].local != netip.MustParseAddr("198.51.100.20") ||
		v4[1].iface != "em1" || v4[1].local != netip.MustParseAddr("203.0.113.7") {
		t.Errorf("pickRoutes(golden, IPv4) = %+v, %v; want via 198.51.100.1 from 198.51.100.20, then em1", v4, err)
	}
	v6, err := pickRoutes(got, true, "", lk)
	if err != nil || len(v6) != 1 || v6[0].gw != netip.MustParseAddr("fe80::1") || v6[0].local != netip.MustParseAddr("2001:db8:1::20") || v6[0].iface != "em0" {
		t.Errorf("pickRoutes(golden, IPv6) = %+v, %v; want fe80::1 on em0 from 2001:db8:1::20", v6, err)
	}
}

func TestRIBDefaultRoutesTruncated(t *testing.T) {
	rib, err := hex.DecodeString(goldenRIB)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{2, 40, len(rib) - 3} {
		if _, err := ribDefaultRoutes(rib[:n]); err == nil {
			t.Errorf("ribDefaultRoutes(golden[:%d]) = nil error; want one", n)
		}
	}
}
