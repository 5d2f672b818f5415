package conntrack

import (
	"net/netip"
	"testing"

	nfct "github.com/ti-mo/conntrack"
	"github.com/ti-mo/netfilter"

	"github.com/portlease/portlease/gateway"
)

// flow returns an entry of protocol proto whose original direction goes from
// src to dst and whose reply goes from rsrc to rdst, with status st.
func flow(proto gateway.Protocol, st nfct.Status, src, dst, rsrc, rdst string) nfct.Flow {
	tuple := func(from, to string) nfct.Tuple {
		f, t := netip.MustParseAddrPort(from), netip.MustParseAddrPort(to)
		return nfct.Tuple{
			IP:    nfct.IPTuple{SourceAddress: f.Addr(), DestinationAddress: t.Addr()},
			Proto: nfct.ProtoTuple{Protocol: uint8(proto), SourcePort: f.Port(), DestinationPort: t.Port()},
		}
	}
	return nfct.Flow{Status: st, TupleOrig: tuple(src, dst), TupleReply: tuple(rsrc, rdst)}
}

func TestMatches(t *testing.T) {
	const (
		dnat = nfct.StatusDstNAT | nfct.StatusDstNATDone | nfct.StatusConfirmed
		snat = nfct.StatusSrcNAT | nfct.StatusSrcNATDone | nfct.StatusConfirmed
		both = dnat | snat
	)
	stopped := []gateway.Mapping{
		{Protocol: gateway.UDP, ExternalPort: 15000, Internal: netip.MustParseAddrPort("198.51.100.10:5001")},
		{Protocol: gateway.TCP, ExternalPort: 18080, Internal: netip.MustParseAddrPort("[::ffff:198.51.100.10]:8080")},
	}
	granted := []gateway.Mapping{
		{Protocol: gateway.UDP, ExternalPort: 17000, Internal: netip.MustParseAddrPort("198.51.100.11:5001")},
	}
	m := newMatcher(Changes{Ended: stopped, Granted: granted})
	if m.family != netfilter.ProtoIPv4 {
		t.Errorf("family = %v; want IPv4", m.family)
	}
	tests := []struct {
		name string
		f    nfct.Flow
		want bool
	}{
		{"inbound UDP", flow(gateway.UDP, dnat,
			"203.0.113.2:40000", "203.0.113.1:15000", "198.51.100.10:5001", "203.0.113.2:40000"), true},
		{"inbound TCP, mapping given IPv4-mapped", flow(gateway.TCP, dnat,
			"203.0.113.2:40000", "203.0.113.1:18080", "198.51.100.10:8080", "203.0.113.2:40000"), true},
		{"hairpinned", flow(gateway.UDP, both,
			"198.51.100.11:40000", "203.0.113.1:15000", "198.51.100.10:5001", "198.51.100.1:40000"), true},
		{"outbound", flow(gateway.UDP, snat,
			"198.51.100.10:5001", "203.0.113.2:9999", "203.0.113.2:9999", "203.0.113.1:15000"), true},
		{"inbound, other protocol", flow(gateway.TCP, dnat,
			"203.0.113.2:40000", "203.0.113.1:15000", "198.51.100.10:5001", "203.0.113.2:40000"), false},
		{"inbound, other external port", flow(gateway.UDP, dnat,
			"203.0.113.2:40000", "203.0.113.1:15001", "198.51.100.10:5001", "203.0.113.2:40000"), false},
		{"inbound to the port's new holder", flow(gateway.UDP, dnat,
			"203.0.113.2:40000", "203.0.113.1:15000", "198.51.100.11:5001", "203.0.113.2:40000"), false},
		{"inbound, other internal port", flow(gateway.UDP, dnat,
			"203.0.113.2:40000", "203.0.113.1:15000", "198.51.100.10:5002", "203.0.113.2:40000"), false},
		{"untranslated, same ports", flow(gateway.UDP, nfct.StatusConfirmed,
			"198.51.100.1:40000", "198.51.100.10:5001", "198.51.100.10:5001", "198.51.100.1:40000"), false},
		{"outbound to another external port", flow(gateway.UDP, snat,
			"198.51.100.10:5001", "203.0.113.2:9999", "203.0.113.2:9999", "203.0.113.1:16000"), false},
		{"outbound of another endpoint", flow(gateway.UDP, snat,
			"198.51.100.10:5003", "203.0.113.2:9999", "203.0.113.2:9999", "203.0.113.1:15000"), false},
		{"outbound, not translated", flow(gateway.UDP, nfct.StatusConfirmed,
			"198.51.100.10:5001", "203.0.113.2:15000", "203.0.113.2:15000", "198.51.100.10:5001"), false},
		{"inbound status on an outbound flow", flow(gateway.UDP, dnat,
			"198.51.100.10:5001", "203.0.113.2:9999", "203.0.113.2:9999", "203.0.113.1:15000"), false},
		{"granted port, reached untranslated and unanswered", flow(gateway.UDP, nfct.StatusConfirmed,
			"203.0.113.2:40000", "203.0.113.1:17000", "203.0.113.1:17000", "203.0.113.2:40000"), true},
		{"granted port, answered", flow(gateway.UDP, nfct.StatusConfirmed|nfct.StatusSeenReply,
			"203.0.113.2:40000", "203.0.113.1:17000", "203.0.113.1:17000", "203.0.113.2:40000"), false},
		{"granted port, translated", flow(gateway.UDP, dnat,
			"203.0.113.2:40000", "203.0.113.1:17000", "198.51.100.12:5001", "203.0.113.2:40000"), false},
		{"granted port, outbound masqueraded", flow(gateway.UDP, snat,
			"198.51.100.12:5001", "203.0.113.2:17000", "203.0.113.2:17000", "203.0.113.1:5001"), false},
		{"granted port, other protocol", flow(gateway.TCP, nfct.StatusConfirmed,
			"203.0.113.2:40000", "203.0.113.1:17000", "203.0.113.1:17000", "203.0.113.2:40000"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.matches(tt.f); got != tt.want {
				t.Errorf("matches(%v) = %v; want %v", tt.f, got, tt.want)
			}
		})
	}
}

