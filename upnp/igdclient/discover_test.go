package igdclient

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/upnp"
)

// discoverWait is the wait of the Discover tests: answers on 127.0.0.1
// arrive at once, this only bounds the test.
const discoverWait = 500 * time.Millisecond

// sagemcomSearchResponse is the answer of a Sagemcom F@ST 3890, as quoted
// in tailscale issue 3557 (an empty SERVER, a UUID in 01-NLS, a USER-AGENT
// in a response, no BOOTID), with LOCATION (%[1]s) and ST (%[2]s) filled in
// by the test.
const sagemcomSearchResponse = "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\n" +
	"DATE: Tue, 14 Dec 2021 07:51:29 GMT\r\nEXT:\r\nLOCATION: %[1]s\r\n" +
	"OPT: \"http://schemas.upnp.org/upnp/1/0/\"; ns=01\r\n01-NLS: cabd6488-1dd1-11b2-9e52-a7461e1f098e\r\n" +
	"SERVER: \r\nUser-Agent: redsonic\r\nST: %[2]s\r\n" +
	"USN: uuid:75802409-bccb-40e7-8e6c-fa095ecce13e::%[2]s\r\n\r\n"

// sagemcomAnswer formats sagemcomSearchResponse.
func sagemcomAnswer(location, st string) []byte {
	return fmt.Appendf(nil, sagemcomSearchResponse, location, st)
}

// miniupnpdAnswers returns a function making miniupnpd 2.3.1's answer to a
// search (captured in the lab, testdata/miniupnpd-2.3.1-igd2-search-
// response.txt) with another LOCATION and ST, and the capture as parsed.
func miniupnpdAnswers(t *testing.T) (func(location, st string) []byte, upnp.SearchResponse) {
	t.Helper()
	captured := readSSDPGolden(t, "miniupnpd-2.3.1-igd2-search-response.txt")[0]
	orig, err := upnp.ParseSearchResponse(captured)
	if err != nil {
		t.Fatal(err)
	}
	return func(location, st string) []byte {
		s := strings.ReplaceAll(string(captured), orig.Location, location)
		return []byte(strings.ReplaceAll(s, orig.ST, st))
	}, orig
}

func TestDiscoverQuirks(t *testing.T) {
	miniupnpd, captured := miniupnpdAnswers(t)
	tests := []struct {
		name string
		// answer returns the datagrams answering st, given the router.
		answer     func(r *fakeRouter, st string) [][]byte
		wantBootID int
		wantServer string
	}{
		{
			name: "miniupnpd answering from another port",
			answer: func(r *fakeRouter, st string) [][]byte {
				return [][]byte{miniupnpd(r.url("/rootDesc.xml"), st)}
			},
			wantBootID: captured.BootID, wantServer: captured.Server,
		},
		{
			name: "location naming a host that does not answer",
			answer: func(r *fakeRouter, st string) [][]byte {
				return [][]byte{miniupnpd(r.deadHostURL()+"/rootDesc.xml", st)}
			},
			wantBootID: captured.BootID, wantServer: captured.Server,
		},
		{
			name: "answering ssdp:all with its first type only",
			answer: func(r *fakeRouter, st string) [][]byte {
				if st != upnp.SearchAll {
					return nil
				}
				return [][]byte{sagemcomAnswer(r.url("/rootDesc.xml"), upnp.SearchRootDevice)}
			},
			wantBootID: -1,
		},
		{
			name: "answering its exact type only, several times",
			answer: func(r *fakeRouter, st string) [][]byte {
				if st != upnp.DeviceIGD2 {
					return nil
				}
				a := sagemcomAnswer(r.url("/rootDesc.xml"), st)
				return [][]byte{a, a, []byte("garbage\r\n\r\n")}
			},
			wantBootID: -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := routerFor(t, 2)
			ssdp := newFakeSSDP(t, func(req upnp.SearchRequest) [][]byte { return tt.answer(r, req.ST) })
			c := New(Config{Logger: testLogger(t)})
			igds, err := c.Discover(t.Context(), Target{Unicast: []netip.AddrPort{ssdp.addr()}}, discoverWait)
			if err != nil {
				t.Fatal(err)
			}
			if len(igds) != 1 {
				t.Fatalf("Discover = %v; want one IGD", igds)
			}
			g := igds[0]
			if g.Version() != 2 || g.Location.Host != "127.0.0.1:"+fmt.Sprint(r.port()) {
				t.Errorf("Discover = %v at %v; want WANIPConnection:2 at the router", g, g.Location)
			}
			if g.BootID != tt.wantBootID || g.Server != tt.wantServer {
				t.Errorf("BootID %d, Server %q; want %d, %q", g.BootID, g.Server, tt.wantBootID, tt.wantServer)
			}
			if g.Local != netip.MustParseAddr("127.0.0.1") {
				t.Errorf("Local = %v; want 127.0.0.1, learned from the connection", g.Local)
			}
			if _, err := g.ExternalIPAddress(t.Context()); err != nil {
				t.Errorf("ExternalIPAddress: %v", err)
			}
			sts := ssdp.sts()
			for _, st := range searchTypes() {
				if !slices.Contains(sts, st) {
					t.Errorf("no search for %s; searched %q", st, sts)
				}
			}
		})
	}
}

