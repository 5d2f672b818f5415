package ssdpsrv

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv6"

	"github.com/portlease/portlease/internal/netlab"
	"github.com/portlease/portlease/upnp"
)

// testLocation6 is the description URL of the IPv6 Link in the lab.
const testLocation6 = "http://[2001:db8:100::1]:5000/rootDesc.xml"

var (
	linkLocalGroup6 = netip.AddrPortFrom(upnp.SSDPMulticastAddr6().Addr(), upnp.SSDPPort)
	siteLocalSSDP6  = netip.AddrPortFrom(siteLocalGroup6, upnp.SSDPPort)
)

// newPeer6 is newPeer over IPv6: a socket on [::]:port in h's namespace,
// multicast through ifname without loopback, joined to FF02::C and
// FF05::C on ifname when join is set.
func newPeer6(t *testing.T, h *netlab.Host, ifname string, port int, join bool) *peer {
	t.Helper()
	p := &peer{more: make(chan struct{})}
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		p.conn, err = net.ListenUDP("udp6", &net.UDPAddr{Port: port})
		if err != nil {
			return err
		}
		pc := ipv6.NewPacketConn(p.conn)
		if err := pc.SetMulticastInterface(ifi); err != nil {
			return err
		}
		if err := pc.SetMulticastLoopback(false); err != nil {
			return err
		}
		if join {
			for _, g := range []netip.Addr{linkLocalGroup6.Addr(), siteLocalGroup6} {
				if err := pc.JoinGroup(ifi, &net.UDPAddr{IP: g.AsSlice()}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: socket: %v", h.Name, err)
	}
	p.start(t)
	return p
}

// labConfig6 serves embeddedDevice on the gateway's LAN bridge over IPv4
// and IPv6.
func labConfig6(lab *netlab.Lab, log *slog.Logger) Config {
	cfg := labConfig(lab, log)
	cfg.Links = append(cfg.Links, Link{
		Name:     lab.GatewayLANLink,
		Addr:     lab.GatewayLANAddr6,
		Prefix:   netip.PrefixFrom(lab.GatewayLANAddr6, 64),
		Location: testLocation6,
	})
	return cfg
}

// TestLabIPv6 runs the server on the lab gateway's LAN link over both
// families and talks to it over IPv6 from a LAN host and the WAN host:
// advertisements to FF02::C and FF05::C with the IPv6 Location, searches
// to either group and to the gateway's address answered, nothing to or
// from the WAN, and upnpc -6 discovers the device.
func TestLabIPv6(t *testing.T) {
	lab := netlab.New(t, netlab.Config{})
	serveDescriptionAt(t, lab, "[2001:db8:100::1]:5000")
	gatewayFrom6 := netip.AddrPortFrom(lab.GatewayLANAddr6, upnp.SSDPPort)

	lanListener := newPeer6(t, lab.LAN[0], "eth0", upnp.SSDPPort, true)
	wan := newPeer6(t, lab.WAN, "eth0", upnp.SSDPPort, true)

	srv := listenIn(t, lab, labConfig6(lab, nil))
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-served
		srv.Close()
	})

	t.Run("alive to both groups", func(t *testing.T) {
		hosts := map[string]bool{}
		got := lanListener.waitUntil(t, "ssdp:alive to [ff02::c] and [ff05::c]", nil, func(got []datagram) bool {
			for _, n := range notifies6(got, lab.GatewayLANAddr6) {
				if n.NTS == upnp.NTSAlive {
					hosts[n.Host] = true
				}
			}
			return len(hosts) == 2
		})
		if !hosts["[ff02::c]:1900"] || !hosts["[ff05::c]:1900"] {
			t.Errorf("alive HOST headers %v; want [ff02::c]:1900 and [ff05::c]:1900", hosts)
		}
		for _, n := range notifies6(got, lab.GatewayLANAddr6) {
			if n.NTS == upnp.NTSAlive && n.Location != testLocation6 {
				t.Errorf("alive over IPv6 with LOCATION %q; want %q", n.Location, testLocation6)
			}
		}
	})

	for _, tt := range []struct {
		name string
		to   netip.AddrPort
		mx   int
	}{
		{"link-local group", linkLocalGroup6, 1},
		{"site-local group", siteLocalSSDP6, 1},
		{"unicast", gatewayFrom6, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newPeer6(t, lab.LAN[0], "eth0", 0, false)
			host := ""
			if !tt.to.Addr().IsMulticast() {
				host = tt.to.String()
			}
			req := msearch(t, host, upnp.DeviceIGD2, tt.mx)
			to := tt.to
			if to.Addr().IsLinkLocalMulticast() {
				to = netip.AddrPortFrom(to.Addr().WithZone("eth0"), to.Port())
			}
			p.send(t, to, req)
			got := p.waitUntil(t, "response over IPv6", func() { p.send(t, to, req) }, func(got []datagram) bool {
				return hasResponse(got, upnp.DeviceIGD2, gatewayFrom6)
			})
			for _, r := range responses(got) {
				if r.Location != testLocation6 {
					t.Errorf("response LOCATION %q; want %q", r.Location, testLocation6)
				}
			}
		})
	}

	t.Run("upnpc -6", func(t *testing.T) {
		args := []string{"-6", "-i", "-p", t.TempDir() + "/no-minissdpd.sock", "-m", "eth0", "-l"}
		ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
		out, err := lab.LAN[0].Run(ctx, "upnpc", args...)
		cancel()
		// Only discovery counts: nothing serves the control URL.
		if !strings.Contains(out, "desc: "+testLocation6) {
			t.Errorf("upnpc %s did not discover %s (err %v):\n%s", strings.Join(args, " "), testLocation6, err, out)
		}
	})

	t.Run("silent to the WAN", func(t *testing.T) {
		// The WAN host searches the gateway's WAN address and both groups
		// on its link; then a LAN search proves the server was running.
		for _, to := range []netip.AddrPort{
			netip.AddrPortFrom(lab.Gateway.Addr6, upnp.SSDPPort),
			netip.AddrPortFrom(linkLocalGroup6.Addr().WithZone("eth0"), upnp.SSDPPort),
			siteLocalSSDP6,
		} {
			wan.send(t, to, msearch(t, "", upnp.SearchAll, 1))
		}
		p := newPeer6(t, lab.LAN[0], "eth0", 0, false)
		req := msearch(t, gatewayFrom6.String(), upnp.DeviceIGD2, 0)
		p.send(t, gatewayFrom6, req)
		p.waitUntil(t, "LAN response", func() { p.send(t, gatewayFrom6, req) }, func(got []datagram) bool {
			return hasResponse(got, upnp.DeviceIGD2, gatewayFrom6)
		})
		time.Sleep(2 * time.Second) // the WAN searches' MX has passed
		if got := wan.received(); len(got) != 0 {
			t.Errorf("the WAN host received %d datagrams over IPv6, the first from %v", len(got), got[0].from)
		}
	})
}

// notifies6 parses the advertisements in got that came from the gateway's
// IPv6 address from.
func notifies6(got []datagram, from netip.Addr) []upnp.Notify {
	var ns []upnp.Notify
	for _, d := range got {
		if d.from.Addr() != from {
			continue
		}
		if n, err := upnp.ParseNotify(d.data); err == nil {
			ns = append(ns, n)
		}
	}
	return ns
}