func TestMatcherFamily(t *testing.T) {
	v4 := gateway.Mapping{Protocol: gateway.UDP, ExternalPort: 1, Internal: netip.MustParseAddrPort("198.51.100.10:1")}
	v6 := gateway.Mapping{Protocol: gateway.UDP, ExternalPort: 2, Internal: netip.MustParseAddrPort("[2001:db8::10]:1")}
	noAddr := gateway.Mapping{Protocol: gateway.UDP, ExternalPort: 3}
	tests := []struct {
		name string
		c    Changes
		want netfilter.ProtoFamily
		keys int
	}{
		{"none", Changes{}, netfilter.ProtoUnspec, 0},
		{"IPv4", Changes{Ended: []gateway.Mapping{v4}}, netfilter.ProtoIPv4, 1},
		{"IPv6", Changes{Ended: []gateway.Mapping{v6}}, netfilter.ProtoIPv6, 1},
		{"both", Changes{Ended: []gateway.Mapping{v4, v6}}, netfilter.ProtoUnspec, 2},
		{"IPv4 ended and granted", Changes{Ended: []gateway.Mapping{v4}, Granted: []gateway.Mapping{v4}}, netfilter.ProtoIPv4, 2},
		{"IPv4 ended, IPv6 granted", Changes{Ended: []gateway.Mapping{v4}, Granted: []gateway.Mapping{v6}}, netfilter.ProtoUnspec, 2},
		{"ended without internal address skipped", Changes{Ended: []gateway.Mapping{noAddr}}, netfilter.ProtoUnspec, 0},
		{"granted without internal address", Changes{Ended: []gateway.Mapping{v4}, Granted: []gateway.Mapping{noAddr}}, netfilter.ProtoUnspec, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMatcher(tt.c)
			if n := len(m.ended) + len(m.granted); m.family != tt.want || n != tt.keys {
				t.Errorf("newMatcher(%+v): family %v, %d keys; want %v, %d", tt.c, m.family, n, tt.want, tt.keys)
			}
		})
	}
}

