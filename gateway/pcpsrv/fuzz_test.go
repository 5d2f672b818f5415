package pcpsrv

import (
	"context"
	"net/netip"
	"testing"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/pcp"
)

// FuzzHandle feeds the server arbitrary datagrams from a LAN host, over a
// real lease table: whatever arrives, it never panics, and what it answers
// is a PCP response (RFC 6887 §7.2) of version 2 with the R bit, at most
// 1100 bytes and a multiple of 4 long, that a client can read when its
// opcode is one of §19.2's; a MAP it grants is in the table.
func FuzzHandle(f *testing.F) {
	seeds := []pcp.Request{
		mapReq(host, nonceA, pcp.ProtocolTCP, 8080, 8080, 600),
		mapReq(host, nonceA, pcp.ProtocolUDP, 4672, 0, 0),
		mapReq(host6, nonceB, pcp.ProtocolTCP, 443, 443, 600),
		{Opcode: pcp.OpAnnounce, Client: host},
		{Opcode: pcp.OpMap, Lifetime: 60, Client: host, Map: pcp.MapData{Nonce: nonceA, Protocol: pcp.ProtocolTCP, InternalPort: 22},
			Options: pcp.Options{PreferFailure: true, ThirdParty: other, Description: "ssh", HasDescription: true,
				Filters: []pcp.Filter{{Remote: netip.MustParsePrefix("203.0.113.0/24"), Port: 0}}}},
		{Opcode: pcp.OpPeer, Lifetime: 60, Client: host, Peer: pcp.PeerData{
			MapData:    pcp.MapData{Nonce: nonceB, Protocol: pcp.ProtocolUDP, InternalPort: 5000},
			RemotePort: 3478, RemoteAddr: netip.MustParseAddr("203.0.113.2")}},
	}
	for _, r := range seeds {
		b, err := r.AppendBinary(nil)
		if err != nil {
			f.Fatalf("seed %+v: %v", r, err)
		}
		f.Add(b, true)
		f.Add(b, false)
	}
	f.Add([]byte{1, 1}, true)
	f.Add(make([]byte, 1104), true)
	f.Fuzz(func(t *testing.T, pkt []byte, fromHost bool) {
		table := gateway.New(gateway.Config{Policy: gateway.Policy{Rules: []gateway.Rule{
			{Allow: true, ExternalPorts: gateway.DefaultPorts, Internal: netip.MustParsePrefix("198.51.100.0/24"), InternalPorts: gateway.DefaultPorts},
			{Allow: true, ExternalPorts: gateway.DefaultPorts, Internal: netip.MustParsePrefix("2001:db8:100::/64"), InternalPorts: gateway.DefaultPorts},
		}}})
		defer table.Close()
		table.SetExternalAddress(extAddr)
		s := &Server{Table: table}
		src := host
		if !fromHost {
			src = host6
		}
		raw := s.Handle(context.Background(), pkt, netip.AddrPortFrom(src, 5350), gw4, nil)
		if raw == nil {
			return
		}
		if len(raw) > pcp.MaxMessageLen || len(raw)%4 != 0 || len(raw) < pcp.HeaderLen {
			t.Fatalf("answer of %d bytes to %x: want 24-1100, a multiple of 4", len(raw), pkt)
		}
		if raw[0] != pcp.Version || raw[1]&pcp.ResponseBit == 0 {
			t.Fatalf("answer %x to %x: version %d, opcode %#x; want version 2 with the R bit", raw, pkt, raw[0], raw[1])
		}
		if op := pcp.Opcode(raw[1] &^ pcp.ResponseBit); op != pcp.OpAnnounce && op != pcp.OpMap && op != pcp.OpPeer {
			return // the echo of an opcode no client sends (UNSUPP_VERSION, UNSUPP_OPCODE)
		}
		var r pcp.Response
		if err := r.UnmarshalBinary(raw); err != nil {
			t.Fatalf("answer %x to %x does not decode: %v", raw, pkt, err)
		}
		if r.Result == pcp.Success && r.Opcode == pcp.OpMap && r.Lifetime > 0 && table.Len() == 0 {
			t.Fatalf("MAP granted (%+v) but the table holds nothing", r)
		}
	})
}
