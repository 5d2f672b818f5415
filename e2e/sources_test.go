package e2e

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
	"github.com/portlease/portlease/natpmp"
)

// TestRequestRatePerHost: a LAN host sending NAT-PMP requests far above
// "request rate per host" gets its burst answered and then Out of
// resources (result 4), logged once with the count, while another LAN
// host's requests all succeed at the same time.
func TestRequestRatePerHost(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true, ExtraLines: []string{"request rate per host 5 burst 10"}})
	// LAN[1] floods: Start's readiness check speaks from LAN[0], whose
	// bucket it has drawn from.
	flooder, other := lab.LAN[1], lab.LAN[0]

	pc, err := flooder.ListenPacket("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	const sent = 200
	gw := net.UDPAddrFromAddrPort(netip.AddrPortFrom(lab.GatewayLANAddr4, natpmp.ServerPort))
	for i := range sent {
		if _, err := pc.WriteTo(mappingRequest(natpmp.OpMapTCP, uint16(20000+i), uint16(20000+i), 3600), gw); err != nil {
			t.Fatal(err)
		}
	}
	results := map[natpmp.ResultCode]int{}
	buf := make([]byte, 64)
	_ = pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range sent {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			break
		}
		var m natpmp.MappingResponse
		if err := m.UnmarshalBinary(buf[:n]); err != nil {
			t.Fatalf("answer %x: %v", buf[:n], err)
		}
		results[m.ResultCode]++
	}
	t.Logf("%d requests at once: %v", sent, results)
	if results[natpmp.OutOfResources] == 0 {
		t.Fatalf("%d requests at once over a rate of 5/s: none refused with Out of resources (answers %v)", sent, results)
	}
	if results[natpmp.Success] < 10 {
		t.Errorf("%d requests at once: %d granted; want at least the burst, 10", sent, results[natpmp.Success])
	}
	for code, n := range results {
		if code != natpmp.Success && code != natpmp.OutOfResources {
			t.Errorf("%d answers with result %v; want success or Out of resources only", n, code)
		}
	}
	// The flooding host is still over its rate: the other one is not.
	natpmpcMap(t, lab, other, 6100, 6100, "tcp", 3600)
	natpmpcMap(t, lab, other, 6101, 6101, "udp", 3600)
	waitLog(t, d, `msg="requests over the rate refused" service=natpmp host=`+flooder.Addr4.String())
	if n := strings.Count(d.Log(), "requests over the rate refused"); n > 2 {
		t.Errorf("the refusals were logged %d times; want once a minute per host:\n%s", n, d.Log())
	}
}

// TestSpoofedSourceGetsNoAnswer: a NAT-PMP mapping request that arrives on
// the LAN link with a source outside the link's subnet (here an address of
// the WAN range, given to the WAN host too so that an answer would reach
// it) gets no answer and makes no mapping; the daemon logs it as ignored.
func TestSpoofedSourceGetsNoAnswer(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{LANHosts: 1})
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan := lab.LAN[0]
	ctx := context.Background()
	const spoofed = "203.0.113.77"
	if _, err := lan.Run(ctx, "ip", "addr", "add", spoofed+"/32", "dev", lan.Link); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.WAN.Run(ctx, "ip", "addr", "add", spoofed+"/32", "dev", lab.WAN.Link); err != nil {
		t.Fatal(err)
	}
	wanSide, err := lab.WAN.ListenPacket("udp4", spoofed+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer wanSide.Close()
	port := wanSide.LocalAddr().(*net.UDPAddr).Port
	pc, err := lan.ListenPacket("udp4", net.JoinHostPort(spoofed, strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	gw := net.UDPAddrFromAddrPort(netip.AddrPortFrom(lab.GatewayLANAddr4, natpmp.ServerPort))
	buf := make([]byte, 64)
	for range 3 {
		if _, err := pc.WriteTo(mappingRequest(natpmp.OpMapTCP, 7777, 7777, 3600), gw); err != nil {
			t.Fatal(err)
		}
		for _, c := range []net.PacketConn{pc, wanSide} {
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			n, from, err := c.ReadFrom(buf)
			if err == nil {
				t.Fatalf("a request from %s was answered (%x from %v)", spoofed, buf[:n], from)
			}
			// Only the wait running out is "no answer"; a socket error
			// is a failure of the test's own.
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read on the %s side: %v", c.LocalAddr(), err)
			}
		}
	}
	waitLog(t, d, `msg="ignored packets from outside the subnet" client=`+spoofed)
	if rs := nftRuleset(t, lab); strings.Contains(rs, "7777") {
		t.Fatalf("the spoofed request made a mapping:\n%s", rs)
	}
	// The host's own address is still served.
	natpmpcMap(t, lab, lan, 7778, 7778, "tcp", 3600)
}

// TestNoMappingForAnotherLAN: with two LANs served and the default rules, a
// host on one LAN cannot map for a host of the other LAN, even with UPnP's
// secure mode off, which lets it map for a neighbour on its own LAN.
func TestNoMappingForAnotherLAN(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	// A second LAN, lan9, in the WAN range (the first LAN's /24 holds
	// every other lab address), its host 203.0.113.194.
	lan9, err := lab.AddLinkedHost(context.Background(), "lan9", "lan9",
		netip.MustParsePrefix("203.0.113.193/26"), netip.MustParsePrefix("203.0.113.194/26"))
	if err != nil {
		t.Fatal(err)
	}
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true,
		Directives: []string{"interface " + lab.GatewayWANLink, "listen on " + lab.GatewayLANLink, "listen on lan9"},
		ExtraLines: []string{"upnp secure mode off"}})
	host, neighbour := lab.LAN[0], lab.LAN[1]

	out := labpeers.UPnPC(t, host, "-u", d.DescriptionURL(), "-e", "for a neighbour", "-a", neighbour.Addr4.String(), "8100", "8100", "TCP", "3600")
	if !strings.Contains(out, "is redirected to internal") {
		t.Fatalf("upnpc -a for a neighbour on the same LAN (secure mode off) printed:\n%s", out)
	}
	out, err = labpeers.RunUPnPC(t.Context(), host, "-u", d.DescriptionURL(), "-e", "for another LAN", "-a", lan9.Addr4.String(), "8101", "8101", "TCP", "3600")
	if err == nil || !strings.Contains(out, "AddPortMapping(8101, 8101, "+lan9.Addr4.String()+") failed with code 606") {
		t.Fatalf("upnpc -a for a host of another LAN: %v; want 606 Action not authorized; printed:\n%s", err, out)
	}
	if rs := nftRuleset(t, lab); strings.Contains(rs, lan9.Addr4.String()) {
		t.Fatalf("a mapping for the other LAN's host is in the kernel:\n%s", rs)
	}
	// The other LAN's host maps for itself.
	out = labpeers.NATPMPC(t, lan9, "-g", "203.0.113.193", "-a", "8102", "8102", "tcp", "3600")
	if !mappedRE.MatchString(out) {
		t.Fatalf("natpmpc from the host on lan9 printed no mapping:\n%s", out)
	}
}
