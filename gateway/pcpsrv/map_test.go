package pcpsrv

import (
	"net/netip"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/pcp"
)

// TestMapRenewDelete: a MAP is granted its suggested port on the external
// address, with the lifetime capped; a renewal with the same nonce keeps
// the port; another nonce can neither renew nor delete it; the right nonce
// deletes it; deleting what does not exist succeeds (RFC 6887 §11.3, §15).
func TestMapRenewDelete(t *testing.T) {
	s, table := newServer(t, gateway.Policy{})
	r := ask(t, s, mapReq(host, nonceA, pcp.ProtocolTCP, 8080, 8080, 7200))
	wantResult(t, "MAP", r, pcp.Success)
	if r.Opcode != pcp.OpMap || r.Map.ExternalPort != 8080 || r.Map.ExternalAddr != extAddr || r.Lifetime != 3600 ||
		r.Map.Nonce != nonceA || r.Map.InternalPort != 8080 || r.Map.Protocol != pcp.ProtocolTCP || r.Epoch != table.Epoch() {
		t.Fatalf("MAP answered %+v; want 203.0.113.1:8080 for 3600 s with the request's nonce, protocol, port and the epoch", r)
	}
	internal := netip.AddrPortFrom(host, 8080)
	if l, ok := table.Lookup(gateway.TCP, internal); !ok || l.Origin != gateway.OriginPCP || l.Nonce != nonceA {
		t.Fatalf("lease after MAP: %+v, %v; want a PCP lease with the nonce", l, ok)
	}

	r = ask(t, s, mapReq(host, nonceA, pcp.ProtocolTCP, 8080, 0, 600))
	wantResult(t, "renewal", r, pcp.Success)
	if r.Map.ExternalPort != 8080 || r.Lifetime != 600 {
		t.Fatalf("renewal answered port %d for %d s; want 8080 for 600 s", r.Map.ExternalPort, r.Lifetime)
	}
	wantResult(t, "renewal with another nonce", ask(t, s, mapReq(host, nonceB, pcp.ProtocolTCP, 8080, 0, 600)), pcp.NotAuthorized)
	wantResult(t, "deletion with another nonce", ask(t, s, mapReq(host, nonceB, pcp.ProtocolTCP, 8080, 0, 0)), pcp.NotAuthorized)
	if _, ok := table.Lookup(gateway.TCP, internal); !ok {
		t.Fatal("a deletion with another nonce removed the lease")
	}
	r = ask(t, s, mapReq(host, nonceA, pcp.ProtocolTCP, 8080, 0, 0))
	wantResult(t, "deletion", r, pcp.Success)
	if r.Lifetime != 0 {
		t.Errorf("deletion answered lifetime %d; want 0", r.Lifetime)
	}
	if _, ok := table.Lookup(gateway.TCP, internal); ok {
		t.Fatal("the lease outlived its deletion")
	}
	wantResult(t, "deletion of nothing", ask(t, s, mapReq(host, nonceA, pcp.ProtocolTCP, 8080, 0, 0)), pcp.Success)
}

// TestDeleteAllPorts: internal port 0 with lifetime 0 deletes the client's
// mappings under the nonce (of every protocol for protocol 0), not those
// of another nonce.
func TestDeleteAllPorts(t *testing.T) {
	s, table := newServer(t, gateway.Policy{})
	ask(t, s, mapReq(host, nonceA, pcp.ProtocolTCP, 1111, 0, 600))
	ask(t, s, mapReq(host, nonceA, pcp.ProtocolUDP, 2222, 0, 600))
	ask(t, s, mapReq(host, nonceB, pcp.ProtocolUDP, 3333, 0, 600))
	wantResult(t, "delete all", ask(t, s, mapReq(host, nonceA, pcp.ProtocolAll, 0, 0, 0)), pcp.Success)
	if table.Len() != 1 {
		t.Fatalf("%d leases after deleting all of nonce A; want the one of nonce B", table.Len())
	}
	if _, ok := table.Lookup(gateway.UDP, netip.AddrPortFrom(host, 3333)); !ok {
		t.Fatal("the lease of another nonce went")
	}
}

