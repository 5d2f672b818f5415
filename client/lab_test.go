//go:build linux

package client

import (
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
	"github.com/portlease/portlease/pcp"
)

// The lab tests run the client against real gateways (portleased, and
// miniupnpd 2.3.1) in the namespaces of internal/netlab. Each Client is
// created inside lab.LAN[0].Do, so it belongs to the LAN host's namespace;
// one-shot calls run inside Do too, while the keeper works from its own
// goroutines, through the client's namespace runner. Nothing is sent from
// the machine's own namespace: the first check of each test is that the
// client sees the LAN host's routes, before anything is sent.

var (
	labGateway = netip.MustParseAddr("198.51.100.1")
	labLocal   = netip.MustParseAddr("198.51.100.10")
	labWAN     = netip.MustParseAddr("203.0.113.1")
)

// labClient creates a Client inside host's namespace and checks that it sees
// the lab's gateway, not the machine's.
func labClient(t *testing.T, lab *netlab.Lab, host *netlab.Host, cfg Config) (*Client, *logBuffer) {
	t.Helper()
	lb := &logBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var c *Client
	if err := host.Do(func() error {
		var err error
		c, err = New(cfg)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if t.Failed() || os.Getenv("LABLOG") != "" {
			t.Logf("client log:\n%s", lb.String())
		}
	})
	// From this goroutine, in the machine's own namespace: the client
	// must still look at the LAN host's routes (netlink only, nothing is
	// sent).
	gws, err := c.gateways(t.Context(), true)
	if err != nil {
		t.Fatal(err)
	}
	// The IPv6 default router follows, for pinholes, unless the gateway
	// was given (Config.Gateway, Config.DescriptionURL).
	want := 2
	if cfg.Gateway.IsValid() || cfg.DescriptionURL != "" {
		want = 1
	}
	if len(gws) != want || gws[0].route.gw != lab.GatewayLANAddr4 || gws[0].route.local != host.Addr4 || gws[0].route.iface != host.Link ||
		(want == 2 && (!gws[1].route.gw.Is6() || gws[1].route.local != host.Addr6)) {
		for _, g := range gws {
			t.Errorf("gateway %v local %v", g, g.route.local)
		}
		t.Fatalf("the client does not see the lab's gateway %v from %v: the namespace runner is broken", lab.GatewayLANAddr4, host.Addr4)
	}
	// The host's one global IPv6 address is where its pinholes lead.
	if addrs, err := c.PinholeAddrs(); err != nil || len(addrs) != 1 || addrs[0] != host.Addr6 {
		t.Fatalf("PinholeAddrs = %v, %v; want [%v]", addrs, err, host.Addr6)
	}
	return c, lb
}

// in runs fn inside host's namespace.
func in(t *testing.T, host *netlab.Host, fn func() error) {
	t.Helper()
	if err := host.Do(fn); err != nil {
		t.Fatal(err)
	}
}

// nftHas reports whether the gateway's ruleset mentions port; the test fails
// when nft does.
func nftHas(t *testing.T, lab *netlab.Lab, port string) bool {
	t.Helper()
	return strings.Contains(labpeers.NFT(t, lab.Gateway, "list", "ruleset"), port)
}

