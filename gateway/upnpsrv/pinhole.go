package upnpsrv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/upnp"
)

// The actions of WANIPv6FirewallControl:1 on the pinhole leases of the
// core: a pinhole opened here is the same lease as one opened over PCP for
// the same protocol and internal endpoint, and the reverse.
//
// Refusals, besides those of upnp.PinholeArgs (402, 601):
//
//	606 Action not authorized   secure mode: an internal client that is not the requesting host
//	                            (by address, by link-layer address, or by the third-party rule);
//	                            the permission rules deny the endpoint
//	701 PinholeSpaceExhausted   the core has no room for another lease
//	704 NoSuchEntry             no live pinhole has the UniqueID
//	705 ProtocolNotSupported    a protocol other than TCP (6) and UDP (17)
//	706 InternalPortWildcardingNotAllowed   InternalPort 0
//	707 ProtocolWildcardingNotAllowed       Protocol 65535
//	708 WildCardNotPermittedInSrcIP         an empty or "*" InternalClient
//	709 NoTrafficReceived       CheckPinholeWorking of a pinhole no packet went through (packet counts known)
//	501 Action Failed           the kernel refused the change; the endpoint has a pinhole with
//	                            another RemoteHost or RemotePort; packet counts unknown (GetPinholePackets)
//
// 702 FirewallDisabled and 703 InboundPinholeNotAllowed are never answered:
// the firewall is on and pinholes are allowed (GetFirewallStatus).

// getFirewallStatus is GetFirewallStatus: the firewall is enabled and
// control points may open inbound pinholes.
func (s *Server) getFirewallStatus(context.Context, *request) ([]upnp.Arg, *upnp.Fault) {
	var args []upnp.Arg
	for _, p := range s.firewallEvented() {
		args = append(args, upnp.Arg{Name: p.name, Value: p.value})
	}
	return args, nil
}

// firewallEvented are the evented variables of WANIPv6FirewallControl:1,
// FirewallEnabled and InboundPinholeAllowed, which do not change.
func (s *Server) firewallEvented() []property {
	return []property{{upnp.ArgFirewallEnabled, "1"}, {upnp.ArgInboundPinholeAllowed, "1"}}
}

// pinholeProtocol returns the core's protocol for A_ARG_TYPE_Protocol: 707
// for the wildcard unless wildcard is allowed (gateway.Protocol 0 then),
// 705 for a protocol other than TCP and UDP.
func pinholeProtocol(p uint16, wildcard bool) (gateway.Protocol, *upnp.Fault) {
	switch p {
	case upnp.PinholeTCP:
		return gateway.TCP, nil
	case upnp.PinholeUDP:
		return gateway.UDP, nil
	case upnp.PinholeAnyProtocol:
		if wildcard {
			return 0, nil
		}
		return 0, fault(upnp.ProtocolWildcardingNotAllowed)
	}
	return 0, fault(upnp.ProtocolNotSupported, "ProtocolNotSupported: protocol "+strconv.Itoa(int(p)))
}

// pinholeAddr reports whether a can be a pinhole's internal client: a
// unicast IPv6 address that is neither link-local nor loopback (traffic
// from the WAN cannot reach those).
func pinholeAddr(a netip.Addr) bool {
	return a.Is6() && !a.Is4In6() && !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast() &&
		!a.IsLinkLocalUnicast()
}

