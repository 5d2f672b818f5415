package netlab

import (
	"context"
	"net/netip"
	"testing"
)

// TestAddLinkedHostRejects: addresses outside the lab's documentation
// ranges, or not of one subnet, and bad link names are refused before
// anything is made.
func TestAddLinkedHostRejects(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name, link string
		gw, host   netip.Prefix
	}{
		{"outside the lab", "wan1", p("192.0.2.1/24"), p("192.0.2.2/24")},
		{"shorter than /24", "wan1", p("203.0.113.1/16"), p("203.0.113.2/16")},
		{"two subnets", "wan1", p("203.0.113.129/25"), p("203.0.113.2/25")},
		{"one address", "wan1", p("203.0.113.129/25"), p("203.0.113.129/25")},
		{"IPv6", "wan1", p("2001:db8::1/64"), p("2001:db8::2/64")},
		{"empty link name", "", p("203.0.113.129/25"), p("203.0.113.130/25")},
		{"long link name", "a-name-longer-than-15", p("203.0.113.129/25"), p("203.0.113.130/25")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &Lab{ID: "0-test"}
			if _, err := l.AddLinkedHost(context.Background(), "x", tt.link, tt.gw, tt.host); err == nil {
				t.Fatal("AddLinkedHost succeeded; want an error")
			}
			if len(l.namespaces) != 0 {
				t.Errorf("namespaces recorded: %v", l.namespaces)
			}
		})
	}
}
