package nftfw

import (
	"bufio"
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/internal/netlab"
)

// dialTimeout bounds each connection attempt of the traffic test: long
// enough on a loaded machine, short enough for the attempts that must fail.
const dialTimeout = 2 * time.Second

// askUDP sends a datagram to addr from a new socket of h and returns the
// peer address the server saw and the address the answer came from.
func askUDP(h *netlab.Host, addr string) (seen string, from net.Addr, err error) {
	pc, err := h.ListenPacket("udp4", ":0")
	if err != nil {
		return "", nil, err
	}
	defer pc.Close()
	to, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return "", nil, err
	}
	if _, err := pc.WriteTo([]byte("hello"), to); err != nil {
		return "", nil, err
	}
	_ = pc.SetReadDeadline(time.Now().Add(dialTimeout))
	buf := make([]byte, 1500)
	n, from, err := pc.ReadFrom(buf)
	if err != nil {
		return "", nil, err
	}
	return string(buf[:n]), from, nil
}

// TestTraffic sends traffic through a Firewall in the gateway of a lab with
// two LAN hosts (198.51.100.10 and .11) and a WAN host (203.0.113.2). The
// gateway also has the lab's own masquerade (table ip lab).
func TestTraffic(t *testing.T) {
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	gw := labGateway(t, lab)
	f := newFirewall(t, gw, Config{
		ExternalInterface: lab.GatewayWANLink,
		TimeoutGrace:      -1, // kernel timeout = Lifetime, for the timeout case
	})
	ctx := context.Background()
	if err := f.SetExternalAddress(ctx, lab.GatewayWANAddr4); err != nil {
		t.Fatal(err)
	}
	lan0, lan1, wan := lab.LAN[0], lab.LAN[1], lab.WAN
	ext := lab.GatewayWANAddr4.String()

	// Servers on LAN host 0, at ports that differ from the external ones.
	ln, err := lan0.Listen("tcp4", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	netlab.ServePeerAddr(t, ln)
	pc, err := lan0.ListenPacket("udp4", ":5001")
	if err != nil {
		t.Fatal(err)
	}
	netlab.ServePeerAddrUDP(t, pc)

	inTCP := tcpMapping(18080, "198.51.100.10:8080")
	inUDP := udpMapping(15000, "198.51.100.10:5001")
	if err := f.Apply(ctx, []gateway.Mapping{inTCP, inUDP}, nil); err != nil {
		t.Fatal(err)
	}

	t.Run("inbound TCP", func(t *testing.T) {
		seen, err := netlab.AskPeerAddr(wan, ext+":18080")
		if err != nil {
			t.Fatalf("WAN dial %s:18080: %v", ext, err)
		}
		if want := wan.Addr4.String(); !strings.HasPrefix(seen, want+":") {
			t.Errorf("LAN server saw peer %s; want %s (no source translation inbound)", seen, want)
		}
	})

	t.Run("inbound UDP", func(t *testing.T) {
		seen, from, err := askUDP(wan, ext+":15000")
		if err != nil {
			t.Fatalf("WAN datagram to %s:15000: %v", ext, err)
		}
		if want := wan.Addr4.String(); !strings.HasPrefix(seen, want+":") {
			t.Errorf("LAN server saw peer %s; want %s", seen, want)
		}
		if want := ext + ":15000"; from.String() != want {
			t.Errorf("answer came from %v; want %s", from, want)
		}
	})

	t.Run("hairpin", func(t *testing.T) {
		seen, err := netlab.AskPeerAddr(lan1, ext+":18080")
		if err != nil {
			t.Fatalf("LAN host 1 dial %s:18080: %v", ext, err)
		}
		if want := lab.GatewayLANAddr4.String(); !strings.HasPrefix(seen, want+":") {
			t.Errorf("LAN server saw peer %s; want the gateway %s (hairpin masquerade)", seen, want)
		}
		if _, _, err := askUDP(lan1, ext+":15000"); err != nil {
			t.Errorf("LAN host 1 datagram to %s:15000: %v", ext, err)
		}
	})

	t.Run("gateway to its own external address", func(t *testing.T) {
		if _, err := netlab.AskPeerAddr(lab.Gateway, ext+":18080"); err != nil {
			t.Errorf("gateway dial %s:18080: %v", ext, err)
		}
	})

	t.Run("outbound UDP keeps the external port", func(t *testing.T) {
		out := udpMapping(25000, "198.51.100.10:5002")
		if err := f.Apply(ctx, []gateway.Mapping{out}, nil); err != nil {
			t.Fatal(err)
		}
		from := netlab.OutboundSource(t, lan0, "198.51.100.10:5002", wan)
		if want := ext + ":25000"; from != want {
			t.Errorf("datagram from the mapped endpoint arrived from %v; want %s", from, want)
		}

		// An endpoint without a mapping gets the lab's masquerade.
		from = netlab.OutboundSource(t, lan0, "198.51.100.10:5003", wan)
		if !strings.HasPrefix(from, ext+":") {
			t.Errorf("datagram from an unmapped endpoint arrived from %v; want %s (masquerade)", from, ext)
		}
	})

	t.Run("outbound TCP keeps the external port", func(t *testing.T) {
		out := tcpMapping(26000, "198.51.100.10:6000")
		if err := f.Apply(ctx, []gateway.Mapping{out}, nil); err != nil {
			t.Fatal(err)
		}
		wln, err := wan.Listen("tcp4", wan.Addr4.String()+":7000")
		if err != nil {
			t.Fatal(err)
		}
		netlab.ServePeerAddr(t, wln)
		var seen string
		err = lan0.Do(func() error {
			d := net.Dialer{Timeout: dialTimeout, LocalAddr: &net.TCPAddr{IP: net.IPv4(198, 51, 100, 10), Port: 6000}}
			c, err := d.Dial("tcp4", wan.Addr4.String()+":7000")
			if err != nil {
				return err
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(dialTimeout))
			seen, err = bufio.NewReader(c).ReadString('\n')
			seen = strings.TrimSpace(seen)
			return err
		})
		if err != nil {
			t.Fatalf("LAN dial from :6000 to the WAN host: %v", err)
		}
		if want := ext + ":26000"; seen != want {
			t.Errorf("WAN server saw peer %s; want %s", seen, want)
		}
	})

	t.Run("removed mappings stop", func(t *testing.T) {
		if err := f.Apply(ctx, nil, []gateway.Mapping{inTCP, inUDP}); err != nil {
			t.Fatal(err)
		}
		if seen, err := netlab.AskPeerAddr(wan, ext+":18080"); err == nil {
			t.Errorf("WAN dial %s:18080 after removal reached %s; want a failure", ext, seen)
		}
		// A new socket: an existing conntrack entry would still carry
		// its old translation.
		if seen, _, err := askUDP(wan, ext+":15000"); err == nil {
			t.Errorf("WAN datagram to %s:15000 after removal answered (%s); want no answer", ext, seen)
		}
	})

	t.Run("kernel timeout", func(t *testing.T) {
		short := tcpMapping(19000, "198.51.100.10:8080")
		short.Lifetime = 3 * time.Second
		if err := f.Apply(ctx, []gateway.Mapping{short}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := netlab.AskPeerAddr(wan, ext+":19000"); err != nil {
			t.Fatalf("WAN dial %s:19000 before the timeout: %v", ext, err)
		}
		waitFor(t, 60*time.Second, "the kernel to time the mapping out", func() bool {
			ms, err := f.Elements(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return !slices.ContainsFunc(ms, func(m gateway.Mapping) bool { return m.ExternalPort == 19000 })
		})
		if seen, err := netlab.AskPeerAddr(wan, ext+":19000"); err == nil {
			t.Errorf("WAN dial %s:19000 after the timeout reached %s; want a failure", ext, seen)
		}
		// The lease core removes it later: that must not fail.
		if err := f.Apply(ctx, nil, []gateway.Mapping{short}); err != nil {
			t.Errorf("removing a timed-out mapping: %v", err)
		}
	})

	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if gw.hasTable(t, "inet", DefaultTable) {
		t.Errorf("table inet %s still there after Close", DefaultTable)
	}
	if !gw.hasTable(t, "ip", "lab") {
		t.Errorf("the lab's own table ip lab is gone")
	}
	if _, err := netlab.AskPeerAddr(wan, ext+":18080"); err == nil {
		t.Errorf("WAN dial %s:18080 after Close succeeded; want a failure", ext)
	}

	t.Run("hairpin from the listed internal interfaces only", func(t *testing.T) {
		g := newFirewall(t, gw, Config{
			Table:              "portleased_lan",
			ExternalInterface:  lab.GatewayWANLink,
			InternalInterfaces: []string{lab.GatewayLANLink},
		})
		if err := g.SetExternalAddress(ctx, lab.GatewayWANAddr4); err != nil {
			t.Fatal(err)
		}
		if err := g.Apply(ctx, []gateway.Mapping{inTCP}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := netlab.AskPeerAddr(lan1, ext+":18080"); err != nil {
			t.Errorf("LAN host 1 dial %s:18080 through %s: %v", ext, lab.GatewayLANLink, err)
		}
		if _, err := netlab.AskPeerAddr(wan, ext+":18080"); err != nil {
			t.Errorf("WAN dial %s:18080: %v", ext, err)
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		g = newFirewall(t, gw, Config{
			Table:              "portleased_other",
			ExternalInterface:  lab.GatewayWANLink,
			InternalInterfaces: []string{"lan9"},
		})
		if err := g.SetExternalAddress(ctx, lab.GatewayWANAddr4); err != nil {
			t.Fatal(err)
		}
		if err := g.Apply(ctx, []gateway.Mapping{inTCP}, nil); err != nil {
			t.Fatal(err)
		}
		if seen, err := netlab.AskPeerAddr(lan1, ext+":18080"); err == nil {
			t.Errorf("LAN host 1 dial %s:18080 through a link not listed reached %s; want a failure", ext, seen)
		}
	})
}
