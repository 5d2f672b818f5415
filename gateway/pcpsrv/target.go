package pcpsrv

import (
	"net/netip"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/pcp"
)

// target returns the internal address a MAP or PEER request of client is
// for: the client's own, or THIRD_PARTY's when the policy lets the client
// act for it (RFC 6887 §13.1: "the PCP server ... MUST ... NOT_AUTHORIZED"
// otherwise). THIRD_PARTY naming the client itself is MALFORMED_REQUEST
// (§13.1: "A PCP server receiving a THIRD_PARTY Option specifying the same
// address as the source address of the packet MUST return a
// MALFORMED_REQUEST result code").
func (s *Server) target(client netip.Addr, opts *pcp.Options) (netip.Addr, pcp.ResultCode) {
	if !opts.ThirdParty.IsValid() {
		return client, pcp.Success
	}
	internal := plain(opts.ThirdParty)
	if internal == client {
		return netip.Addr{}, pcp.MalformedRequest
	}
	if internal.IsUnspecified() || !s.mayActFor(client, internal) {
		return netip.Addr{}, pcp.NotAuthorized
	}
	return internal, pcp.Success
}

// protocolOf checks the protocol field of MAP or PEER: this gateway maps
// TCP and UDP only, so "all protocols" (0) and every other protocol are
// UNSUPP_PROTOCOL (§7.4: "Unsupported transport protocol, e.g., SCTP in a
// NAT that handles only UDP and TCP").
func protocolOf(p uint8) (gateway.Protocol, pcp.ResultCode) {
	switch p {
	case pcp.ProtocolTCP:
		return gateway.TCP, pcp.Success
	case pcp.ProtocolUDP:
		return gateway.UDP, pcp.Success
	}
	return 0, pcp.UnsuppProtocol
}

// externalAddress is the address a mapping of internal is reached at: the
// gateway's external IPv4 address for an IPv4 internal address (the zero
// Addr while it has none), and the internal address itself for an IPv6 one,
// whose mapping is a firewall pinhole without translation.
func (s *Server) externalAddress(internal netip.Addr) netip.Addr {
	if internal.Is4() {
		return s.Table.ExternalAddress()
	}
	return internal
}

// filtersOf turns the FILTER options of a MAP request (§13.3) into the
// core's filters: those after the last of prefix length 0, which removes
// the ones before it (pcp.Options.EffectiveFilters). A filter of another
// family than the internal address is MALFORMED_OPTION; more than MaxFilters
// are EXCESSIVE_REMOTE_PEERS.
func filtersOf(internal netip.Addr, o *pcp.Options) ([]gateway.Filter, pcp.ResultCode) {
	fs := o.EffectiveFilters()
	if len(fs) > MaxFilters {
		return nil, pcp.ExcessiveRemotePeers
	}
	var out []gateway.Filter
	for _, f := range fs {
		if !f.Remote.IsValid() || f.Remote.Addr().Is4() != internal.Is4() {
			return nil, pcp.MalformedOption
		}
		out = append(out, gateway.Filter{Remote: f.Remote.Masked(), Port: f.Port})
	}
	return out, pcp.Success
}

// echoed are the options a response carries: every option the server
// processed (THIRD_PARTY §13.1, PREFER_FAILURE §13.2, FILTER §13.3,
// DESCRIPTION RFC 7220 §2); the ignored ones are left out.
func echoed(o pcp.Options) pcp.Options {
	o.Ignored = 0
	return o
}
