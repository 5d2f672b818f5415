package netaddr

import (
	"net"
	"net/netip"
	"slices"
	"testing"
)

func TestPrefixes(t *testing.T) {
	ipnet := func(ip string, mask net.IPMask) net.Addr { return &net.IPNet{IP: net.ParseIP(ip), Mask: mask} }
	addrs := []net.Addr{
		ipnet("198.51.100.10", net.CIDRMask(24, 32)),
		ipnet("198.51.100.11", net.CIDRMask(120, 128)), // IPv4 in IPv6 form, /24
		ipnet("2001:db8:100::10", net.CIDRMask(64, 128)),
		ipnet("203.0.113.5", net.IPMask{255, 0, 255, 0}), // a mask Size cannot read
		&net.IPAddr{IP: net.ParseIP("203.0.113.6")},      // not an IPNet
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("198.51.100.10/24"),
		netip.MustParsePrefix("198.51.100.11/24"),
		netip.MustParsePrefix("2001:db8:100::10/64"),
		netip.MustParsePrefix("203.0.113.5/32"),
	}
	if got := Prefixes(addrs); !slices.Equal(got, want) {
		t.Errorf("Prefixes = %v; want %v", got, want)
	}
}
