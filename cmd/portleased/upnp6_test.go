package main

import (
	"net/netip"
	"testing"
)

func TestServableIPv6(t *testing.T) {
	for addr, want := range map[string]bool{
		"2001:db8:100::1":     true,
		"fd00::1":             true, // unique local
		"fe80::1":             false,
		"fe80::1%lan0":        false,
		"::1":                 false,
		"ff02::c":             false,
		"::ffff:198.51.100.1": false,
		"198.51.100.1":        false,
	} {
		if got := servableIPv6(netip.MustParseAddr(addr)); got != want {
			t.Errorf("servableIPv6(%s) = %v; want %v", addr, got, want)
		}
	}
}
