package pcpsrv

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/pcp"
)

// peer serves a PEER request (RFC 6887 §12.3): it makes or renews the
// mapping of an internal endpoint for one remote peer and says where the
// peer sees it.
//
// The core keeps one NAT-PMP or PCP lease per internal endpoint and
// protocol, whose external port is also the source port of the endpoint's
// outbound traffic. So:
//   - when the endpoint holds a mapping that is not this PEER's (a MAP or a
//     NAT-PMP mapping, which admit every peer, or a lease under another
//     nonce), the peer already reaches it through that mapping: the answer
//     reports its external port, with the lifetime asked for capped by the
//     lease's, and the lease is left as it is (a PEER never shortens,
//     filters or deletes a MAP);
//   - otherwise the PEER gets a lease of its own (its nonce, the suggested
//     external port when free) whose filters admit the peer's address and
//     port: a PEER of the same nonce to another peer adds that peer to the
//     filters (one external port for all of the endpoint's peers), a
//     renewal renews the lease, and lifetime 0 takes the peer out of the
//     filters, deleting the lease with the last one (§15).
func (s *Server) peer(ctx context.Context, client netip.Addr, req *pcp.Request, pkt []byte, epoch uint32, out []byte) []byte {
	p := req.Peer
	log := s.logger()
	internal, code := s.target(client, &req.Options)
	var proto gateway.Protocol
	if code == pcp.Success {
		proto, code = protocolOf(p.Protocol)
	}
	remote := plain(p.RemoteAddr)
	switch {
	case code != pcp.Success:
	case p.InternalPort == 0 || p.RemotePort == 0 || !remote.IsValid() || remote.IsUnspecified():
		// §12.1: a PEER names one flow; a zero port or address does
		// not.
		code = pcp.MalformedRequest
	case remote.Is4() != internal.Is4():
		// No NAT64 here: the peer must be of the internal family.
		code = pcp.NotAuthorized
	}
	ext := s.externalAddress(internal)
	if code == pcp.Success && !ext.IsValid() {
		code = pcp.NetworkFailure
	}
	if code != pcp.Success {
		log.Debug("pcp: refused PEER", "client", client, "internal", internal, "proto", p.Protocol, "port", p.InternalPort, "result", code)
		return s.refuse(out, pkt, code, epoch)
	}
	endpoint := netip.AddrPortFrom(internal, p.InternalPort)
	resp := pcp.Response{Opcode: pcp.OpPeer, Epoch: epoch, Peer: p, Options: echoed(req.Options)}
	resp.Peer.ExternalAddr = ext
	lifetime := req.Lifetime
	own := gateway.Filter{Remote: netip.PrefixFrom(remote, remote.BitLen()), Port: p.RemotePort}
	filters := []gateway.Filter{own}
	l, found := s.Table.Lookup(proto, endpoint)
	switch {
	case found && (l.Nonce != p.Nonce || len(l.Filters) == 0):
		resp.Peer.ExternalPort = l.ExternalPort
		if lifetime != 0 {
			resp.Lifetime = lifetime
			if !l.Expires.IsZero() {
				resp.Lifetime = min(lifetime, seconds(l.Lifetime(time.Now())))
			}
		}
		return s.respond(out, resp)
	case found && lifetime == 0:
		filters = slices.DeleteFunc(slices.Clone(l.Filters), func(f gateway.Filter) bool { return f == own })
		if len(filters) > 0 {
			// The other peers stay, for as long as before.
			lifetime = max(1, seconds(l.Lifetime(time.Now())))
		}
	case found && len(l.Filters) < MaxFilters && !slices.Contains(l.Filters, own):
		filters = append(slices.Clone(l.Filters), own)
	case found:
		filters = l.Filters
	}
	if lifetime == 0 || len(filters) == 0 {
		if _, err := s.Table.DeleteChecked(ctx, proto, endpoint, p.Nonce); err != nil && !errors.Is(err, gateway.ErrNotFound) {
			return s.refuse(out, pkt, resultOf(err, false), epoch)
		}
		return s.respond(out, resp)
	}
	res, err := s.Table.Map(ctx, gateway.MapRequest{
		Protocol:     proto,
		Internal:     endpoint,
		ExternalPort: p.ExternalPort,
		Lifetime:     time.Duration(lifetime) * time.Second,
		Nonce:        p.Nonce,
		CheckNonce:   true,
		Filters:      filters,
		Origin:       gateway.OriginPCP,
		Description:  req.Options.Description,
		Requester:    client,
	})
	if err != nil {
		code := resultOf(err, false)
		log.Debug("pcp: refused PEER", "client", client, "internal", endpoint, "proto", proto, "result", code, "err", err)
		return s.refuse(out, pkt, code, epoch)
	}
	resp.Peer.ExternalPort = res.ExternalPort
	if req.Lifetime != 0 {
		resp.Lifetime = seconds(res.Granted)
	}
	return s.respond(out, resp)
}
