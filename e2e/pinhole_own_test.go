package e2e

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// TestPinholeUPnPCOwnAddresses: in secure mode, a host with several IPv6
// addresses (here a second one on the LAN prefix, as a privacy address is)
// opens a pinhole for each of them over UPnP, whichever of them its request
// comes from: portleased decides "its own" by the neighbour table's
// link-layer address, where miniupnpd answers 606 for any address but the
// request's source. Another host's address is still refused with 606, and
// the WAN host reaches a server on the second address through its pinhole.
func TestPinholeUPnPCOwnAddresses(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan := lab.LAN[0]
	second := netip.MustParseAddr("2001:db8:100::a:10")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if out, err := lan.Run(ctx, "ip", "-6", "addr", "add", netip.PrefixFrom(second, 64).String(), "dev", lan.Link, "nodad"); err != nil {
		t.Fatalf("add %v to %s: %v\n%s", second, lan.Name, err, out)
	}
	// The host talks from its second address (a connection to the
	// gateway's UPnP port), as a host does with the address it uses: the
	// gateway's neighbour table then holds it, with the host's link-layer
	// address.
	if err := lan.Do(func() error {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(second, 0)), Timeout: 5 * time.Second}
		c, err := d.Dial("tcp6", netip.AddrPortFrom(lab.GatewayLANAddr6, 5000).String())
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		t.Fatalf("connecting from %v to the gateway: %v", second, err)
	}

	const greeting = "hello on the second address"
	serveTCP6(t, lan, 8084, greeting)
	server := netip.AddrPortFrom(second, 8084)
	mustNotReach(t, "before a pinhole", lab.WAN, anySource, server)
	for _, a := range []netip.Addr{lanHost6, second} {
		upnpcAddPinhole(t, lan, "", netip.AddrPortFrom(a, 8084), "TCP", 600)
	}
	mustReach(t, "through the second address's pinhole", lab.WAN, anySource, server, greeting)

	other := lab.LAN[1].Addr6
	out := upnpc6(t, lan, "-A", "", "0", other.String(), strconv.Itoa(8085), "TCP", "600")
	if !strings.Contains(out, "606") {
		t.Fatalf("upnpc -6 -A for another host's address %v printed:\n%s\nwant 606 (secure mode)", other, out)
	}
}
