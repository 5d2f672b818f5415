package pcpsrv

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/pcp"
)

var (
	extAddr = netip.MustParseAddr("203.0.113.1")
	host    = netip.MustParseAddr("198.51.100.10")
	other   = netip.MustParseAddr("198.51.100.11")
	host6   = netip.MustParseAddr("2001:db8:100::10")
	gw4     = netip.MustParseAddrPort("198.51.100.1:5351")
	nonceA  = [pcp.NonceLen]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	nonceB  = [pcp.NonceLen]byte{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}
)

// newServer serves a real lease table without a firewall that allows the
// LAN's hosts (IPv4 and IPv6) every port, up to an hour, and has the
// external address 203.0.113.1.
func newServer(t *testing.T, policy gateway.Policy) (*Server, *gateway.Table) {
	t.Helper()
	if policy.Rules == nil {
		policy.Rules = []gateway.Rule{
			{Allow: true, ExternalPorts: gateway.DefaultPorts, Internal: netip.MustParsePrefix("198.51.100.0/24"), InternalPorts: gateway.DefaultPorts},
			{Allow: true, ExternalPorts: gateway.DefaultPorts, Internal: netip.MustParsePrefix("2001:db8:100::/64"), InternalPorts: gateway.DefaultPorts},
		}
	}
	if policy.MaxLifetime == 0 {
		policy.MaxLifetime = time.Hour
	}
	table := gateway.New(gateway.Config{Policy: policy})
	t.Cleanup(table.Close)
	table.SetExternalAddress(extAddr)
	return &Server{Table: table}, table
}

// mapReq is a MAP request of client for its internal port.
func mapReq(client netip.Addr, nonce [pcp.NonceLen]byte, proto uint8, iport, eport uint16, lifetime uint32) pcp.Request {
	return pcp.Request{Opcode: pcp.OpMap, Lifetime: lifetime, Client: client,
		Map: pcp.MapData{Nonce: nonce, Protocol: proto, InternalPort: iport, ExternalPort: eport}}
}

func encode(t *testing.T, r pcp.Request) []byte {
	t.Helper()
	b, err := r.AppendBinary(nil)
	if err != nil {
		t.Fatalf("encoding %+v: %v", r, err)
	}
	return b
}

// send hands pkt from src to the server and decodes the answer, failing
// when there is none.
func send(t *testing.T, s *Server, pkt []byte, src netip.Addr) (pcp.Response, []byte) {
	t.Helper()
	raw := s.Handle(context.Background(), pkt, netip.AddrPortFrom(src, 5350), gw4, nil)
	if raw == nil {
		t.Fatalf("no answer to %x", pkt)
	}
	var r pcp.Response
	if err := r.UnmarshalBinary(raw); err != nil {
		t.Fatalf("answer %x to %x: %v", raw, pkt, err)
	}
	return r, raw
}

// ask sends r from its own client address.
func ask(t *testing.T, s *Server, r pcp.Request) pcp.Response {
	t.Helper()
	resp, _ := send(t, s, encode(t, r), r.Client)
	return resp
}

// wantResult fails unless r carries code with the lifetime §7.4 gives it
// (the granted one for SUCCESS is checked by the caller).
func wantResult(t *testing.T, what string, r pcp.Response, code pcp.ResultCode) {
	t.Helper()
	if r.Result != code {
		t.Fatalf("%s: result %v; want %v", what, r.Result, code)
	}
	if code != pcp.Success && r.Lifetime != code.ErrorLifetime() {
		t.Errorf("%s: error lifetime %d; want %d (RFC 6887 §7.4)", what, r.Lifetime, code.ErrorLifetime())
	}
}
