package igdclient

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/portlease/portlease/upnp"
)

// urlBaseDesc is a minimal IGD:1 description with one WANIPConnection:1 at
// /ctl/IPConn, resolved against URLBase %s.
const urlBaseDesc = `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<URLBase>%s</URLBase>
<device>
<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<friendlyName>Trust test</friendlyName>
<UDN>uuid:trust-test</UDN>
<deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>
<UDN>uuid:trust-test-wan</UDN>
<deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
<UDN>uuid:trust-test-wanconn</UDN>
<serviceList><service>
<serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
<controlURL>/ctl/IPConn</controlURL>
<eventSubURL>/evt/IPConn</eventSubURL>
<SCPDURL>/WANIPCn.xml</SCPDURL>
</service></serviceList>
</device></deviceList>
</device></deviceList>
</device>
</root>`

// logBuffer collects a client's log records as text.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// warnings returns the records logged at level WARN.
func (b *logBuffer) warnings() []string {
	var out []string
	for l := range strings.Lines(b.String()) {
		if strings.Contains(l, "level=WARN") {
			out = append(out, l)
		}
	}
	return out
}

// listenPair listens on the same TCP port of 127.0.0.1 (the gateway) and
// 127.0.0.2 (another host); both are closed at the end of the test.
func listenPair(t *testing.T) (gw, other net.Listener) {
	t.Helper()
	for range 20 {
		ln2, err := net.Listen("tcp4", "127.0.0.2:0")
		if err != nil {
			t.Fatal(err)
		}
		port := strconv.Itoa(ln2.Addr().(*net.TCPAddr).Port)
		ln1, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", port))
		if err != nil {
			ln2.Close() // the port is taken on 127.0.0.1: another one
			continue
		}
		t.Cleanup(func() { ln1.Close(); ln2.Close() })
		return ln1, ln2
	}
	t.Fatal("no port free on both 127.0.0.1 and 127.0.0.2")
	return nil, nil
}

