package pcpsrv

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/pcp"
)

// mapping serves a MAP request (RFC 6887 §11.3) or, with lifetime 0, a
// deletion (§15).
func (s *Server) mapping(ctx context.Context, client netip.Addr, req *pcp.Request, pkt []byte, epoch uint32, out []byte) []byte {
	m := req.Map
	log := s.logger()
	internal, code := s.target(client, &req.Options)
	if code != pcp.Success {
		log.Debug("pcp: refused THIRD_PARTY", "client", client, "for", req.Options.ThirdParty, "result", code)
		return s.refuse(out, pkt, code, epoch)
	}
	if m.Protocol == pcp.ProtocolAll && m.InternalPort != 0 {
		// §11.1: "If the protocol is zero (meaning 'all protocols'),
		// then internal port MUST be zero".
		return s.refuse(out, pkt, pcp.MalformedRequest, epoch)
	}
	if req.Lifetime == 0 {
		return s.deletion(ctx, internal, req, pkt, epoch, out)
	}
	proto, code := protocolOf(m.Protocol)
	if code == pcp.Success && m.InternalPort == 0 {
		// "All ports" of a protocol (§11.1) is a firewall's, not a
		// NAT's: the policy cannot grant it.
		code = pcp.NotAuthorized
	}
	var filters []gateway.Filter
	if code == pcp.Success {
		filters, code = filtersOf(internal, &req.Options)
	}
	ext := s.externalAddress(internal)
	switch {
	case code != pcp.Success:
	case !ext.IsValid():
		code = pcp.NetworkFailure
	case req.Options.PreferFailure && suggested(m.ExternalAddr) && plain(m.ExternalAddr) != ext:
		// §13.2: with PREFER_FAILURE the suggested external address
		// is given or the request fails.
		code = pcp.CannotProvideExternal
	}
	if code != pcp.Success {
		log.Debug("pcp: refused MAP", "client", client, "internal", internal, "proto", m.Protocol, "port", m.InternalPort, "result", code)
		return s.refuse(out, pkt, code, epoch)
	}
	exact := req.Options.PreferFailure && m.ExternalPort != 0
	res, err := s.Table.Map(ctx, gateway.MapRequest{
		Protocol:     proto,
		Internal:     netip.AddrPortFrom(internal, m.InternalPort),
		ExternalPort: m.ExternalPort,
		Exact:        exact,
		Lifetime:     time.Duration(req.Lifetime) * time.Second,
		Nonce:        m.Nonce,
		CheckNonce:   true,
		Filters:      filters,
		Origin:       gateway.OriginPCP,
		Description:  req.Options.Description,
		Requester:    client,
	})
	if err != nil {
		code := resultOf(err, exact)
		log.Debug("pcp: refused MAP", "client", client, "internal", internal, "proto", proto, "port", m.InternalPort, "result", code, "err", err)
		return s.refuse(out, pkt, code, epoch)
	}
	m.ExternalPort = res.ExternalPort
	m.ExternalAddr = ext
	return s.respond(out, pcp.Response{Opcode: pcp.OpMap, Lifetime: seconds(res.Granted), Epoch: epoch, Map: m, Options: echoed(req.Options)})
}

// deletion serves a MAP request with lifetime 0 (§15): the mapping of the
// internal endpoint goes when the request carries its nonce (NOT_AUTHORIZED
// otherwise); one that does not exist is deleted successfully. Internal port
// 0 deletes every mapping of the protocol (of every protocol for protocol 0)
// that the internal address holds under this nonce (§11.1: port 0 "is legal
// when the lifetime is zero (a delete request)"). The response copies the
// request's suggested external address and port (§15, erratum 3621).
func (s *Server) deletion(ctx context.Context, internal netip.Addr, req *pcp.Request, pkt []byte, epoch uint32, out []byte) []byte {
	m := req.Map
	var protos []gateway.Protocol
	if m.Protocol == pcp.ProtocolAll {
		protos = []gateway.Protocol{gateway.TCP, gateway.UDP}
	} else if p, code := protocolOf(m.Protocol); code != pcp.Success {
		return s.refuse(out, pkt, code, epoch)
	} else {
		protos = []gateway.Protocol{p}
	}
	var err error
	if m.InternalPort == 0 {
		s.deleteAll(ctx, protos, internal, m.Nonce)
	} else {
		_, err = s.Table.DeleteChecked(ctx, protos[0], netip.AddrPortFrom(internal, m.InternalPort), m.Nonce)
	}
	if err != nil && !errors.Is(err, gateway.ErrNotFound) {
		code := resultOf(err, false)
		s.logger().Debug("pcp: refused deletion", "internal", internal, "port", m.InternalPort, "result", code, "err", err)
		return s.refuse(out, pkt, code, epoch)
	}
	return s.respond(out, pcp.Response{Opcode: pcp.OpMap, Epoch: epoch, Map: m, Options: echoed(req.Options)})
}

// deleteAll removes the PCP leases of protocols protos of the internal
// address that carry nonce; the others stay. It costs O(the address's
// leases), through the core's index by client.
func (s *Server) deleteAll(ctx context.Context, protos []gateway.Protocol, internal netip.Addr, nonce [pcp.NonceLen]byte) {
	for _, p := range protos {
		s.Table.DeleteClientNonce(ctx, p, internal, gateway.OriginPCP, nonce)
	}
}

// respond appends a SUCCESS response.
func (s *Server) respond(out []byte, r pcp.Response) []byte {
	r.Result = pcp.Success
	b, err := r.AppendBinary(out)
	if err != nil {
		s.logger().Error("pcp: response not encoded", "opcode", r.Opcode, "err", err)
		return nil
	}
	return b
}

// suggested reports whether a suggested external address names one: the
// zero Addr and the unspecified addresses (§11.1: "::" or "::ffff:0.0.0.0")
// leave the choice to the server.
func suggested(a netip.Addr) bool { return a.IsValid() && !a.Unmap().IsUnspecified() }

// seconds is a lifetime as the wire carries it.
func seconds(d time.Duration) uint32 { return uint32(min(d/time.Second, 1<<32-1)) }
