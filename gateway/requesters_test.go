package gateway

import (
	"context"
	"errors"
	"net/netip"
	"testing"
)

// TestRequestersNarrowDefaultRules: with the daemon's default rules, one
// per LAN and narrowed to that LAN's hosts, a host of one LAN maps for
// itself and for its neighbours but not for another LAN's hosts; a rule
// without Requesters (the file's own) allows every host; the leases held
// stay allowed whoever asked for them.
func TestRequestersNarrowDefaultRules(t *testing.T) {
	lanA, lanB := netip.MustParsePrefix("198.51.100.0/25"), netip.MustParsePrefix("198.51.100.128/25")
	v6B := netip.MustParsePrefix("2001:db8:2::/64")
	hostA, hostA2, hostB := netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("198.51.100.200")
	hostB6 := netip.MustParseAddr("2001:db8:2::20")
	rule := func(internal, requesters netip.Prefix) Rule {
		return Rule{Allow: true, ExternalPorts: DefaultPorts, Internal: internal, InternalPorts: DefaultPorts, Requesters: requesters}
	}
	defaults := Policy{Rules: []Rule{rule(lanA, lanA), rule(lanB, lanB), rule(v6B, lanB), rule(v6B, v6B), rule(lanB, v6B)}}
	tests := []struct {
		name      string
		policy    Policy
		requester netip.Addr
		internal  netip.Addr
		want      error
	}{
		{"own address", defaults, hostA, hostA, nil},
		{"own address, requester implied", defaults, netip.Addr{}, hostA, nil},
		{"a neighbour on the same LAN", defaults, hostA, hostA2, nil},
		{"a host on another LAN", defaults, hostA, hostB, ErrNotAuthorized},
		{"a pinhole on another LAN", defaults, hostA, hostB6, ErrNotAuthorized},
		{"a pinhole on its own link, asked over IPv4", defaults, hostB, hostB6, nil},
		{"the file's rule, for any host", Policy{Rules: []Rule{rule(lanB, netip.Prefix{})}}, hostA, hostB, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, _ := newTestTable(t, tt.policy)
			req := mapReq(TCP, tt.internal, 8080, 8080)
			req.Requester = tt.requester
			_, err := tab.Map(context.Background(), req)
			if !errors.Is(err, tt.want) && !(err == nil && tt.want == nil) {
				t.Fatalf("Map for %s by %s: %v; want %v", tt.internal, tt.requester, err, tt.want)
			}
		})
	}
	if !defaults.Allows(8080, hostB, 8080) {
		t.Error("Allows (the leases held) refuses hostB's lease under the default rules")
	}
}
