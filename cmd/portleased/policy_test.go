package main

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/config"
)

// TestPolicyWith: without rules of the file's own, each LAN subnet and each
// IPv6 prefix of the LAN links gets the default rule, once for the requests
// of each prefix of the same link and for no other link's; the file's rules
// are kept as they are, and its third-party hosts reach the policy either
// way.
func TestPolicyWith(t *testing.T) {
	lans := []lanAddress{
		{addr: netip.MustParsePrefix("198.51.100.1/24"), ifname: "lan0"},
		{addr: netip.MustParsePrefix("198.51.100.2/24"), ifname: "lan0"},
		{addr: netip.MustParsePrefix("203.0.113.129/25"), ifname: "lan1"},
	}
	v6 := map[string][]netip.Prefix{"lan0": {netip.MustParsePrefix("2001:db8:1::/64")}}
	own := []gateway.Rule{{Allow: true, ExternalPorts: gateway.DefaultPorts, Internal: netip.MustParsePrefix("10.0.0.0/8"), InternalPorts: gateway.DefaultPorts}}
	third := []netip.Prefix{netip.MustParsePrefix("198.51.100.9/32")}
	tests := []struct {
		name  string
		rules []gateway.Rule
		want  string
	}{
		{"defaults for both families", nil,
			"[allow 1024-65535 198.51.100.0/24 1024-65535 (requests from 198.51.100.0/24) " +
				"allow 1024-65535 198.51.100.0/24 1024-65535 (requests from 2001:db8:1::/64) " +
				"allow 1024-65535 2001:db8:1::/64 1024-65535 (requests from 198.51.100.0/24) " +
				"allow 1024-65535 2001:db8:1::/64 1024-65535 (requests from 2001:db8:1::/64) " +
				"allow 1024-65535 203.0.113.128/25 1024-65535 (requests from 203.0.113.128/25)] [198.51.100.9/32]"},
		{"the file's rules alone", own, "[allow 1024-65535 10.0.0.0/8 1024-65535] [198.51.100.9/32]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Rules, cfg.ThirdParty = tc.rules, third
			p := policyWith(cfg, lans, v6)
			if got := fmt.Sprint(p.Rules, p.ThirdParty); got != tc.want {
				t.Fatalf("policy %s; want %s", got, tc.want)
			}
		})
	}
}

// TestPolicyLimits: the file's fair shares reach the policy, none as the
// core's zero (unlimited).
func TestPolicyLimits(t *testing.T) {
	cfg := config.Default()
	p := policyWith(cfg, nil, nil)
	if p.MaxPerHost != config.DefaultMaxPerHost || p.MaxLeases != config.DefaultMaxMappings {
		t.Fatalf("default policy limits %d per host, %d in all; want %d, %d", p.MaxPerHost, p.MaxLeases, config.DefaultMaxPerHost, config.DefaultMaxMappings)
	}
	cfg.Limits = config.Limits{}
	if p := policyWith(cfg, nil, nil); p.MaxPerHost != 0 || p.MaxLeases != 0 {
		t.Fatalf("policy limits with none: %d, %d; want 0, 0", p.MaxPerHost, p.MaxLeases)
	}
}
