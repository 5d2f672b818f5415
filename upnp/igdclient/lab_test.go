//go:build linux

package igdclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
	"github.com/portlease/portlease/upnp"
)

// The lab tests run the client on a LAN host of a netlab lab against
// miniupnpd 2.3.1 on the lab's gateway (internal/labpeers). Every socket is
// opened inside a lab namespace: Discover and WatchNotify through Host.Do,
// HTTP through Config.Dial.

// labWait is the M-SEARCH wait of the lab tests.
const labWait = 2 * time.Second

// labClient returns a Client whose HTTP dials from host.
func labClient(t *testing.T, host *netlab.Host) *Client {
	return New(Config{
		Logger: testLogger(t),
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return host.Dial(ctx, network, addr)
		},
	})
}

// labDiscover runs Discover inside host's namespace.
func labDiscover(t *testing.T, c *Client, host *netlab.Host, tg Target) ([]*IGD, error) {
	t.Helper()
	var igds []*IGD
	err := host.Do(func() error {
		var err error
		igds, err = c.Discover(t.Context(), tg, labWait)
		return err
	})
	return igds, err
}

func TestLabDiscover(t *testing.T) {
	for _, v1 := range []bool{false, true} {
		t.Run(fmt.Sprintf("force_igd_desc_v1=%v", v1), func(t *testing.T) {
			lab := netlab.New(t, netlab.Config{})
			cfg := labpeers.MiniUPnPdConfig{}
			wantVersion := 2
			if v1 {
				cfg.ExtraLines = []string{"force_igd_desc_v1=yes"}
				wantVersion = 1
			}
			mu := labpeers.StartMiniUPnPd(t, lab, cfg)
			lan := lab.LAN[0]
			gw := netip.AddrPortFrom(lab.GatewayLANAddr4, upnp.SSDPPort)
			tests := []struct {
				name   string
				target Target
			}{
				{"multicast on eth0 and unicast", Target{Interface: lan.Link, Local: lan.Addr4, Multicast: true, Unicast: []netip.AddrPort{gw}}},
				{"multicast only", Target{Interface: lan.Link, Multicast: true}},
				{"unicast only", Target{Unicast: []netip.AddrPort{gw}}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					c := labClient(t, lan)
					igds, err := labDiscover(t, c, lan, tt.target)
					if err != nil {
						t.Fatalf("Discover: %v\nminiupnpd log:\n%s", err, mu.Log())
					}
					if len(igds) != 1 {
						t.Fatalf("Discover = %v; want miniupnpd's one service", igds)
					}
					g := igds[0]
					if g.Location.String() != mu.DescriptionURL() || g.Version() != wantVersion || g.Local != lan.Addr4 {
						t.Errorf("Discover = %v at %v from %v; want WANIPConnection:%d at %s from %v",
							g, g.Location, g.Local, wantVersion, mu.DescriptionURL(), lan.Addr4)
					}
					if g.Status != "Connected" || g.ExternalAddr != lab.GatewayWANAddr4 || g.BootID < 0 {
						t.Errorf("status %q, external %v, boot id %d; want Connected, %v, known",
							g.Status, g.ExternalAddr, g.BootID, lab.GatewayWANAddr4)
					}
				})
			}
		})
	}
}