func TestLabPortleased(t *testing.T) {
	lab := netlab.New(t, netlab.Config{})
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	started := time.Now()
	// An hour between checks: after the restart below, only the
	// announcement can tell the client.
	c, _ := labClient(t, lab, lab.LAN[0], Config{CheckInterval: time.Hour})

	in(t, lab.LAN[0], func() error {
		gws, err := c.Probe(t.Context())
		if err != nil {
			return err
		}
		gws = ipv4Gateways(gws)
		if len(gws) != 1 || gws[0].NATPMP == nil || gws[0].PCP == nil || gws[0].NATPMP.ExternalAddress != labWAN ||
			gws[0].AddressClass != Documentation || gws[0].DoubleNAT {
			t.Errorf("Probe = %+v", gws)
		}
		res, err := c.Map(t.Context(), Request{Protocol: TCP, InternalPort: 8080, Lifetime: time.Minute})
		if err != nil {
			return err
		}
		// portleased speaks PCP, which auto prefers; the mapping has a
		// nonce of its own, and the minute asked for is raised to PCP's
		// minimum lifetime (RFC 6887 §15: 120 s).
		want := Result{Protocol: TCP, Internal: netip.AddrPortFrom(labLocal, 8080), External: netip.AddrPortFrom(labWAN, 8080),
			Lifetime: 2 * time.Minute, Method: PCP, Nonce: res.Nonce, Gateway: labGateway, Interface: lab.LAN[0].Link}
		if res != want || res.Nonce.IsZero() {
			t.Errorf("Map = %+v; want %+v with a nonce", res, want)
		}
		if err := c.Unmap(t.Context(), Request{Protocol: TCP, InternalPort: 8080, Nonce: res.Nonce}); err != nil {
			t.Errorf("Unmap = %v", err)
		}
		// Another host's address: PCP's THIRD_PARTY, which portleased
		// refuses without an "allow third-party" line.
		_, err = c.Map(t.Context(), Request{Protocol: TCP, InternalPort: 8081, InternalAddr: netip.MustParseAddr("198.51.100.11")})
		var perr *PCPError
		if !errors.As(err, &perr) || perr.Code != pcp.NotAuthorized {
			t.Errorf("Map(foreign) = %v; want PCP's NOT_AUTHORIZED from portleased", err)
		}
		return nil
	})

	var m *Mapping
	in(t, lab.LAN[0], func() error {
		var err error
		m, err = c.Keep(t.Context(), Request{Protocol: UDP, InternalPort: 4672, Description: "Kad"})
		return err
	})
	if ev := waitEvent(t, c, Mapped); ev.Result.External != netip.AddrPortFrom(labWAN, 4672) || ev.Result.Method != PCP {
		t.Fatalf("Mapped %+v", ev.Result)
	}
	eventually(t, "the mapping in the kernel", func() bool { return nftHas(t, lab, "4672") })

	// The router restarts: its mappings go, its epoch starts again, and it
	// announces its address to 224.0.0.1:5350. RFC 6886 §3.6 allows 2 s
	// of slack, so a restart is told only after more than that of uptime.
	time.Sleep(time.Until(started.Add(4 * time.Second)))
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	if nftHas(t, lab, "4672") {
		t.Fatal("portleased left the mapping behind")
	}
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, c, GatewayRestarted)
	if ev := waitEvent(t, c, Recreated, Failed); ev.Kind != Recreated {
		t.Fatalf("event %v; want Recreated", ev)
	}
	eventually(t, "the mapping back in the kernel", func() bool { return nftHas(t, lab, "4672") })

	if err := m.Close(t.Context()); err != nil {
		t.Fatalf("Close = %v", err)
	}
	waitEvent(t, c, Deleted)
	eventually(t, "the mapping gone", func() bool { return !nftHas(t, lab, "4672") })
}