// router describes one fake router of a ranking test.
type rankRouter struct {
	desc     string                  // golden description
	services map[string]*fakeService // by control path
}

func TestDiscoverOrder(t *testing.T) {
	answer, _ := miniupnpdAnswers(t)
	miniupnpd := func(version int, status, ext string) rankRouter {
		return rankRouter{
			desc:     fmt.Sprintf("miniupnpd-2.3.1-igd%d-rootDesc.xml", version),
			services: map[string]*fakeService{"/ctl/IPConn": {status: status, extIP: ext}},
		}
	}
	fritz := func(ipStatus, ipExt, pppStatus, pppExt string) rankRouter {
		return rankRouter{desc: "fritzbox-igd1-wanppp-wanip.xml", services: map[string]*fakeService{
			"/igdupnp/control/WANIPConn1":  {status: ipStatus, extIP: ipExt},
			"/igdupnp/control/WANPPPConn1": {status: pppStatus, extIP: pppExt},
		}}
	}
	tests := []struct {
		name    string
		routers []rankRouter
		want    []string // "router index: control path", best first
	}{
		{
			name:    "IGD:2 before IGD:1",
			routers: []rankRouter{miniupnpd(1, "Connected", "198.18.0.7"), miniupnpd(2, "Connected", "198.18.0.8")},
			want:    []string{"1:/ctl/IPConn", "0:/ctl/IPConn"},
		},
		{
			name:    "public before double NAT",
			routers: []rankRouter{miniupnpd(2, "Connected", "10.0.0.2"), miniupnpd(1, "Connected", "198.18.0.8")},
			want:    []string{"1:/ctl/IPConn", "0:/ctl/IPConn"},
		},
		{
			name:    "public before CGNAT",
			routers: []rankRouter{miniupnpd(2, "Connected", "100.72.1.2"), miniupnpd(1, "Connected", "198.18.0.8")},
			want:    []string{"1:/ctl/IPConn", "0:/ctl/IPConn"},
		},
		{
			name:    "connected before disconnected",
			routers: []rankRouter{miniupnpd(2, "Disconnected", "198.18.0.7"), miniupnpd(1, "Connected", "")},
			want:    []string{"1:/ctl/IPConn", "0:/ctl/IPConn"},
		},
		{
			name:    "FRITZ!Box on DSL: WANPPPConnection connected, WANIPConnection not",
			routers: []rankRouter{fritz("Unconfigured", "", "Connected", "198.18.0.9")},
			want:    []string{"0:/igdupnp/control/WANPPPConn1", "0:/igdupnp/control/WANIPConn1"},
		},
		{
			name:    "WANIPConnection before WANPPPConnection when both are up",
			routers: []rankRouter{fritz("Connected", "198.18.0.9", "Connected", "198.18.0.9")},
			want:    []string{"0:/igdupnp/control/WANIPConn1", "0:/igdupnp/control/WANPPPConn1"},
		},
		{
			name:    "one device under two locations",
			routers: []rankRouter{miniupnpd(2, "Connected", "198.18.0.8"), miniupnpd(2, "Connected", "198.18.0.8")},
			want:    []string{"0:/ctl/IPConn"},
		},
		{
			name: "MikroTik with two WAN links, URLBase naming another host",
			routers: []rankRouter{{desc: "mikrotik-two-wan-urlbase.xml", services: map[string]*fakeService{
				"/upnp/control/wan1/wanipconn-1": {status: "Disconnected", extIP: ""},
				"/upnp/control/wan7/wanipconn-7": {status: "Connected", extIP: "100.72.3.4"},
			}}},
			want: []string{"0:/upnp/control/wan7/wanipconn-7", "0:/upnp/control/wan1/wanipconn-1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var rs []*fakeRouter
			for _, rr := range tt.routers {
				rs = append(rs, newFakeRouter(t, map[string]string{"/desc.xml": golden(t, rr.desc)}, rr.services))
			}
			ssdp := newFakeSSDP(t, func(req upnp.SearchRequest) [][]byte {
				if req.ST != upnp.SearchAll {
					return nil
				}
				var out [][]byte
				for _, r := range rs {
					out = append(out, answer(r.url("/desc.xml"), upnp.SearchRootDevice))
				}
				return out
			})
			c := New(Config{Logger: testLogger(t)})
			igds, err := c.Discover(t.Context(), Target{Unicast: []netip.AddrPort{ssdp.addr()}}, discoverWait)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, g := range igds {
				ctl, _ := g.controlURL()
				i := slices.IndexFunc(rs, func(r *fakeRouter) bool { return ctl.Host == strings.TrimPrefix(r.srv.URL, "http://") })
				got = append(got, fmt.Sprintf("%d:%s", i, ctl.Path))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Discover order %q; want %q", got, tt.want)
			}
		})
	}
}

