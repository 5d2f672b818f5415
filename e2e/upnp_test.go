package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
	"github.com/portlease/portlease/upnp"
	"github.com/portlease/portlease/upnp/igdclient"
)

const descURL = "http://198.51.100.1:5000/rootDesc.xml"

// httpOn returns an HTTP client whose connections are made inside host's
// namespace.
func httpOn(host *netlab.Host) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return host.Dial(ctx, network, addr)
			},
		},
	}
}

// TestUPnPWithUPnPC: upnpc discovers portleased by SSDP and adds, lists and
// deletes TCP and UDP mappings; a WAN host reaches a LAN server through one.
func TestUPnPWithUPnPC(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan := lab.LAN[0]
	out := labpeers.UPnPC(t, lan, "-a", "198.51.100.10", "8080", "8080", "TCP", "3600")
	if !strings.Contains(out, "is redirected to internal 198.51.100.10:8080") {
		t.Fatalf("upnpc -a (SSDP discovery) printed:\n%s", out)
	}
	labpeers.UPnPC(t, lan, "-a", "198.51.100.10", "5353", "25353", "UDP", "600")
	table := labpeers.UPnPC(t, lan, "-l")
	if !listed(table, "TCP", 8080, "198.51.100.10:8080") || !listed(table, "UDP", 25353, "198.51.100.10:5353") {
		t.Fatalf("upnpc -l lacks the mappings:\n%s", table)
	}
	if !strings.Contains(table, "ExternalIPAddress = 203.0.113.1") {
		t.Errorf("upnpc -l does not show the external address:\n%s", table)
	}
	serveTCP(t, lan, 8080, "through portleased's UPnP")
	if got, err := fetchTCP(lab.WAN, "203.0.113.1:8080"); err != nil || got != "through portleased's UPnP" {
		t.Fatalf("the WAN host through 203.0.113.1:8080 got %q, %v", got, err)
	}
	labpeers.UPnPC(t, lan, "-d", "8080", "TCP")
	labpeers.UPnPC(t, lan, "-d", "25353", "UDP")
	if table := labpeers.UPnPC(t, lan, "-l"); listed(table, "TCP", 8080, "198.51.100.10:8080") || listed(table, "UDP", 25353, "198.51.100.10:5353") {
		t.Fatalf("after upnpc -d the mappings are still listed:\n%s", table)
	}
	if got, err := fetchTCP(lab.WAN, "203.0.113.1:8080"); err == nil {
		t.Fatalf("after deletion the WAN host still got %q", got)
	}
}

