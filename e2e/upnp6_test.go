package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// descURL6 is the description URL portleased announces over IPv6 in the
// lab: the gateway's global IPv6 LAN address.
const descURL6 = "http://[2001:db8:100::1]:5000/rootDesc.xml"

// TestUPnPOverIPv6WithUPnPC: with the default configuration ("listen on
// lan0", which has an IPv6 address) upnpc -6 discovers portleased by SSDP
// over IPv6 (FF02::C) and lists, over an IPv6 control connection, a mapping
// made over IPv4; an IPv6 internal client is refused (AddPortMapping maps
// IPv4 only), and so, in secure mode, is an IPv4 one.
func TestUPnPOverIPv6WithUPnPC(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan := lab.LAN[0]
	out := labpeers.UPnPC(t, lan, "-a", "198.51.100.10", "8080", "8080", "TCP", "3600")
	if !strings.Contains(out, "is redirected to internal 198.51.100.10:8080") {
		t.Fatalf("upnpc -a over IPv4 printed:\n%s", out)
	}
	table := labpeers.UPnPC(t, lan, "-6", "-m", lan.Link, "-l")
	if !strings.Contains(table, "desc: "+descURL6) {
		t.Fatalf("upnpc -6 did not discover %s:\n%s", descURL6, table)
	}
	if !listed(table, "TCP", 8080, "198.51.100.10:8080") {
		t.Fatalf("upnpc -6 -l lacks the mapping made over IPv4:\n%s", table)
	}
	if !strings.Contains(table, "ExternalIPAddress = 203.0.113.1") {
		t.Errorf("upnpc -6 -l does not show the external address:\n%s", table)
	}
	out, err := labpeers.RunUPnPC(t.Context(), lan, "-6", "-m", lan.Link, "-a", "2001:db8:100::10", "8081", "8081", "TCP", "3600")
	if err == nil || !strings.Contains(out, "402") {
		t.Fatalf("upnpc -6 -a with an IPv6 internal client: err %v; want 402 Invalid Args:\n%s", err, out)
	}
	// Secure mode: over IPv6 the requester's own IPv4 address is not
	// known, so an IPv4 internal client is another host's (as miniupnpd,
	// which sees no IPv4 client address on an IPv6 connection).
	out, err = labpeers.RunUPnPC(t.Context(), lan, "-6", "-m", lan.Link, "-a", "198.51.100.10", "8082", "8082", "TCP", "3600")
	if err == nil || !strings.Contains(out, "606") {
		t.Fatalf("upnpc -6 -a 198.51.100.10 in secure mode: err %v; want 606 Action not authorized:\n%s", err, out)
	}
}

// TestUPnPOverIPv6HostGuard: the HTTP server on the gateway's IPv6 LAN
// address serves the description to a request whose Host is the bracketed
// address, and refuses one whose Host is a name (DNS rebinding); nothing
// listens on the gateway's IPv6 WAN address.
func TestUPnPOverIPv6HostGuard(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{})
	client := httpOn(lab.LAN[0])
	get := func(host string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, descURL6, nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s (Host %q): %v", descURL6, host, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(""); code != http.StatusOK {
		t.Errorf("GET %s with Host [2001:db8:100::1]:5000 = %d; want 200", descURL6, code)
	}
	if code := get("router.example:5000"); code != http.StatusForbidden {
		t.Errorf("GET %s with Host router.example:5000 = %d; want 403", descURL6, code)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if c, err := lab.WAN.Dial(ctx, "tcp6", "[2001:db8:203::1]:5000"); err == nil {
		c.Close()
		t.Error("the WAN host connected to the UPnP port on the gateway's IPv6 WAN address")
	}
}
