package main

import (
	"slices"
	"testing"
)

func TestParseGatewaysTakesTheIptablesBackends(t *testing.T) {
	got, err := parseGateways(defaultGateways)
	want := []string{gwPortleased, gwPortleasedState, gwIptablesNFT, gwIptablesLegacy, gwMiniUPnPd}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("parseGateways(default) = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{"portleased-iptables", "portleased,portleased", "nftables", ""} {
		if got, err := parseGateways(bad); err == nil {
			t.Errorf("parseGateways(%q) = %q, nil; want an error", bad, got)
		}
	}
}

func TestFirewallOf(t *testing.T) {
	for name, want := range map[string]string{gwPortleased: "nftables", gwPortleasedState: "nftables",
		gwIptablesNFT: "iptables-nft", gwIptablesLegacy: "iptables-legacy"} {
		if got := firewallOf(name); got != want {
			t.Errorf("firewallOf(%q) = %q, want %q", name, got, want)
		}
	}
	if isNftables(gwIptablesLegacy) || !isPortleased(gwIptablesNFT) || isIptables(gwPortleased) {
		t.Error("the iptables gateways are portleased, but not on nftables")
	}
}

func TestSizesOfCapsTheIptablesSeries(t *testing.T) {
	b := &bench{sizes: []int{0, 1000, 10000, 100000}, iptablesMax: 10000}
	if got := b.sizesOf(gwIptablesLegacy); !slices.Equal(got, []int{0, 1000, 10000}) {
		t.Errorf("sizesOf(iptables) = %v", got)
	}
	if got := b.sizesOf(gwPortleased); !slices.Equal(got, b.sizes) {
		t.Errorf("sizesOf(nftables) = %v", got)
	}
	b.iptablesMax = 0
	if got := b.sizesOf(gwIptablesNFT); !slices.Equal(got, []int{0}) {
		t.Errorf("sizesOf(iptables) with -iptables-max-size 0 = %v", got)
	}
}

func TestCheckBackend(t *testing.T) {
	line := func(backend string) string {
		return `time=2026-12-06T07:37:54.270Z level=INFO msg="firewall backend" backend=` + backend + ` reason="configured"` + "\n"
	}
	for _, c := range []struct {
		log, firewall string
		ok            bool
	}{
		{line("iptables-legacy"), "iptables-legacy", true},
		{line("nftables"), "iptables-legacy", false},
		{"", "iptables-nft", false},
		{"", "nftables", true},
		{line("nftables"), "nftables", true},
		{line("iptables-nft"), "nftables", false},
	} {
		if err := checkBackend(c.log+sampleLog, c.firewall); (err == nil) != c.ok {
			t.Errorf("checkBackend(%q, %s) = %v, want ok %v", c.log, c.firewall, err, c.ok)
		}
	}
}