// TestUPnPThousandMappings: with 1,000 mappings upnpc -l lists all of them
// (its walk is not counted against the request rate; making them at once
// would be, so the test makes them without one).
func TestUPnPThousandMappings(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true, ExtraLines: []string{"request rate per host none"}})
	lan := lab.LAN[0]
	var igd *igdclient.IGD
	c := igdclient.New(igdclient.Config{HTTPClient: httpOn(lan)})
	err := lan.Do(func() error {
		var err error
		igd, err = c.Dial(context.Background(), descURL, lan.Addr4)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	for i := range n {
		proto := "TCP"
		if i%2 == 1 {
			proto = "UDP"
		}
		port := uint16(30000 + i/2)
		_, err := igd.AddPortMapping(context.Background(), upnp.PortMapping{ExternalPort: port, Protocol: proto,
			InternalPort: port, InternalClient: "198.51.100.10", Enabled: true, Description: fmt.Sprintf("m%d", i), LeaseDuration: 3600})
		if err != nil {
			t.Fatalf("mapping %d: %v", i, err)
		}
	}
	table := labpeers.UPnPC(t, lan, "-u", descURL, "-l")
	for i := range n {
		proto := "TCP"
		if i%2 == 1 {
			proto = "UDP"
		}
		port := 30000 + i/2
		if !listed(table, proto, port, fmt.Sprintf("198.51.100.10:%d", port)) {
			t.Fatalf("upnpc -l lacks mapping %d (%s %d) of %d", i, proto, port, n)
		}
	}
	if got := len(regexp.MustCompile(`(?m)^\s*\d+\s+(TCP|UDP)\s+\d+->`).FindAllString(table, -1)); got != n {
		t.Fatalf("upnpc -l listed %d mappings; want %d", got, n)
	}
}

// TestUPnPWithPortlease: portlease keep, map and list over UPnP against
// portleased.
func TestUPnPWithPortlease(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan := lab.LAN[0]
	file := writeFile(t, "ports.csv", upnpDaemonExample)
	out, code := portlease(t, lan, "keep", "--foreground", "--oneshot", "-f", file, "--protocol", "upnp")
	if code != 0 {
		t.Fatalf("keep --oneshot --protocol upnp: exit %d:\n%s", code, out)
	}
	out, code = portlease(t, lan, "map", "tcp", "8095", "--protocol", "upnp", "--lifetime", "600")
	if code != 0 || !strings.Contains(out, "203.0.113.1:8095") || !strings.Contains(out, "via upnp") {
		t.Fatalf("map --protocol upnp: exit %d:\n%s", code, out)
	}
	out, code = portlease(t, lan, "list", "--protocol", "upnp")
	for _, re := range []string{`UDP\s+12345\s+198\.51\.100\.10:12345`, `TCP\s+12346\s+198\.51\.100\.10:12346`, `TCP\s+8095\s+198\.51\.100\.10:8095`} {
		if code != 0 || !regexp.MustCompile(re).MatchString(out) {
			t.Fatalf("list --protocol upnp: exit %d, lacks %s:\n%s", code, re, out)
		}
	}
	if k := inboundElements(t, lab); !inKernel(k, "TCP", 8095, "198.51.100.10:8095") {
		t.Fatalf("the UPnP mapping is not in the kernel:\n%s", k)
	}
}

// eventURL returns the WANIPConnection service's eventing URL.
func eventURL(t *testing.T, lan *netlab.Host) *url.URL {
	t.Helper()
	resp, err := httpOn(lan).Get(descURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	d, err := upnp.ParseDescription(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	loc, _ := url.Parse(descURL)
	svcs := d.ConnectionServices(loc)
	if len(svcs) == 0 || svcs[0].EventSubURL == nil {
		t.Fatalf("no WAN connection service with an event URL in the description")
	}
	return svcs[0].EventSubURL
}

// errNoAnswer is rawHTTP's error when the connection gave nothing back.
var errNoAnswer = errors.New("no answer")

// rawHTTP sends a raw request from host and returns the status line and
// the rest, or an error.
func rawHTTP(host *netlab.Host, addr, req string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := host.Dial(ctx, "tcp4", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		return "", err
	}
	b, err := io.ReadAll(bufio.NewReader(c))
	if len(b) == 0 {
		return "", fmt.Errorf("%w: %v", errNoAnswer, err)
	}
	return string(b), nil
}

// TestUPnPHostileInput: a SUBSCRIBE whose callback names another host is
// refused (CallStranger); an oversize or malformed SOAP request gets a
// fault or an HTTP error and the server keeps serving; SSDP and HTTP stay
// silent to the WAN host.
func TestUPnPHostileInput(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan := lab.LAN[0]
	ev := eventURL(t, lan)
	subscribe := func(callback string) string {
		out, err := rawHTTP(lan, ev.Host, fmt.Sprintf("SUBSCRIBE %s HTTP/1.1\r\nHOST: %s\r\nCALLBACK: <%s>\r\nNT: upnp:event\r\nTIMEOUT: Second-300\r\nConnection: close\r\n\r\n", ev.RequestURI(), ev.Host, callback))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if out := subscribe("http://198.51.100.11:4000/evil"); !strings.HasPrefix(out, "HTTP/1.1 412") {
		t.Fatalf("SUBSCRIBE with another host's callback answered:\n%s", out)
	}
	if out := subscribe("http://192.0.2.1:80/evil"); !strings.HasPrefix(out, "HTTP/1.1 412") {
		t.Fatalf("SUBSCRIBE with a callback outside the LAN answered:\n%s", out)
	}
	// The subscriber's own address is accepted, and the initial event
	// arrives there.
	events, err := lan.Listen("tcp4", "198.51.100.10:4001")
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	got := make(chan string, 1)
	go func() {
		c, err := events.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		body, _ := io.ReadAll(req.Body)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		got <- req.Method + " " + req.Header.Get("NT") + " " + string(body)
	}()
	if out := subscribe("http://198.51.100.10:4001/events"); !strings.HasPrefix(out, "HTTP/1.1 200") || !strings.Contains(strings.ToUpper(out), "SID: UUID:") {
		t.Fatalf("SUBSCRIBE with the subscriber's own callback answered:\n%s", out)
	}
	select {
	case msg := <-got:
		if !strings.HasPrefix(msg, "NOTIFY upnp:event") || !strings.Contains(msg, "PortMappingNumberOfEntries") {
			t.Fatalf("the initial event was %q", msg)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no initial event at the subscriber's callback")
	}

	// Malformed and oversize SOAP.
	loc, _ := url.Parse(descURL)
	resp, err := httpOn(lan).Get(descURL)
	if err != nil {
		t.Fatal(err)
	}
	d, err := upnp.ParseDescription(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	ctl := d.ConnectionServices(loc)[0]
	post := func(body []byte, action string) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodPost, ctl.ControlURL.String(), bytes.NewReader(body))
		req.Header.Set("Content-Type", `text/xml; charset="utf-8"`)
		req.Header.Set("SOAPAction", fmt.Sprintf(`"%s#%s"`, ctl.ServiceType, action))
		return httpOn(lan).Do(req)
	}
	r, err := post([]byte("<s:Envelope><s:Body><u:AddPortMapping"), "AddPortMapping")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), "UPnPError") {
		t.Fatalf("malformed XML: status %d body %s; want 500 with a UPnPError", r.StatusCode, body)
	}
	big := bytes.Repeat([]byte("<a>"), 1<<20)
	if r, err := post(big, "AddPortMapping"); err == nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		if r.StatusCode < 400 {
			t.Fatalf("a 3 MiB request got status %d", r.StatusCode)
		}
	}
	if out := labpeers.UPnPC(t, lan, "-u", descURL, "-l"); !strings.Contains(out, "ExternalIPAddress = 203.0.113.1") {
		t.Fatalf("after hostile requests upnpc -l printed:\n%s", out)
	}

	// The WAN side: the neighbour routes the LAN prefix to the gateway
	// and tries SSDP and HTTP on both of its addresses.
	if _, err := lab.WAN.Run(context.Background(), "ip", "route", "replace", "198.51.100.0/24", "via", lab.GatewayWANAddr4.String()); err != nil {
		t.Fatal(err)
	}
	search, _ := upnp.SearchRequest{Host: "239.255.255.250:1900", ST: upnp.SearchAll, MX: 1}.AppendBinary(nil)
	for _, target := range []netip.Addr{lab.GatewayLANAddr4, lab.GatewayWANAddr4} {
		pc, err := lab.WAN.ListenPacket("udp4", ":0")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = pc.WriteTo(search, net.UDPAddrFromAddrPort(netip.AddrPortFrom(target, upnp.SSDPPort)))
		_ = pc.SetReadDeadline(time.Now().Add(3 * time.Second))
		if n, _, err := pc.ReadFrom(make([]byte, 2048)); err == nil {
			t.Fatalf("an M-SEARCH from the WAN host to %v was answered (%d bytes)", target, n)
		}
		pc.Close()
		if out, err := rawHTTP(lab.WAN, netip.AddrPortFrom(target, 5000).String(), "GET /rootDesc.xml HTTP/1.1\r\nHOST: x\r\nConnection: close\r\n\r\n"); err == nil {
			t.Fatalf("an HTTP request from the WAN host to %v was answered:\n%.200s", target, out)
		}
	}
}

// TestUPnPAndNATPMPShareTheTable: a port mapped over UPnP cannot be taken
// over NAT-PMP by another host, or the other way round.
func TestUPnPAndNATPMPShareTheTable(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	labpeers.UPnPC(t, lab.LAN[0], "-u", descURL, "-a", "198.51.100.10", "9000", "9000", "TCP", "3600")
	if got := natpmpcMap(t, lab, lab.LAN[1], 9000, 9000, "tcp", 3600); got == 9000 {
		t.Fatal("NAT-PMP gave another host external port 9000, held over UPnP")
	}
	eport := natpmpcMap(t, lab, lab.LAN[1], 9100, 9100, "udp", 3600)
	out, err := labpeers.RunUPnPC(context.Background(), lab.LAN[0], "-i", "-u", descURL, "-a", "198.51.100.10", fmt.Sprint(eport), "9100", "UDP", "3600")
	if err == nil || !strings.Contains(out, "718") {
		t.Fatalf("UPnP took external port %d held over NAT-PMP by another host: %v\n%s", eport, err, out)
	}

	// One LAN endpoint, mapped over NAT-PMP and over UPnP on another
	// external port: both mappings stay and both lead to it.
	serveTCP(t, lab.LAN[0], 9200, "one endpoint, two mappings")
	pmpPort := natpmpcMap(t, lab, lab.LAN[0], 9200, 9200, "tcp", 3600)
	labpeers.UPnPC(t, lab.LAN[0], "-u", descURL, "-a", "198.51.100.10", "9200", "9300", "TCP", "3600")
	for _, p := range []int{pmpPort, 9300} {
		if got, err := fetchTCP(lab.WAN, fmt.Sprintf("203.0.113.1:%d", p)); err != nil || got != "one endpoint, two mappings" {
			t.Fatalf("the WAN host through 203.0.113.1:%d got %q, %v; want both mappings to lead to 198.51.100.10:9200", p, got, err)
		}
	}
}