// addPinhole is AddPinhole: a pinhole for InternalClient's InternalPort
// and Protocol, admitting RemoteHost (any when empty or "*") and
// RemotePort (any when 0), for LeaseTime seconds (1 to 86400, capped by
// the policy); its UniqueID is returned. The same request again, or any
// request for the same protocol and internal endpoint with the same remote
// host and port, renews the pinhole and returns its UniqueID (the template:
// a pinhole that exists is extended, not duplicated); one with another
// remote host or port is 501, since one pinhole serves an endpoint.
func (s *Server) addPinhole(ctx context.Context, rq *request) ([]upnp.Arg, *upnp.Fault) {
	p, err := upnp.PinholeArgs(rq.act)
	if err != nil {
		return nil, asFault(err)
	}
	proto, f := pinholeProtocol(p.Protocol, false)
	switch {
	case f != nil:
		return nil, f
	case p.InternalPort == 0:
		return nil, fault(upnp.InternalPortWildcardingNotAllowed)
	case !p.InternalClient.IsValid():
		return nil, fault(upnp.WildCardNotPermittedInSrcIP6)
	case !pinholeAddr(p.InternalClient):
		return nil, fault(upnp.InvalidArgs, "Invalid Args: InternalClient is not a global IPv6 unicast address")
	case p.RemoteHost.IsValid() && (p.RemoteHost.IsMulticast() || p.RemoteHost.IsLoopback()):
		return nil, fault(upnp.InvalidArgs, "Invalid Args: RemoteHost is not a unicast address")
	}
	if !s.mayActFor(rq.client, p.InternalClient) {
		return nil, fault(upnp.ActionNotAuthorized, "Action not authorized: InternalClient is not the requesting host")
	}
	req := gateway.MapRequest{
		Protocol:     proto,
		Internal:     netip.AddrPortFrom(p.InternalClient, p.InternalPort),
		ExternalPort: p.InternalPort,
		Exact:        true,
		Lifetime:     time.Duration(p.LeaseTime) * time.Second,
		Origin:       gateway.OriginUPnP,
		Filters:      pinholeFilters(p),
		Requester:    rq.client,
	}
	res, err := s.table.Map(ctx, req)
	if err != nil {
		return nil, pinholeFault(err)
	}
	if !res.Pinhole || res.PinholeID == 0 {
		s.log.Error("pinhole without UniqueID", "internal", req.Internal, "protocol", proto)
		return nil, fault(upnp.ActionFailed)
	}
	return []upnp.Arg{{Name: upnp.ArgUniqueID, Value: strconv.Itoa(int(res.PinholeID))}}, nil
}

// pinholeFilters returns the filter of RemoteHost and RemotePort: none
// for the wildcards (an unspecified RemoteHost, "::", is any too).
func pinholeFilters(p upnp.Pinhole) []gateway.Filter {
	remote := netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	if p.RemoteHost.IsValid() && !p.RemoteHost.IsUnspecified() {
		remote = netip.PrefixFrom(p.RemoteHost, 128)
	}
	if remote.Bits() == 0 && p.RemotePort == 0 {
		return nil
	}
	return []gateway.Filter{{Remote: remote, Port: p.RemotePort}}
}

// pinholeFault translates a lease core error into an error code of
// AddPinhole and UpdatePinhole.
func pinholeFault(err error) *upnp.Fault {
	switch {
	case errors.Is(err, gateway.ErrNotFound):
		return fault(upnp.NoSuchEntry)
	case errors.Is(err, gateway.ErrNotAuthorized), errors.Is(err, gateway.ErrNonceMismatch):
		return fault(upnp.ActionNotAuthorized)
	case errors.Is(err, gateway.ErrOutOfResources), errors.Is(err, gateway.ErrHostQuota):
		return fault(upnp.PinholeSpaceExhausted)
	case errors.Is(err, gateway.ErrConflict):
		return fault(upnp.ActionFailed, "Action Failed: the endpoint has a pinhole with another RemoteHost or RemotePort")
	case errors.Is(err, gateway.ErrBadRequest):
		return fault(upnp.InvalidArgs, "Invalid Args: "+err.Error())
	default: // gateway.ErrFirewall, gateway.ErrClosed, a cancelled request
		return fault(upnp.ActionFailed)
	}
}

// asFault returns err, from the upnp package's argument decoders, as a
// fault.
func asFault(err error) *upnp.Fault {
	var f *upnp.Fault
	if errors.As(err, &f) {
		return f
	}
	return fault(upnp.InvalidArgs, "Invalid Args: "+err.Error())
}

// ownPinhole reads the UniqueID of rq and returns its live pinhole: 402
// for a malformed UniqueID, 704 NoSuchEntry when there is none, 606 in
// secure mode when it is another host's.
func (s *Server) ownPinhole(rq *request) (uint16, gateway.Lease, *upnp.Fault) {
	id, err := upnp.UniqueIDArg(rq.act)
	if err != nil {
		return 0, gateway.Lease{}, asFault(err)
	}
	l, ok := s.pinholes.Pinhole(id)
	if !ok || !l.Expires.IsZero() && !time.Now().Before(l.Expires) {
		return 0, gateway.Lease{}, fault(upnp.NoSuchEntry)
	}
	if !s.mayActFor(rq.client, l.Internal.Addr()) {
		return 0, gateway.Lease{}, fault(upnp.ActionNotAuthorized, "Action not authorized: the pinhole is another host's")
	}
	return id, l, nil
}

// updatePinhole is UpdatePinhole: the pinhole gets a lease of NewLeaseTime
// seconds (1 to 86400, capped by the policy) from now.
func (s *Server) updatePinhole(ctx context.Context, rq *request) ([]upnp.Arg, *upnp.Fault) {
	lease, err := upnp.NewLeaseTimeArg(rq.act)
	if err != nil {
		return nil, asFault(err)
	}
	id, _, f := s.ownPinhole(rq)
	if f != nil {
		return nil, f
	}
	if _, err := s.pinholes.UpdatePinhole(ctx, id, time.Duration(lease)*time.Second); err != nil {
		return nil, pinholeFault(err)
	}
	return nil, nil
}

// deletePinhole is DeletePinhole.
func (s *Server) deletePinhole(ctx context.Context, rq *request) ([]upnp.Arg, *upnp.Fault) {
	id, _, f := s.ownPinhole(rq)
	if f != nil {
		return nil, f
	}
	if _, err := s.pinholes.DeletePinhole(ctx, id); err != nil {
		return nil, pinholeFault(err)
	}
	return nil, nil
}

// getPinholePackets is GetPinholePackets: the packets the pinhole let
// through, a ui4 that rolls over past 2^32-1, from Config.PinholePackets;
// without it (the kernel's counts are not read yet) 501 Action Failed, as
// UDA 1.1 §3.2.2 has it for an action the current state prevents, rather
// than a count that would be wrong.
func (s *Server) getPinholePackets(_ context.Context, rq *request) ([]upnp.Arg, *upnp.Fault) {
	_, l, f := s.ownPinhole(rq)
	if f != nil {
		return nil, f
	}
	if s.cfg.PinholePackets == nil {
		return nil, fault(upnp.ActionFailed, "Action Failed: packet counts are not available")
	}
	n, err := s.cfg.PinholePackets(l)
	if err != nil {
		s.log.Debug("pinhole packets", "internal", l.Internal, "err", err)
		return nil, fault(upnp.ActionFailed)
	}
	return []upnp.Arg{{Name: upnp.ArgPinholePackets, Value: strconv.FormatUint(n&0xFFFFFFFF, 10)}}, nil
}

// checkPinholeWorking is CheckPinholeWorking: IsWorking 1 for a live
// pinhole (the kernel holds what the lease table holds: the table applies
// each lease to it, reconciles it and repairs it). When packet counts are
// known, a pinhole that no packet went through yet is 709
// NoTrafficReceived, as the template has it.
func (s *Server) checkPinholeWorking(_ context.Context, rq *request) ([]upnp.Arg, *upnp.Fault) {
	_, l, f := s.ownPinhole(rq)
	if f != nil {
		return nil, f
	}
	if s.cfg.PinholePackets != nil {
		n, err := s.cfg.PinholePackets(l)
		if err == nil && n == 0 {
			return nil, fault(upnp.NoTrafficReceived)
		}
	}
	return []upnp.Arg{{Name: upnp.ArgIsWorking, Value: "1"}}, nil
}

