// Package pcpsrv is the PCP front-end of the gateway (RFC 6887): it turns
// PCP requests into calls on the lease core and answers them. It has no
// sockets of its own: the NAT-PMP front-end reads the shared port 5351 on
// every LAN address and hands it the packets whose version is not NAT-PMP's
// (RFC 6887 §9), and sends the unsolicited ANNOUNCE this package builds
// (Announcement) with its own announcements.
package pcpsrv

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/pcp"
)

// MaxFilters bounds the FILTER options of one MAP request; more get
// EXCESSIVE_REMOTE_PEERS (RFC 6887 §13.3).
const MaxFilters = 32

// Server answers PCP requests. Set its fields before the first Handle; it is
// safe for concurrent use.
type Server struct {
	// Table is the lease core. Required.
	Table *gateway.Table
	// Logger receives refusals and malformed packets at debug level. Nil
	// discards.
	Logger *slog.Logger
	// MayActFor reports whether requester may make mappings for the
	// internal address internal (THIRD_PARTY, RFC 6887 §13.1). Nil allows
	// a host to map for itself only, so that THIRD_PARTY for another
	// address is refused with NOT_AUTHORIZED. The daemon sets it to the
	// lease policy's rule (gateway.Policy.MayActFor).
	MayActFor func(requester, internal netip.Addr) bool
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Server) mayActFor(requester, internal netip.Addr) bool {
	if requester == internal {
		return true
	}
	return s.MayActFor != nil && s.MayActFor(requester, internal)
}

// Handle answers the request pkt that arrived from src to dst (one of the
// gateway's LAN addresses, port 5351) and returns the reply appended to
// out, or nil when the packet must be dropped silently (RFC 6887 §8.3: too
// short to answer, or a response). The checks run in the order of §8.3:
// version (UNSUPP_VERSION, §9), length (MALFORMED_REQUEST), the client's
// address against the packet's source (ADDRESS_MISMATCH), the opcode
// (UNSUPP_OPCODE), the options (UNSUPP_OPTION, MALFORMED_OPTION), then the
// opcode's own processing.
func (s *Server) Handle(ctx context.Context, pkt []byte, src, dst netip.AddrPort, out []byte) []byte {
	client := plain(src.Addr())
	log := s.logger()
	epoch := s.Table.Epoch()
	req, err := pcp.ParseRequest(pkt)
	if err != nil {
		var re *pcp.RequestError
		if !errors.As(err, &re) || !re.Reply {
			log.Debug("pcp: ignored packet", "client", src, "len", len(pkt), "err", err)
			return nil
		}
		code := re.Code
		if checksAddress(code) && plain(pcp.ClientAddress(pkt)) != client {
			code = pcp.AddressMismatch
		}
		log.Debug("pcp: refused malformed request", "client", src, "to", dst, "len", len(pkt), "result", code, "err", err)
		return pcp.AppendErrorResponse(out, pkt, code, code.ErrorLifetime(), epoch)
	}
	if plain(req.Client) != client {
		log.Debug("pcp: refused", "client", src, "field", req.Client, "result", pcp.AddressMismatch)
		return s.refuse(out, pkt, pcp.AddressMismatch, epoch)
	}
	switch req.Opcode {
	case pcp.OpMap:
		return s.mapping(ctx, client, &req, pkt, epoch, out)
	case pcp.OpPeer:
		return s.peer(ctx, client, &req, pkt, epoch, out)
	default:
		// §14.1.1: an ANNOUNCE request is answered at once with
		// SUCCESS and the epoch.
		return s.announcement(out, epoch)
	}
}

// refuse appends the error response of code to the request pkt: the request
// copied, with the response header over it (§8.3, §7.2), which echoes the
// nonce, protocol, ports, addresses and options as §11.4 and §12.4 ask.
func (s *Server) refuse(out, pkt []byte, code pcp.ResultCode, epoch uint32) []byte {
	return pcp.AppendErrorResponse(out, pkt, code, code.ErrorLifetime(), epoch)
}

// checksAddress reports whether a request refused with code has passed the
// checks that §8.3 makes before comparing the client's address with the
// packet's source: version and length. Opcode and option errors come after
// that comparison.
func checksAddress(code pcp.ResultCode) bool {
	switch code {
	case pcp.UnsuppOpcode, pcp.UnsuppOption, pcp.MalformedOption:
		return true
	}
	return false
}

// plain strips what the comparison of addresses must ignore: the IPv4
// mapping and an IPv6 zone.
func plain(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }
