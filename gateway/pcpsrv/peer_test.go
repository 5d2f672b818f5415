package pcpsrv

import (
	"net/netip"
	"testing"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/pcp"
)

var remote = netip.MustParseAddr("203.0.113.2")

func peerReq(client netip.Addr, nonce [pcp.NonceLen]byte, iport uint16, lifetime uint32) pcp.Request {
	return pcp.Request{Opcode: pcp.OpPeer, Lifetime: lifetime, Client: client, Peer: pcp.PeerData{
		MapData:    pcp.MapData{Nonce: nonce, Protocol: pcp.ProtocolUDP, InternalPort: iport},
		RemotePort: 3478, RemoteAddr: remote,
	}}
}

// TestPeer: a PEER without a mapping gets a lease of its own, renewed and
// deleted with its nonce; a PEER for an endpoint with a MAP reports the
// MAP's port and leaves the MAP as it is (§12.3).
func TestPeer(t *testing.T) {
	s, table := newServer(t, gateway.Policy{})
	r := ask(t, s, peerReq(host, nonceA, 4000, 600))
	wantResult(t, "PEER", r, pcp.Success)
	if r.Opcode != pcp.OpPeer || r.Peer.ExternalAddr != extAddr || r.Peer.ExternalPort == 0 || r.Lifetime != 600 ||
		r.Peer.RemoteAddr != remote || r.Peer.RemotePort != 3478 {
		t.Fatalf("PEER answered %+v; want the external address, a port, 600 s and the remote peer echoed", r)
	}
	endpoint := netip.AddrPortFrom(host, 4000)
	if l, ok := table.Lookup(gateway.UDP, endpoint); !ok || l.ExternalPort != r.Peer.ExternalPort || l.Nonce != nonceA {
		t.Fatalf("lease after PEER: %+v, %v", l, ok)
	}
	port := r.Peer.ExternalPort
	r = ask(t, s, peerReq(host, nonceA, 4000, 900))
	if r.Result != pcp.Success || r.Peer.ExternalPort != port || r.Lifetime != 900 {
		t.Fatalf("PEER renewal answered %+v; want port %d for 900 s", r, port)
	}
	second := peerReq(host, nonceA, 4000, 900)
	second.Peer.RemoteAddr = netip.MustParseAddr("203.0.113.3")
	if r = ask(t, s, second); r.Result != pcp.Success || r.Peer.ExternalPort != port {
		t.Fatalf("PEER to a second peer answered %+v; want port %d", r, port)
	}
	if l, _ := table.Lookup(gateway.UDP, endpoint); len(l.Filters) != 2 {
		t.Fatalf("lease filters after two PEERs: %v; want both peers", l.Filters)
	}
	wantResult(t, "PEER deletion of the second", ask(t, s, func() pcp.Request { second.Lifetime = 0; return second }()), pcp.Success)
	if l, ok := table.Lookup(gateway.UDP, endpoint); !ok || len(l.Filters) != 1 || l.Filters[0].Remote.Addr() != remote {
		t.Fatalf("after deleting the second PEER: %+v, %v; want the first peer's filter alone", l, ok)
	}
	wantResult(t, "PEER deletion", ask(t, s, peerReq(host, nonceA, 4000, 0)), pcp.Success)
	if _, ok := table.Lookup(gateway.UDP, endpoint); ok {
		t.Fatal("the PEER's lease outlived its deletion")
	}

	m := ask(t, s, mapReq(host, nonceA, pcp.ProtocolUDP, 4000, 0, 600))
	wantResult(t, "MAP", m, pcp.Success)
	r = ask(t, s, peerReq(host, nonceB, 4000, 3000))
	wantResult(t, "PEER beside a MAP", r, pcp.Success)
	if r.Peer.ExternalPort != m.Map.ExternalPort || r.Lifetime > 600 {
		t.Fatalf("PEER beside a MAP answered port %d for %d s; want the MAP's %d for at most its 600 s", r.Peer.ExternalPort, r.Lifetime, m.Map.ExternalPort)
	}
	wantResult(t, "PEER deletion beside a MAP", ask(t, s, peerReq(host, nonceB, 4000, 0)), pcp.Success)
	if l, ok := table.Lookup(gateway.UDP, netip.AddrPortFrom(host, 4000)); !ok || l.Nonce != nonceA {
		t.Fatalf("the MAP's lease after PEERs of another nonce: %+v, %v; want it unchanged", l, ok)
	}

	bad := peerReq(host, nonceA, 4001, 600)
	bad.Peer.RemotePort = 0
	wantResult(t, "PEER without a remote port", ask(t, s, bad), pcp.MalformedRequest)
	bad = peerReq(host, nonceA, 4001, 600)
	bad.Peer.RemoteAddr = netip.MustParseAddr("2001:db8:203::2")
	wantResult(t, "PEER to an IPv6 peer from IPv4", ask(t, s, bad), pcp.NotAuthorized)
	bad = peerReq(host, nonceA, 4001, 600)
	bad.Peer.Protocol = 0
	wantResult(t, "PEER for all protocols", ask(t, s, bad), pcp.UnsuppProtocol)
}