// otherHostRouter starts, on 127.0.0.2 (the other host), an IGD answering
// SOAP at /ctl/IPConn with external address 198.18.0.2, and on 127.0.0.1
// (the gateway) a listener on the same port that closes every connection:
// the control URL rebased onto the gateway does not answer.
func otherHostRouter(t *testing.T) (other *fakeRouter, port int) {
	t.Helper()
	ln1, ln2 := listenPair(t)
	go func() {
		for {
			c, err := ln1.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	other = newFakeRouterOn(t, ln2, nil, map[string]*fakeService{"/ctl/IPConn": {status: "Connected", extIP: "198.18.0.2"}})
	return other, ln2.Addr().(*net.TCPAddr).Port
}

// The description is on 127.0.0.1; its URLBase puts the control URL on
// 127.0.0.2. Without the option the other host is never contacted, the
// rebase onto 127.0.0.1 does not answer, and the error names both hosts.
func TestControlURLOtherHostRefused(t *testing.T) {
	other, port := otherHostRouter(t)
	gw := newFakeRouter(t, map[string]string{"/desc.xml": fmt.Sprintf(urlBaseDesc, "http://127.0.0.2:"+strconv.Itoa(port)+"/")}, nil)
	var logs logBuffer
	c := New(Config{Logger: logs.logger()})
	g, err := c.Dial(t.Context(), gw.url("/desc.xml"), netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.ExternalIPAddress(t.Context())
	if !errors.Is(err, ErrForeignHost) {
		t.Fatalf("ExternalIPAddress = %v; want ErrForeignHost", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "host 127.0.0.2") || !strings.Contains(msg, "gateway 127.0.0.1") {
		t.Errorf("error %q does not name both hosts (127.0.0.2 and the gateway 127.0.0.1)", msg)
	}
	if n := len(other.callsOf("GetExternalIPAddress")) + len(other.callsOf("GetStatusInfo")); n != 0 {
		t.Errorf("the other host got %d calls; want none", n)
	}
	if w := logs.warnings(); len(w) != 0 {
		t.Errorf("warnings %q; want none (nothing allowed)", w)
	}
}

// The same description with AllowForeignControlURL: the control URL on
// 127.0.0.2 is used, and a warning says so.
func TestControlURLOtherHostAllowed(t *testing.T) {
	other, port := otherHostRouter(t)
	gw := newFakeRouter(t, map[string]string{"/desc.xml": fmt.Sprintf(urlBaseDesc, "http://127.0.0.2:"+strconv.Itoa(port)+"/")}, nil)
	var logs logBuffer
	c := New(Config{Logger: logs.logger(), AllowForeignControlURL: true})
	g, err := c.Dial(t.Context(), gw.url("/desc.xml"), netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := g.ExternalIPAddress(t.Context())
	if err != nil || a != netip.MustParseAddr("198.18.0.2") {
		t.Fatalf("ExternalIPAddress = %v, %v; want 198.18.0.2 from the other host", a, err)
	}
	if len(other.callsOf("GetExternalIPAddress")) == 0 {
		t.Error("the other host got no GetExternalIPAddress")
	}
	w := logs.warnings()
	if len(w) == 0 || !strings.Contains(w[0], "127.0.0.2") || !strings.Contains(w[0], "gateway=127.0.0.1") {
		t.Errorf("warnings %q; want one naming the control URL on 127.0.0.2 and the gateway 127.0.0.1", w)
	}
}

// A description that redirects to another host is refused without the
// option (the other host never asked), and followed with it, with a warning.
func TestDescriptionRedirectOtherHost(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	other := newFakeRouterOn(t, ln, map[string]string{"/desc.xml": golden(t, "miniupnpd-2.3.1-igd2-rootDesc.xml")}, nil)
	gw := httptest.NewServer(http.RedirectHandler(other.url("/desc.xml"), http.StatusFound))
	t.Cleanup(gw.Close)

	var logs logBuffer
	_, err = New(Config{Logger: logs.logger()}).Dial(t.Context(), gw.URL+"/desc.xml", netip.Addr{})
	if !errors.Is(err, ErrForeignHost) || !strings.Contains(err.Error(), "host 127.0.0.2") || !strings.Contains(err.Error(), "gateway 127.0.0.1") {
		t.Errorf("Dial through a redirect to 127.0.0.2 = %v; want ErrForeignHost naming both hosts", err)
	}

	g, err := New(Config{Logger: logs.logger(), AllowForeignControlURL: true}).Dial(t.Context(), gw.URL+"/desc.xml", netip.Addr{})
	if err != nil {
		t.Fatalf("Dial allowed: %v", err)
	}
	if g.FriendlyName == "" {
		t.Errorf("Dial allowed = %v; want the described IGD", g)
	}
	if w := logs.warnings(); len(w) == 0 || !strings.Contains(w[0], "redirect") {
		t.Errorf("warnings %q; want one about the redirect", w)
	}
}

// Two devices answer the search: one from 127.0.0.1, on the link
// (Target.OnLink 127.0.0.1/32), one from 127.0.0.2, off it. Only the first
// is taken: the second's description is never fetched.
func TestSearchAnswerOffLinkIgnored(t *testing.T) {
	answer, _ := miniupnpdAnswers(t)
	on := routerFor(t, 2)
	ln, err := net.Listen("tcp4", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	offRequests := 0
	var mu sync.Mutex
	off := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		offRequests++
		mu.Unlock()
		http.NotFound(w, r)
	}))
	off.Listener.Close()
	off.Listener = ln
	off.Start()
	t.Cleanup(off.Close)

	ssdpOn := newFakeSSDP(t, func(req upnp.SearchRequest) [][]byte {
		return [][]byte{answer(on.url("/rootDesc.xml"), req.ST)}
	})
	ssdpOff := newFakeSSDPFrom(t, "127.0.0.2", func(req upnp.SearchRequest) [][]byte {
		return [][]byte{answer(off.URL+"/rootDesc.xml", req.ST)}
	})
	var logs logBuffer
	c := New(Config{Logger: logs.logger()})
	target := Target{
		Unicast: []netip.AddrPort{ssdpOn.addr(), ssdpOff.addr()},
		OnLink:  []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	}
	igds, err := c.Discover(t.Context(), target, discoverWait)
	if err != nil {
		t.Fatal(err)
	}
	if len(igds) != 1 || igds[0].Location.Hostname() != "127.0.0.1" {
		t.Errorf("Discover = %v; want the one IGD on 127.0.0.1", igds)
	}
	if len(ssdpOff.sts()) == 0 {
		t.Fatal("the off-link device was not asked: the test proves nothing")
	}
	mu.Lock()
	defer mu.Unlock()
	if offRequests != 0 {
		t.Errorf("the off-link device got %d HTTP requests; want none", offRequests)
	}
	if !strings.Contains(logs.String(), "off the link ignored") {
		t.Error("no debug record of the ignored answer")
	}
}

// The gateway answers the search from 127.0.0.1 with a location on
// 127.0.0.2, where another device serves a description on the same port.
// Without the option the description is fetched from 127.0.0.1 and the other
// device never asked; with it, the other device's is used, with a warning.
func TestSearchLocationOtherHost(t *testing.T) {
	answer, _ := miniupnpdAnswers(t)
	ln1, ln2 := listenPair(t)
	services := map[string]*fakeService{"/ctl/IPConn": {status: "Connected", extIP: "203.0.113.1"}}
	desc := map[string]string{"/rootDesc.xml": golden(t, "miniupnpd-2.3.1-igd2-rootDesc.xml")}
	gw := newFakeRouterOn(t, ln1, desc, services)
	other := newFakeRouterOn(t, ln2, desc, services)
	ssdp := newFakeSSDP(t, func(req upnp.SearchRequest) [][]byte {
		return [][]byte{answer(other.url("/rootDesc.xml"), req.ST)}
	})
	target := Target{Unicast: []netip.AddrPort{ssdp.addr()}}
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("allowed=%v", allow), func(t *testing.T) {
			otherGets := other.getCount()
			var logs logBuffer
			c := New(Config{Logger: logs.logger(), AllowForeignControlURL: allow})
			igds, err := c.Discover(t.Context(), target, discoverWait)
			if err != nil {
				t.Fatal(err)
			}
			want, wantWarn := "127.0.0.1", false
			if allow {
				want, wantWarn = "127.0.0.2", true
			}
			if len(igds) != 1 || igds[0].Location.Hostname() != want {
				t.Fatalf("Discover = %v; want one IGD described on %s", igds, want)
			}
			if _, err := igds[0].ExternalIPAddress(t.Context()); err != nil {
				t.Errorf("ExternalIPAddress: %v", err)
			}
			if asked := other.getCount() > otherGets; asked != allow {
				t.Errorf("the other device was asked for its description: %v; want %v", asked, allow)
			}
			if w := logs.warnings(); (len(w) != 0) != wantWarn {
				t.Errorf("warnings %q; want some: %v", w, wantWarn)
			}
		})
	}
	if n := len(gw.callsOf("GetExternalIPAddress")); n == 0 {
		t.Error("the gateway got no call")
	}
}

func TestAcceptedSource(t *testing.T) {
	lan := []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:1::/64")}
	asked := []netip.AddrPort{netip.MustParseAddrPort("203.0.113.9:1900")}
	tests := []struct {
		src  string
		want bool
	}{
		{"198.51.100.1", true},
		{"::ffff:198.51.100.1", true},
		{"198.51.101.1", false},
		{"169.254.169.254", false},
		{"203.0.113.9", true}, // asked by name
		{"2001:db8:1::1", true},
		{"2001:db8:2::1", false},
		{"fe80::1%eth0", true},
	}
	for _, tt := range tests {
		if got := acceptedSource(netip.MustParseAddr(tt.src), lan, asked); got != tt.want {
			t.Errorf("acceptedSource(%s) = %v; want %v", tt.src, got, tt.want)
		}
	}
}

func TestSameHost(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"192.168.1.1", "192.168.1.1", true},
		{"::ffff:192.168.1.1", "192.168.1.1", true},
		{"fe80::1%eth0", "fe80::1", true},
		{"Router.lan", "router.LAN", true},
		{"192.168.1.1", "192.168.1.2", false},
		{"router.lan", "192.168.1.1", false},
	}
	for _, tt := range tests {
		if got := sameHost(tt.a, tt.b); got != tt.want {
			t.Errorf("sameHost(%q, %q) = %v; want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