// getOutboundPinholeTimeout is GetOutboundPinholeTimeout: how long the
// gateway keeps the state of an idle outbound flow of the protocol (on
// Linux, connection tracking's timeout of an established TCP connection or
// of a UDP stream), in seconds; for the protocol wildcard the shorter of
// TCP's and UDP's. The addresses and ports do not change it.
func (s *Server) getOutboundPinholeTimeout(_ context.Context, rq *request) ([]upnp.Arg, *upnp.Fault) {
	p, err := upnp.PinholeArgs(rq.act)
	if err != nil {
		return nil, asFault(err)
	}
	proto, f := pinholeProtocol(p.Protocol, true)
	if f != nil {
		return nil, f
	}
	protos := []gateway.Protocol{proto}
	if proto == 0 {
		protos = []gateway.Protocol{gateway.TCP, gateway.UDP}
	}
	var shortest time.Duration
	for i, pr := range protos {
		d, err := s.cfg.OutboundTimeout(pr)
		if err != nil {
			s.log.Debug("outbound timeout", "protocol", pr, "err", err)
			return nil, fault(upnp.ActionFailed)
		}
		if i == 0 || d < shortest {
			shortest = d
		}
	}
	secs := min(uint64(shortest/time.Second), 1<<32-1)
	return []upnp.Arg{{Name: upnp.ArgOutboundPinholeTimeout, Value: strconv.FormatUint(secs, 10)}}, nil
}

// DefaultOutboundTimeout reads connection tracking's timeout of an
// established TCP connection (nf_conntrack_tcp_timeout_established) or of
// a UDP stream (nf_conntrack_udp_timeout_stream) from /proc/sys in the
// network namespace of the calling process.
func DefaultOutboundTimeout(p gateway.Protocol) (time.Duration, error) {
	name := map[gateway.Protocol]string{
		gateway.TCP: "nf_conntrack_tcp_timeout_established",
		gateway.UDP: "nf_conntrack_udp_timeout_stream",
	}[p]
	if name == "" {
		return 0, fmt.Errorf("upnpsrv: outbound timeout of protocol %v", p)
	}
	b, err := os.ReadFile("/proc/sys/net/netfilter/" + name)
	if err != nil {
		return 0, fmt.Errorf("upnpsrv: outbound timeout: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("upnpsrv: outbound timeout %s: %w", name, err)
	}
	return time.Duration(n) * time.Second, nil
}

// mayActFor reports whether client may open or change a pinhole for
// internal: always outside secure mode; in secure mode when internal is
// client's own address, when the neighbour table gives both the same
// link-layer address (another address of the same host: only an address
// of a served LAN prefix is looked up, since a lookup may solicit it), or
// when the third-party rule allows it.
func (s *Server) mayActFor(client, internal netip.Addr) bool {
	client, internal = client.Unmap().WithZone(""), internal.Unmap().WithZone("")
	if s.allowForeign.Load() || client == internal {
		return true
	}
	if s.cfg.MayActFor != nil && s.cfg.MayActFor(client, internal) {
		return true
	}
	if s.cfg.Neighbours == nil || !s.allowed(internal) {
		return false
	}
	hc, err := s.cfg.Neighbours.LinkAddr(client)
	if err != nil {
		s.log.Debug("neighbour of the client", "client", client, "err", err)
		return false
	}
	hi, err := s.cfg.Neighbours.LinkAddr(internal)
	if err != nil {
		s.log.Debug("neighbour of the internal client", "internal", internal, "err", err)
		return false
	}
	return len(hc) > 0 && bytes.Equal(hc, hi)
}

// pinholesOf returns the pinhole side of c, or nil when it has none.
func pinholesOf(c core) pinholeCore {
	p, _ := c.(pinholeCore)
	return p
}