// TestPreferFailure: with PREFER_FAILURE a taken suggested port, or
// another external address, is CANNOT_PROVIDE_EXTERNAL (§13.2); without
// it the server gives another port.
func TestPreferFailure(t *testing.T) {
	s, _ := newServer(t, gateway.Policy{})
	wantResult(t, "first", ask(t, s, mapReq(other, nonceA, pcp.ProtocolUDP, 9000, 9000, 600)), pcp.Success)
	req := mapReq(host, nonceA, pcp.ProtocolUDP, 9000, 9000, 600)
	req.Options.PreferFailure = true
	r := ask(t, s, req)
	wantResult(t, "PREFER_FAILURE for a taken port", r, pcp.CannotProvideExternal)
	if !r.Options.PreferFailure || r.Map.ExternalPort != 9000 || r.Map.Nonce != nonceA {
		t.Errorf("error response %+v does not echo the request", r)
	}
	req.Options.PreferFailure = false
	r = ask(t, s, req)
	wantResult(t, "taken port without PREFER_FAILURE", r, pcp.Success)
	if r.Map.ExternalPort == 9000 || r.Map.ExternalPort == 0 {
		t.Errorf("got port %d; want another one than the taken 9000", r.Map.ExternalPort)
	}
	req = mapReq(host, nonceB, pcp.ProtocolTCP, 7000, 7000, 600)
	req.Map.ExternalAddr = netip.MustParseAddr("203.0.113.99")
	req.Options.PreferFailure = true
	wantResult(t, "PREFER_FAILURE for another external address", ask(t, s, req), pcp.CannotProvideExternal)
	req.Map.ExternalAddr = extAddr
	r = ask(t, s, req)
	wantResult(t, "PREFER_FAILURE for a free port", r, pcp.Success)
	if r.Map.ExternalPort != 7000 || !r.Options.PreferFailure {
		t.Errorf("answered %+v; want port 7000 and PREFER_FAILURE echoed", r)
	}
}

// TestThirdParty: THIRD_PARTY for another host is NOT_AUTHORIZED unless the
// policy lets the client act for it (§13.1).
func TestThirdParty(t *testing.T) {
	s, table := newServer(t, gateway.Policy{})
	req := mapReq(host, nonceA, pcp.ProtocolTCP, 8080, 0, 600)
	req.Options.ThirdParty = other
	wantResult(t, "THIRD_PARTY by default", ask(t, s, req), pcp.NotAuthorized)
	s.MayActFor = func(requester, internal netip.Addr) bool { return requester == host && internal == other }
	r := ask(t, s, req)
	wantResult(t, "THIRD_PARTY allowed", r, pcp.Success)
	if r.Options.ThirdParty != other {
		t.Errorf("THIRD_PARTY not echoed: %+v", r.Options)
	}
	if _, ok := table.Lookup(gateway.TCP, netip.AddrPortFrom(other, 8080)); !ok {
		t.Fatal("no lease for the third party")
	}
	// §13.1: "A PCP server receiving a THIRD_PARTY Option specifying
	// the same address as the source address of the packet MUST return
	// a MALFORMED_REQUEST result code."
	req.Options.ThirdParty = host
	wantResult(t, "THIRD_PARTY naming the client itself", ask(t, s, req), pcp.MalformedRequest)
	peer := pcp.Request{Opcode: pcp.OpPeer, Lifetime: 600, Client: host, Peer: pcp.PeerData{
		MapData:    pcp.MapData{Nonce: nonceA, Protocol: pcp.ProtocolTCP, InternalPort: 8081},
		RemotePort: 80, RemoteAddr: netip.MustParseAddr("203.0.113.9")}}
	peer.Options.ThirdParty = host
	wantResult(t, "PEER with THIRD_PARTY naming the client itself", ask(t, s, peer), pcp.MalformedRequest)
}