func TestForgetNothing(t *testing.T) {
	// Nothing to forget opens no netlink socket: a bad namespace is not
	// even looked at.
	if n, err := Forget(-1, Changes{}); n != 0 || err != nil {
		t.Errorf("Forget(-1, Changes{}) = %d, %v; want 0, nil", n, err)
	}
}

func TestForgetBadNamespace(t *testing.T) {
	c := Changes{Ended: []gateway.Mapping{{Protocol: gateway.UDP, ExternalPort: 1, Internal: netip.MustParseAddrPort("198.51.100.10:1")}}}
	if n, err := Forget(-1, c); n != 0 || err == nil {
		t.Errorf("Forget(-1, %+v) = %d, %v; want 0 and an error", c, n, err)
	}
}

func TestMatchesPinholes(t *testing.T) {
	const (
		plain = nfct.StatusConfirmed | nfct.StatusSeenReply
		dnat  = nfct.StatusDstNAT | nfct.StatusDstNATDone | nfct.StatusConfirmed
	)
	peer := []gateway.Filter{{Remote: netip.MustParsePrefix("2001:db8:203::/64"), Port: 0}}
	m := newMatcher(Changes{
		Closed: []gateway.Mapping{{Protocol: gateway.UDP, Pinhole: true,
			Internal: netip.MustParseAddrPort("[2001:db8:100::10]:5001")}},
		Filtered: []gateway.Mapping{
			{Protocol: gateway.TCP, Pinhole: true, Filters: peer,
				Internal: netip.MustParseAddrPort("[2001:db8:100::10]:8080")},
			{Protocol: gateway.UDP, ExternalPort: 15000, Internal: netip.MustParseAddrPort("198.51.100.10:5001"),
				Filters: []gateway.Filter{{Remote: netip.MustParsePrefix("::ffff:203.0.113.2/128"), Port: 40000}}},
		},
	})
	if m.family != netfilter.ProtoUnspec {
		t.Errorf("family = %v; want unspecified (both)", m.family)
	}
	tests := []struct {
		name string
		f    nfct.Flow
		want bool
	}{
		{"inbound to a closed pinhole", flow(gateway.UDP, plain,
			"[2001:db8:203::2]:40000", "[2001:db8:100::10]:5001", "[2001:db8:100::10]:5001", "[2001:db8:203::2]:40000"), true},
		{"outbound from a closed pinhole's endpoint", flow(gateway.UDP, plain,
			"[2001:db8:100::10]:5001", "[2001:db8:203::2]:40000", "[2001:db8:203::2]:40000", "[2001:db8:100::10]:5001"), false},
		{"inbound to another port", flow(gateway.UDP, plain,
			"[2001:db8:203::2]:40000", "[2001:db8:100::10]:5002", "[2001:db8:100::10]:5002", "[2001:db8:203::2]:40000"), false},
		{"inbound from a peer the filter admits", flow(gateway.TCP, plain,
			"[2001:db8:203::2]:40000", "[2001:db8:100::10]:8080", "[2001:db8:100::10]:8080", "[2001:db8:203::2]:40000"), false},
		{"inbound from a peer the filter no longer admits", flow(gateway.TCP, plain,
			"[2001:db8:204::2]:40000", "[2001:db8:100::10]:8080", "[2001:db8:100::10]:8080", "[2001:db8:204::2]:40000"), true},
		{"IPv4 mapping, admitted peer", flow(gateway.UDP, dnat,
			"203.0.113.2:40000", "203.0.113.1:15000", "198.51.100.10:5001", "203.0.113.2:40000"), false},
		{"IPv4 mapping, admitted address, other port", flow(gateway.UDP, dnat,
			"203.0.113.2:40001", "203.0.113.1:15000", "198.51.100.10:5001", "203.0.113.2:40001"), true},
		{"IPv4 mapping, other peer", flow(gateway.UDP, dnat,
			"203.0.113.3:40000", "203.0.113.1:15000", "198.51.100.10:5001", "203.0.113.3:40000"), true},
	}
	for _, tt := range tests {
		if got := m.matches(tt.f); got != tt.want {
			t.Errorf("%s: matches = %v; want %v", tt.name, got, tt.want)
		}
	}
}