func TestLabMiniUPnPd(t *testing.T) {
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	mini := labpeers.StartMiniUPnPd(t, lab, labpeers.MiniUPnPdConfig{})

	tests := []struct {
		name string
		cfg  Config
	}{
		{"SSDP discovery", Config{Method: UPnP, CheckInterval: time.Second}},
		{"description URL", Config{Method: UPnP, CheckInterval: time.Second, DescriptionURL: mini.DescriptionURL()}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := uint16(4662 + 100*i)
			c, _ := labClient(t, lab, lab.LAN[0], tt.cfg)
			in(t, lab.LAN[0], func() error {
				gws, err := c.Probe(t.Context())
				if err != nil {
					return err
				}
				gws = ipv4Gateways(gws)
				if len(gws) != 1 || len(gws[0].UPnP) == 0 || gws[0].UPnP[0].ExternalAddress != labWAN || gws[0].ExternalAddress != labWAN {
					t.Errorf("Probe = %+v", gws)
				}
				return nil
			})
			var m *Mapping
			in(t, lab.LAN[0], func() error {
				var err error
				m, err = c.Keep(t.Context(), Request{Protocol: TCP, InternalPort: port, Description: "eD2k"})
				return err
			})
			ev := waitEvent(t, c, Mapped)
			if ev.Result.External != netip.AddrPortFrom(labWAN, port) || ev.Result.Method != UPnP {
				t.Fatalf("Mapped %+v", ev.Result)
			}
			in(t, lab.LAN[0], func() error {
				entries, err := c.List(t.Context())
				if err != nil {
					return err
				}
				for _, e := range entries {
					if e.ExternalPort == port && e.Internal == netip.AddrPortFrom(labLocal, port) && e.Description == "eD2k" {
						return nil
					}
				}
				t.Errorf("List = %+v; want TCP %d", entries, port)
				return nil
			})

			// A router reboot: the table is gone, BOOTID changes.
			mini.Restart(t)
			if ev := waitEvent(t, c, Recreated, Failed); ev.Kind != Recreated {
				// A failure while the router restarts is fine;
				// it must come back.
				waitEvent(t, c, Recreated, Mapped)
			}
			eventually(t, "the mapping back on miniupnpd", func() bool {
				return strings.Contains(mini.Mappings(t), "->198.51.100.10:"+itoa(port))
			})
			if err := m.Close(t.Context()); err != nil {
				t.Fatalf("Close = %v", err)
			}
			if strings.Contains(mini.Mappings(t), "->198.51.100.10:"+itoa(port)) {
				t.Fatal("the mapping is still on miniupnpd after Close")
			}
		})
	}

	t.Run("conflict with another host", func(t *testing.T) {
		labpeers.UPnPC(t, lab.LAN[1], "-u", mini.DescriptionURL(), "-a", "198.51.100.11", "5555", "5555", "TCP", "600")
		c, _ := labClient(t, lab, lab.LAN[0], Config{Method: UPnP, DescriptionURL: mini.DescriptionURL()})
		in(t, lab.LAN[0], func() error {
			_, err := c.Map(t.Context(), Request{Protocol: TCP, InternalPort: 5555, ExternalPort: 5555})
			if !errors.Is(err, ErrConflict) {
				t.Errorf("Map = %v; want ErrConflict", err)
			}
			res, err := c.Map(t.Context(), Request{Protocol: TCP, InternalPort: 5555})
			if err != nil || res.External.Port() == 5555 {
				t.Errorf("Map with any port = %+v, %v; want another port", res, err)
			}
			return c.Unmap(t.Context(), Request{Protocol: TCP, InternalPort: 5555, ExternalPort: res.External.Port()})
		})
	})

	// miniupnpd 2.3.1, built with PCP (Debian's is), answers PCP on its
	// NAT-PMP port (enable_natpmp).
	t.Run("PCP", func(t *testing.T) {
		const port = 4900
		greet(t, lab.LAN[0], port, "through miniupnpd's PCP")
		c, _ := labClient(t, lab, lab.LAN[0], Config{Method: PCP})
		var res Result
		in(t, lab.LAN[0], func() error {
			var err error
			res, err = c.Map(t.Context(), Request{Protocol: TCP, InternalPort: port, Lifetime: time.Minute})
			return err
		})
		if res.Method != PCP || res.Nonce.IsZero() || res.External.Addr() != labWAN || res.External.Port() == 0 {
			t.Fatalf("Map = %+v; want a PCP mapping with a nonce on %v", res, labWAN)
		}
		if got, err := fetch(lab.WAN, res.External); err != nil || got != "through miniupnpd's PCP" {
			t.Fatalf("the WAN host through %v got %q, %v; want the LAN server's greeting", res.External, got, err)
		}
		if !strings.Contains(mini.Mappings(t), "->198.51.100.10:"+itoa(port)) {
			t.Fatal("the PCP mapping is not in miniupnpd's table")
		}
		in(t, lab.LAN[0], func() error {
			return c.Unmap(t.Context(), Request{Protocol: TCP, InternalPort: port, Nonce: res.Nonce})
		})
		if strings.Contains(mini.Mappings(t), "->198.51.100.10:"+itoa(port)) {
			t.Fatal("the mapping is still on miniupnpd after the deletion with its nonce")
		}
		if got, err := fetch(lab.WAN, res.External); err == nil {
			t.Fatalf("after the deletion the WAN host still reached the LAN server: %q", got)
		}
	})

	t.Run("NAT-PMP", func(t *testing.T) {
		c, _ := labClient(t, lab, lab.LAN[0], Config{Method: NATPMP})
		in(t, lab.LAN[0], func() error {
			res, err := c.Map(t.Context(), Request{Protocol: UDP, InternalPort: 4672, Lifetime: time.Minute})
			if err != nil {
				return err
			}
			if res.External != netip.AddrPortFrom(labWAN, 4672) || res.Method != NATPMP {
				t.Errorf("Map = %+v", res)
			}
			return c.Unmap(t.Context(), Request{Protocol: UDP, InternalPort: 4672})
		})
	})
}

// greet runs a TCP server on host's port that greets every connection with
// greeting, until the test ends.
func greet(t *testing.T, host *netlab.Host, port uint16, greeting string) {
	t.Helper()
	netlab.ServeGreeting(t, host, "tcp4", port, greeting)
}