func TestLabMappings(t *testing.T) {
	for _, v1 := range []bool{false, true} {
		t.Run(fmt.Sprintf("force_igd_desc_v1=%v", v1), func(t *testing.T) {
			lab := netlab.New(t, netlab.Config{LANHosts: 2})
			cfg := labpeers.MiniUPnPdConfig{}
			if v1 {
				cfg.ExtraLines = []string{"force_igd_desc_v1=yes"}
			}
			mu := labpeers.StartMiniUPnPd(t, lab, cfg)
			lan := lab.LAN[0]
			c := labClient(t, lan)
			g, err := c.Dial(t.Context(), mu.DescriptionURL(), netip.Addr{})
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			if a, err := g.ExternalIPAddress(ctx); err != nil || a != netip.MustParseAddr("203.0.113.1") {
				t.Errorf("ExternalIPAddress() = %v, %v; want 203.0.113.1", a, err)
			}
			if up, err := g.Connected(ctx); err != nil || !up {
				t.Errorf("Connected() = %v, %v; want true", up, err)
			}

			// A fixed port, read back.
			gr, err := g.AddPortMapping(ctx, upnp.PortMapping{ExternalPort: 8080, Protocol: "TCP", InternalPort: 8080,
				Description: "igdclient lab", LeaseDuration: 3600})
			if err != nil {
				t.Fatalf("AddPortMapping: %v\n%s", err, mu.Log())
			}
			m := gr.Mapping
			if !gr.ReadBack || m.ExternalPort != 8080 || m.InternalClient != "198.51.100.10" || m.LeaseDuration == 0 || m.LeaseDuration > 3600 || gr.Permanent {
				t.Errorf("AddPortMapping granted %+v", gr)
			}
			if out := mu.Mappings(t); !strings.Contains(out, "8080->198.51.100.10:8080") {
				t.Errorf("upnpc -l does not list the mapping:\n%s", out)
			}

			// A port chosen by the router (AddAnyPortMapping on IGD:2; the
			// internal port first on IGD:1).
			wild, err := g.AddPortMapping(ctx, upnp.PortMapping{Protocol: "UDP", InternalPort: 5000, LeaseDuration: 600})
			if err != nil || wild.Mapping.ExternalPort == 0 {
				t.Fatalf("AddPortMapping(wildcard) = %+v, %v", wild, err)
			}

			// Another LAN host's mapping is a conflict naming it.
			labpeers.UPnPC(t, lab.LAN[1], "-u", mu.DescriptionURL(), "-a", "198.51.100.11", "9090", "9090", "TCP", "3600")
			_, err = g.AddPortMapping(ctx, upnp.PortMapping{ExternalPort: 9090, Protocol: "TCP", InternalPort: 9090, LeaseDuration: 3600})
			var ce *ConflictError
			if !errors.As(err, &ce) || !ce.HolderKnown || ce.Holder.InternalClient != "198.51.100.11" {
				t.Errorf("AddPortMapping(9090) = %v; want a conflict with 198.51.100.11", err)
			}

			list, err := g.PortMappings(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, e := range list {
				keys = append(keys, fmt.Sprintf("%s/%d->%s:%d", e.Protocol, e.ExternalPort, e.InternalClient, e.InternalPort))
			}
			for _, want := range []string{
				"TCP/8080->198.51.100.10:8080",
				fmt.Sprintf("UDP/%d->198.51.100.10:5000", wild.Mapping.ExternalPort),
				"TCP/9090->198.51.100.11:9090",
			} {
				if !strings.Contains(strings.Join(keys, " "), want) {
					t.Errorf("PortMappings = %q; want %s among them", keys, want)
				}
			}

			got, err := g.GetSpecificPortMappingEntry(ctx, "TCP", 8080)
			if err != nil || got.InternalClient != "198.51.100.10" || got.InternalPort != 8080 || got.Description != "igdclient lab" {
				t.Errorf("GetSpecificPortMappingEntry(TCP, 8080) = %+v, %v", got, err)
			}
			for _, d := range []struct {
				proto string
				port  uint16
			}{{"TCP", 8080}, {"UDP", wild.Mapping.ExternalPort}} {
				if err := g.DeletePortMapping(ctx, d.proto, d.port); err != nil {
					t.Errorf("DeletePortMapping(%s, %d) = %v", d.proto, d.port, err)
				}
				if _, err := g.GetSpecificPortMappingEntry(ctx, d.proto, d.port); !errors.Is(err, ErrNotFound) {
					t.Errorf("GetSpecificPortMappingEntry(%s, %d) after delete = %v; want ErrNotFound", d.proto, d.port, err)
				}
			}
			// miniupnpd 2.3.1 answers success to deleting a missing mapping;
			// other routers answer 714, which is ErrNotFound.
			if err := g.DeletePortMapping(ctx, "TCP", 8080); err != nil && !errors.Is(err, ErrNotFound) {
				t.Errorf("second DeletePortMapping(TCP, 8080) = %v", err)
			}
		})
	}
}

func TestLabWatchNotify(t *testing.T) {
	lab := netlab.New(t, netlab.Config{})
	mu := labpeers.StartMiniUPnPd(t, lab, labpeers.MiniUPnPdConfig{})
	lan := lab.LAN[0]
	c := labClient(t, lan)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type note struct {
		from netip.AddrPort
		n    upnp.Notify
	}
	notes := make(chan note, 1024)
	done := make(chan error, 1)
	go func() {
		done <- lan.Do(func() error {
			return c.WatchNotify(ctx, Target{Interface: lan.Link}, func(from netip.AddrPort, n upnp.Notify) {
				select {
				case notes <- note{from, n}:
				default:
				}
			})
		})
	}()

	// Restart miniupnpd once WatchNotify has joined the group on eth0.
	for {
		out, err := lan.Run(ctx, "ip", "maddr", "show", "dev", lan.Link)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "239.255.255.250") {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("WatchNotify returned %v before joining", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	mu.Restart(t)

	// A generous deadline: miniupnpd announces at once when it starts.
	deadline := time.After(60 * time.Second)
	var alive, byebye bool
	for !alive {
		select {
		case nt := <-notes:
			if nt.from.Addr() != lab.GatewayLANAddr4 || !igdType(nt.n.NT) {
				t.Errorf("NOTIFY %+v from %v", nt.n, nt.from)
			}
			switch nt.n.NTS {
			case upnp.NTSAlive:
				alive = true
				if nt.n.Location != mu.DescriptionURL() {
					t.Errorf("ssdp:alive location %q; want %s", nt.n.Location, mu.DescriptionURL())
				}
			case upnp.NTSByeBye:
				byebye = true
			}
		case err := <-done:
			t.Fatalf("WatchNotify returned %v", err)
		case <-deadline:
			t.Fatalf("no ssdp:alive from miniupnpd after its restart\n%s", mu.Log())
		}
	}
	t.Logf("saw ssdp:byebye before ssdp:alive: %v", byebye)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("WatchNotify = %v after cancel; want nil", err)
	}
}
