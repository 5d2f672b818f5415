package config

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/portlease/portlease/gateway"
)

// TestThirdPartyAndIPv6Rules: "allow third-party" lines and IPv6 rules
// parse, read back from String, and bad ones name their file:line.
func TestThirdPartyAndIPv6Rules(t *testing.T) {
	const head = "interface em0\nlisten on 10.0.0.1\n"
	tests := []struct {
		name string
		src  string
		want string // fmt.Sprint(ThirdParty, Rules), or the error
	}{
		{"third party and IPv6 rule", head + "allow third-party 10.0.0.5\nallow third-party 2001:db8:1::/64\nallow 1024-65535 2001:db8:1::/64 1024-65535\n",
			"[10.0.0.5/32 2001:db8:1::/64] [allow 1024-65535 2001:db8:1::/64 1024-65535]"},
		{"deny third-party", head + "deny third-party 10.0.0.5\n", `portleased.conf:3: deny third-party: only "allow third-party ADDRESS[/MASK]" exists (none is allowed by default)`},
		{"missing address", head + "allow third-party\n", `portleased.conf:3: allow third-party: missing address (want "allow third-party ADDRESS[/MASK]")`},
		{"bad address", head + "allow third-party 10.0.0.300\n", `portleased.conf:3: allow third-party: "10.0.0.300" is not an IP address`},
		{"bad IPv6 length", head + "allow third-party 2001:db8::/129\n", `portleased.conf:3: allow third-party: "129" is not a prefix length (0-128)`},
		{"extra word", head + "allow third-party 10.0.0.5 10.0.0.6\n", `portleased.conf:3: allow third-party: unexpected "10.0.0.6"`},
		{"IPv6 rule bad prefix", head + "allow 1024-65535 2001:db8::/200 1024-65535\n", `portleased.conf:3: allow: internal address: "200" is not a prefix length (0-128)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("portleased.conf", strings.NewReader(tc.src))
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				got = fmt.Sprint(cfg.ThirdParty, cfg.Rules)
				again, err := Parse("again", strings.NewReader(cfg.String()))
				if err != nil || fmt.Sprint(again.ThirdParty, again.Rules) != got {
					t.Fatalf("String() does not read back: %v\n%s", err, cfg.String())
				}
			}
			if got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	p := gateway.Policy{ThirdParty: []netip.Prefix{netip.MustParsePrefix("10.0.0.5/32")}}
	if !p.MayActFor(netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("10.0.0.9")) ||
		p.MayActFor(netip.MustParseAddr("10.0.0.6"), netip.MustParseAddr("10.0.0.9")) ||
		!p.MayActFor(netip.MustParseAddr("::ffff:10.0.0.6"), netip.MustParseAddr("10.0.0.6")) {
		t.Fatal("MayActFor disagrees with the third-party list")
	}
}
