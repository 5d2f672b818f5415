package nftfw

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/internal/netlab"
)

// TestSetInterfaces moves a Firewall from the lab's WAN link (wan0, link A)
// to a second one (wan1, link B, 203.0.113.129/25, whose host is
// 203.0.113.130) and adds a LAN link (lan9, 198.51.100.129/25, whose host is
// 198.51.100.130): a mapping made before the move forwards through B and no
// longer through A, outbound traffic of a mapped endpoint leaves B with B's
// address, and a host on the new LAN link reaches the mapping by hairpin.
func TestSetInterfaces(t *testing.T) {
	lab := netlab.New(t, netlab.Config{})
	ctx := context.Background()
	wanB, err := lab.AddLinkedHost(ctx, "wanb", "wan1",
		netip.MustParsePrefix("203.0.113.129/25"), netip.MustParsePrefix("203.0.113.130/25"))
	if err != nil {
		t.Fatal(err)
	}
	lan9, err := lab.AddLinkedHost(ctx, "lan9", "lan9",
		netip.MustParsePrefix("198.51.100.129/25"), netip.MustParsePrefix("198.51.100.130/25"))
	if err != nil {
		t.Fatal(err)
	}
	gw := labGateway(t, lab)
	f := newFirewall(t, gw, Config{
		ExternalInterface:  lab.GatewayWANLink,
		InternalInterfaces: []string{lab.GatewayLANLink},
	})
	addrA, addrB := lab.GatewayWANAddr4, netip.MustParseAddr("203.0.113.129")
	if err := f.SetExternalAddress(ctx, addrA); err != nil {
		t.Fatal(err)
	}
	lan0, wanA := lab.LAN[0], lab.WAN
	ln, err := lan0.Listen("tcp4", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	netlab.ServePeerAddr(t, ln)
	in := tcpMapping(18080, "198.51.100.10:8080")
	out := udpMapping(25000, "198.51.100.10:5002")
	if err := f.Apply(ctx, []gateway.Mapping{in, out}, nil); err != nil {
		t.Fatal(err)
	}
	a, b := addrA.String()+":18080", addrB.String()+":18080"
	if _, err := netlab.AskPeerAddr(wanA, a); err != nil {
		t.Fatalf("before the move: WAN host A dial %s: %v", a, err)
	}

	for _, bad := range [][]string{{""}, {"wan1", "wan1"}, {"wan1", "a-name-longer-than-15"}} {
		if err := f.SetInterfaces(ctx, bad[0], bad[1:]); err == nil {
			t.Errorf("SetInterfaces(%q, %q) succeeded; want an error", bad[0], bad[1:])
		}
	}
	if err := f.SetInterfaces(ctx, "wan1", []string{lab.GatewayLANLink, "lan9"}); err != nil {
		t.Fatal(err)
	}
	if err := f.SetExternalAddress(ctx, addrB); err != nil {
		t.Fatal(err)
	}

	t.Run("inbound through B", func(t *testing.T) {
		seen, err := netlab.AskPeerAddr(wanB, b)
		if err != nil {
			t.Fatalf("WAN host B dial %s: %v", b, err)
		}
		if want := wanB.Addr4.String(); !strings.HasPrefix(seen, want+":") {
			t.Errorf("LAN server saw peer %s; want %s", seen, want)
		}
	})
	t.Run("not through A", func(t *testing.T) {
		for _, addr := range []string{a, b} {
			if seen, err := netlab.AskPeerAddr(wanA, addr); err == nil {
				t.Errorf("WAN host A dial %s through wan0 reached %s; want a failure", addr, seen)
			}
		}
	})
	t.Run("outbound leaves B with B's address", func(t *testing.T) {
		from := netlab.OutboundSource(t, lan0, "198.51.100.10:5002", wanB)
		if want := addrB.String() + ":25000"; from != want {
			t.Errorf("datagram of the mapped endpoint arrived from %v; want %s", from, want)
		}
	})
	t.Run("hairpin from the new LAN link", func(t *testing.T) {
		seen, err := netlab.AskPeerAddr(lan9, b)
		if err != nil {
			t.Fatalf("host on lan9 dial %s: %v", b, err)
		}
		if want := lab.GatewayLANAddr4.String(); !strings.HasPrefix(seen, want+":") {
			t.Errorf("LAN server saw peer %s; want the gateway %s (hairpin masquerade)", seen, want)
		}
	})
	t.Run("a repaired table names the new links", func(t *testing.T) {
		gw.nft(t, "delete", "table", "inet", DefaultTable)
		if _, err := f.Reconcile(ctx, []gateway.Mapping{in, out}); err != nil {
			t.Fatal(err)
		}
		table := gw.nft(t, "list", "table", "inet", DefaultTable)
		for _, want := range []string{`iifname "wan1"`, `iifname "lan9"`, `"wan1" : 203.0.113.129`} {
			if !strings.Contains(table, want) {
				t.Errorf("repaired table lacks %s:\n%s", want, table)
			}
		}
		if strings.Contains(table, `"wan0"`) {
			t.Errorf("repaired table still names wan0:\n%s", table)
		}
		if _, err := netlab.AskPeerAddr(wanB, b); err != nil {
			t.Errorf("after the repair: WAN host B dial %s: %v", b, err)
		}
	})
}
