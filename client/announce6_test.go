package client

import (
	"net"
	"net/netip"
	"testing"

	"github.com/portlease/portlease/pcp"
)

// TestAnnounceListener6 checks the IPv6 listener's path on [::1] (joining
// ff02::1 needs a real link, which the lab has): an unsolicited ANNOUNCE
// from a host that holds no kept mapping is read and dropped, as RFC 6887
// §14.1.3 and RFC 6886 §3.2.1 ask of a packet not from the gateway.
func TestAnnounceListener6(t *testing.T) {
	probe, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Fatalf("no IPv6 loopback: %v", err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	probe.Close()
	addr := netip.AddrPortFrom(netip.IPv6Loopback(), port)
	c := newTestClient(t, nil, nil, func(cfg *Config) { cfg.AnnounceAddr6 = addr })
	c.listenAnnouncements6(&gateway{route: route{gw: netip.MustParseAddr("fe80::1"), iface: "lo", ifindex: 1}})

	msg, err := pcp.Response{Opcode: pcp.OpAnnounce, Epoch: 7}.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialUDP("udp6", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	waitLog(t, c.log, "ignoring a PCP announcement from a host that is not our gateway")
}
