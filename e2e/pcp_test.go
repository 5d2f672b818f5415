package e2e

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
	"github.com/portlease/portlease/pcp"
)

// pcpAsk sends the PCP request pkt from a socket on host to gw's port 5351
// and decodes the answer, retrying as a PCP client does (RFC 6887 §8.1.1);
// the test fails when none comes.
func pcpAsk(t *testing.T, host *netlab.Host, gw netip.Addr, pkt []byte) (pcp.Response, []byte) {
	t.Helper()
	network := "udp4"
	if gw.Is6() {
		network = "udp6"
	}
	pc, err := host.ListenPacket(network, ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	buf := make([]byte, pcp.MaxMessageLen)
	for range 5 {
		if _, err := pc.WriteTo(pkt, net.UDPAddrFromAddrPort(netip.AddrPortFrom(gw, pcp.ServerPort))); err != nil {
			t.Fatal(err)
		}
		_ = pc.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			continue
		}
		var r pcp.Response
		if err := r.UnmarshalBinary(buf[:n]); err != nil {
			return pcp.Response{}, buf[:n]
		}
		return r, buf[:n]
	}
	t.Fatalf("no PCP answer from %v to %x", gw, pkt)
	return pcp.Response{}, nil
}

// pcpMapRequest is a MAP request of host for TCP internal port iport.
func pcpMapRequest(t *testing.T, host *netlab.Host, nonce byte, iport, eport uint16, lifetime uint32) []byte {
	t.Helper()
	b, err := pcp.Request{Opcode: pcp.OpMap, Lifetime: lifetime, Client: host.Addr4, Map: pcp.MapData{
		Nonce: [pcp.NonceLen]byte{nonce, nonce, nonce}, Protocol: pcp.ProtocolTCP, InternalPort: iport, ExternalPort: eport,
	}}.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPCPMapCarriesTraffic: raw PCP MAP requests from a LAN host to the
// real daemon: the mapping carries the WAN host's connections; a renewal
// keeps the port; another nonce can neither renew nor delete it; deletion
// with the right nonce ends the traffic. Version 1 gets UNSUPP_VERSION in
// a version 2 answer (RFC 6887 §9), and natpmpc, asking the same port at
// the same time, still gets its mapping.
func TestPCPMapCarriesTraffic(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan, gw := lab.LAN[0], lab.GatewayLANAddr4
	serveTCP(t, lan, 8080, "hello over PCP")

	natpmpcDone := make(chan string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := lan.Run(ctx, "natpmpc", "-g", gw.String(), "-a", "5000", "5000", "udp", "3600")
		if err != nil {
			out += err.Error()
		}
		natpmpcDone <- out
	}()

	r, _ := pcpAsk(t, lan, gw, pcpMapRequest(t, lan, 1, 8080, 8080, 3600))
	if r.Result != pcp.Success || r.Map.ExternalAddr != lab.GatewayWANAddr4 || r.Map.ExternalPort == 0 || r.Lifetime == 0 {
		t.Fatalf("MAP answered %+v; want SUCCESS with %v and a port", r, lab.GatewayWANAddr4)
	}
	eport := r.Map.ExternalPort
	through := fmt.Sprintf("%s:%d", lab.GatewayWANAddr4, eport)
	if got, err := fetchTCP(lab.WAN, through); err != nil || got != "hello over PCP" {
		t.Fatalf("WAN host through %s got %q, %v; want the LAN host's greeting", through, got, err)
	}

	out := <-natpmpcDone
	if m := mappedRE.FindStringSubmatch(out); m == nil || m[1] != "5000" {
		t.Fatalf("natpmpc beside PCP printed:\n%s\nwant UDP 5000 mapped", out)
	}

	if r, _ = pcpAsk(t, lan, gw, pcpMapRequest(t, lan, 1, 8080, 0, 1200)); r.Result != pcp.Success || r.Map.ExternalPort != eport {
		t.Fatalf("renewal answered %+v; want SUCCESS keeping port %d", r, eport)
	}
	if r, _ = pcpAsk(t, lan, gw, pcpMapRequest(t, lan, 2, 8080, 0, 1200)); r.Result != pcp.NotAuthorized {
		t.Fatalf("renewal with another nonce answered %v; want NOT_AUTHORIZED", r.Result)
	}
	if r, _ = pcpAsk(t, lan, gw, pcpMapRequest(t, lan, 2, 8080, 0, 0)); r.Result != pcp.NotAuthorized {
		t.Fatalf("deletion with another nonce answered %v; want NOT_AUTHORIZED", r.Result)
	}
	if got, err := fetchTCP(lab.WAN, through); err != nil || got != "hello over PCP" {
		t.Fatalf("after the refused deletion the WAN host got %q, %v; want the greeting still", got, err)
	}
	if r, _ = pcpAsk(t, lan, gw, pcpMapRequest(t, lan, 1, 8080, 0, 0)); r.Result != pcp.Success || r.Lifetime != 0 {
		t.Fatalf("deletion answered %+v; want SUCCESS, lifetime 0", r)
	}
	if got, err := fetchTCP(lab.WAN, through); err == nil {
		t.Fatalf("after deletion the WAN host still reached the LAN server: %q", got)
	}

	v1 := pcpMapRequest(t, lan, 1, 8080, 0, 60)
	v1[0] = 1
	if _, raw := pcpAsk(t, lan, gw, v1); len(raw) < pcp.HeaderLen || raw[0] != pcp.Version || pcp.ResultCode(raw[3]) != pcp.UnsuppVersion {
		t.Fatalf("version 1 answered %x; want version 2 with UNSUPP_VERSION", raw)
	}
}

// TestPCPOverIPv6: the gateway's global IPv6 LAN address answers PCP; an
// ANNOUNCE request gets SUCCESS and the epoch (RFC 6887 §14.1.1).
func TestPCPOverIPv6(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan := lab.LAN[0]
	req, err := pcp.Request{Opcode: pcp.OpAnnounce, Client: lan.Addr6}.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	gw6 := netip.MustParseAddr("2001:db8:100::1")
	r, raw := pcpAsk(t, lan, gw6, req)
	if r.Opcode != pcp.OpAnnounce || r.Result != pcp.Success {
		t.Fatalf("ANNOUNCE over IPv6 answered %x; want ANNOUNCE SUCCESS", raw)
	}
	// The IPv4 form of the client's address is an ADDRESS_MISMATCH there.
	req, _ = pcp.Request{Opcode: pcp.OpAnnounce, Client: lan.Addr4}.AppendBinary(nil)
	if r, _ = pcpAsk(t, lan, gw6, req); r.Result != pcp.AddressMismatch {
		t.Fatalf("ANNOUNCE over IPv6 naming the IPv4 address answered %v; want ADDRESS_MISMATCH", r.Result)
	}
}