// fetch connects from host to addr and returns the first line it reads.
func fetch(host *netlab.Host, addr netip.AddrPort) (string, error) {
	return netlab.FetchLine(host, "tcp4", addr.String())
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

// ipv4Gateways returns the gateways of IPv4 routes (Probe lists the IPv6
// default routers after them).
func ipv4Gateways(gws []Gateway) []Gateway {
	var out []Gateway
	for _, g := range gws {
		if g.Address.Is4() {
			out = append(out, g)
		}
	}
	return out
}

// pinholeSet returns the gateway's pinhole6 set (nftfw's unfiltered IPv6
// pinholes); the test fails when nft does.
func pinholeSet(t *testing.T, lab *netlab.Lab) string {
	t.Helper()
	return labpeers.NFT(t, lab.Gateway, "list", "set", "inet", "portleased", "pinhole6")
}

// TestLabPortleasedPinholeUPnP: over UPnP (WANIPv6FirewallControl:1 found
// through the IPv4 gateway) the client opens a pinhole for the LAN host's
// global IPv6 address on portleased, renews it by its UniqueID and closes
// it; with Auto the same request goes over PCP to the IPv6 default router.
func TestLabPortleasedPinholeUPnP(t *testing.T) {
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	host := lab.LAN[0]
	has := func(port string) func() bool {
		return func() bool {
			s := pinholeSet(t, lab)
			return strings.Contains(s, host.Addr6.String()) && strings.Contains(s, port)
		}
	}

	c, _ := labClient(t, lab, host, Config{Method: UPnP, CheckInterval: time.Second})
	var m *Mapping
	in(t, host, func() error {
		var err error
		m, err = c.Keep(t.Context(), Request{Protocol: TCP, InternalPort: 8080, InternalAddr: host.Addr6, Lifetime: time.Minute})
		return err
	})
	ev := waitEvent(t, c, Mapped)
	if r := ev.Result; !r.Pinhole || r.Method != UPnP || r.PinholeID == 0 || r.Internal != netip.AddrPortFrom(host.Addr6, 8080) {
		t.Fatalf("Mapped %+v; want a UPnP pinhole with a UniqueID", r)
	}
	if !has("8080")() {
		t.Fatalf("pinhole6 set:\n%s\nwant %s . tcp . 8080", pinholeSet(t, lab), host.Addr6)
	}
	// The periodic checks renew it by its UniqueID (UpdatePinhole): no
	// failure, and it stays.
	time.Sleep(3 * time.Second)
	if cur, ok := m.Current(); !ok || cur.PinholeID != ev.Result.PinholeID {
		t.Fatalf("after the checks: %+v, %v; want pinhole %d", cur, ok, ev.Result.PinholeID)
	}
	if err := m.Close(t.Context()); err != nil {
		t.Fatalf("Close = %v", err)
	}
	eventually(t, "the pinhole gone", func() bool { return !has("8080")() })

	// A filter of one peer is RemoteHost and RemotePort; two are refused.
	peer := netip.PrefixFrom(lab.WAN.Addr6, 128)
	in(t, host, func() error {
		r := Request{Protocol: UDP, InternalPort: 4672, InternalAddr: host.Addr6, Lifetime: time.Minute,
			Filters: []Filter{{Remote: peer, Port: 4000}, {Remote: netip.MustParsePrefix("2001:db8:200::99/128")}}}
		if _, err := c.Map(t.Context(), r); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Map with two filters = %v; want ErrUnsupported", err)
		}
		r.Filters = r.Filters[:1]
		res, err := c.Map(t.Context(), r)
		if err != nil {
			return err
		}
		r.PinholeID = res.PinholeID
		return c.Unmap(t.Context(), r)
	})

	// Auto prefers PCP, to the IPv6 default router.
	auto, _ := labClient(t, lab, host, Config{CheckInterval: time.Hour})
	in(t, host, func() error {
		res, err := auto.Map(t.Context(), Request{Protocol: TCP, InternalPort: 8081, InternalAddr: host.Addr6, Lifetime: time.Minute})
		if err != nil {
			return err
		}
		if res.Method != PCP || !res.Pinhole {
			t.Errorf("Map with Auto = %+v; want a PCP pinhole", res)
		}
		return nil
	})
	eventually(t, "the PCP pinhole in the kernel", has("8081"))
}