// TestMapRefusals: the result codes of the MAP checks and of the core's
// errors.
func TestMapRefusals(t *testing.T) {
	s, table := newServer(t, gateway.Policy{})
	wantResult(t, "protocol 0", ask(t, s, mapReq(host, nonceA, pcp.ProtocolAll, 0, 0, 600)), pcp.UnsuppProtocol)
	wantResult(t, "protocol 0 with a port", ask(t, s, mapReq(host, nonceA, pcp.ProtocolAll, 80, 0, 600)), pcp.MalformedRequest)
	wantResult(t, "SCTP", ask(t, s, mapReq(host, nonceA, 132, 80, 0, 600)), pcp.UnsuppProtocol)
	wantResult(t, "all ports", ask(t, s, mapReq(host, nonceA, pcp.ProtocolTCP, 0, 0, 600)), pcp.NotAuthorized)
	wantResult(t, "not allowed by the rules", ask(t, s, mapReq(netip.MustParseAddr("198.51.101.5"), nonceA, pcp.ProtocolTCP, 80, 0, 600)), pcp.NotAuthorized)

	req := mapReq(host, nonceA, pcp.ProtocolTCP, 80, 0, 600)
	req.Options.Filters = []pcp.Filter{{Remote: netip.MustParsePrefix("2001:db8:203::/48")}}
	wantResult(t, "IPv6 filter on an IPv4 mapping", ask(t, s, req), pcp.MalformedOption)
	req.Options.Filters = nil
	for i := range MaxFilters + 1 {
		req.Options.Filters = append(req.Options.Filters, pcp.Filter{Remote: netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)}), 32)})
	}
	wantResult(t, "too many filters", ask(t, s, req), pcp.ExcessiveRemotePeers)

	table.SetExternalAddress(netip.Addr{})
	wantResult(t, "no external address", ask(t, s, mapReq(host, nonceA, pcp.ProtocolTCP, 80, 0, 600)), pcp.NetworkFailure)
}

// TestNoResources: a port range all taken is NO_RESOURCES.
func TestNoResources(t *testing.T) {
	s, _ := newServer(t, gateway.Policy{Ports: gateway.PortRange{Low: 5000, High: 5000}, Rules: []gateway.Rule{}})
	wantResult(t, "the one port", ask(t, s, mapReq(other, nonceA, pcp.ProtocolTCP, 80, 0, 600)), pcp.Success)
	wantResult(t, "none left", ask(t, s, mapReq(host, nonceA, pcp.ProtocolTCP, 80, 0, 600)), pcp.NoResources)
}

// TestQuotas: a host at its quota is USER_EX_QUOTA, a full table
// NO_RESOURCES (RFC 6887 §7.4); a renewal passes at either limit.
func TestQuotas(t *testing.T) {
	s, _ := newServer(t, gateway.Policy{MaxPerHost: 1, MaxLeases: 2})
	wantResult(t, "the host's one lease", ask(t, s, mapReq(host, nonceA, pcp.ProtocolTCP, 8080, 0, 600)), pcp.Success)
	wantResult(t, "the host's second lease", ask(t, s, mapReq(host, nonceA, pcp.ProtocolUDP, 8080, 0, 600)), pcp.UserExQuota)
	wantResult(t, "a renewal at the quota", ask(t, s, mapReq(host, nonceA, pcp.ProtocolTCP, 8080, 0, 600)), pcp.Success)
	wantResult(t, "another host", ask(t, s, mapReq(other, nonceA, pcp.ProtocolTCP, 8080, 0, 600)), pcp.Success)
	wantResult(t, "a pinhole on a full table", ask(t, s, mapReq(host6, nonceA, pcp.ProtocolTCP, 8080, 0, 600)), pcp.NoResources)
}

// TestMapIPv6: the mapping of an IPv6 internal address is reached at that
// address: no translation (a pinhole).
func TestMapIPv6(t *testing.T) {
	s, _ := newServer(t, gateway.Policy{})
	r := ask(t, s, mapReq(host6, nonceA, pcp.ProtocolTCP, 8080, 0, 600))
	wantResult(t, "IPv6 MAP", r, pcp.Success)
	if r.Map.ExternalAddr != host6 || r.Map.ExternalPort != 8080 {
		t.Fatalf("IPv6 MAP answered %v port %d; want the internal %v port 8080", r.Map.ExternalAddr, r.Map.ExternalPort, host6)
	}
}

// TestMinLifetime: a MAP for less than the policy's PCP minimum is granted
// the minimum (RFC 6887 §15: "the minimum value SHOULD be 120 seconds").
func TestMinLifetime(t *testing.T) {
	s, _ := newServer(t, gateway.Policy{PCPMinLifetime: 120 * time.Second})
	r := ask(t, s, mapReq(host, nonceA, pcp.ProtocolTCP, 8080, 8080, 10))
	wantResult(t, "MAP for 10 s", r, pcp.Success)
	if r.Lifetime != 120 {
		t.Errorf("MAP for 10 s granted %d s; want the minimum, 120", r.Lifetime)
	}
}