func TestDiscoverNothing(t *testing.T) {
	answer, _ := miniupnpdAnswers(t)
	tests := []struct {
		name   string
		answer func(r *fakeRouter) [][]byte
	}{
		{"no answer", func(*fakeRouter) [][]byte { return nil }},
		{"a device without a connection service", func(r *fakeRouter) [][]byte {
			return [][]byte{answer(r.url("/tv.xml"), upnp.SearchRootDevice)}
		}},
		{"a location that does not answer", func(r *fakeRouter) [][]byte {
			return [][]byte{answer(r.url("/missing.xml"), upnp.SearchRootDevice)}
		}},
	}
	const tv = `<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device>` +
		`<deviceType>urn:schemas-upnp-org:device:MediaRenderer:1</deviceType><friendlyName>TV</friendlyName>` +
		`<UDN>uuid:1</UDN></device></root>`
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newFakeRouter(t, map[string]string{"/tv.xml": tv}, nil)
			ssdp := newFakeSSDP(t, func(upnp.SearchRequest) [][]byte { return tt.answer(r) })
			c := New(Config{Logger: testLogger(t)})
			igds, err := c.Discover(t.Context(), Target{Unicast: []netip.AddrPort{ssdp.addr()}}, discoverWait)
			if !errors.Is(err, ErrNoIGD) || igds != nil {
				t.Errorf("Discover = %v, %v; want ErrNoIGD", igds, err)
			}
		})
	}
}

func TestDiscoverTargets(t *testing.T) {
	tests := []struct {
		name   string
		target Target
	}{
		{"nowhere", Target{}},
		{"IPv6 local address", Target{Local: netip.MustParseAddr("::1"), Unicast: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")}}},
		{"IPv6 destination", Target{Unicast: []netip.AddrPort{netip.MustParseAddrPort("[::1]:1900")}}},
		{"port 0", Target{Unicast: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}}},
	}
	for _, tt := range tests {
		c := New(Config{})
		if igds, err := c.Discover(t.Context(), tt.target, discoverWait); err == nil {
			t.Errorf("%s: Discover(%+v) = %v, nil; want an error", tt.name, tt.target, igds)
		}
	}
}

func TestDiscoverCancelled(t *testing.T) {
	ssdp := newFakeSSDP(t, func(upnp.SearchRequest) [][]byte { return nil })
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	c := New(Config{})
	_, err := c.Discover(ctx, Target{Unicast: []netip.AddrPort{ssdp.addr()}}, time.Hour)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Discover(cancelled) = %v; want context.Canceled", err)
	}
}

func TestDialControlURLRebased(t *testing.T) {
	r := newFakeRouter(t,
		map[string]string{"/desc.xml": golden(t, "mikrotik-two-wan-urlbase.xml")},
		map[string]*fakeService{
			"/upnp/control/wan1/wanipconn-1": {status: "Connected", extIP: "198.18.0.1"},
			"/upnp/control/wan7/wanipconn-7": {status: "Connected", extIP: "198.18.0.7"},
		})
	c := New(Config{Logger: testLogger(t)})
	g, err := c.Dial(t.Context(), r.url("/desc.xml"), netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	if g.Service.ControlURL.Hostname() != "127.0.0.2" {
		t.Fatalf("described control URL %v; the golden should name 127.0.0.2", g.Service.ControlURL)
	}
	ctl, _ := g.controlURL()
	want, _ := url.Parse(r.url("/upnp/control/wan1/wanipconn-1"))
	if ctl.String() != want.String() {
		t.Errorf("control URL in use %v; want %v", ctl, want)
	}
	if !strings.Contains(g.String(), want.String()) || g.FriendlyName != "MikroTik Router" {
		t.Errorf("String() = %q", g.String())
	}
	if a, err := g.ExternalIPAddress(t.Context()); err != nil || a != netip.MustParseAddr("198.18.0.1") {
		t.Errorf("ExternalIPAddress() = %v, %v", a, err)
	}
	if _, err := c.Dial(t.Context(), "ftp://example/desc.xml", netip.Addr{}); err == nil {
		t.Error("Dial(ftp://...) = nil error")
	}
}
