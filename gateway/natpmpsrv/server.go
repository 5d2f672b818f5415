// Package natpmpsrv is the NAT-PMP front-end of the gateway (RFC 6886): it
// reads requests from the LAN, turns them into calls on the lease core and
// answers them, and announces the external address on every LAN link. It
// owns the sockets of port 5351, which NAT-PMP shares with PCP (RFC 6887
// §9): packets of another version than 0 go to a PCP handler, and the
// LAN's IPv6 addresses are served by that handler alone.
package natpmpsrv

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/natpmp"
	"github.com/portlease/portlease/pcp"
)

// maxPacket bounds what is read of one datagram. Requests are at most 12
// bytes; an unsupported opcode's request is echoed back whole (RFC 6886
// §3.5), and 1100 bytes is what RFC 6887 §7 allows a PCP message, the
// largest a client of either protocol sends.
const maxPacket = 1100

// readLen is the room one datagram is read into: a word more than
// maxPacket, so that a longer datagram reads as longer than 1100 bytes and is
// refused as such (RFC 6887 §7: MALFORMED_REQUEST) instead of being cut to a
// length that may parse.
const readLen = maxPacket + 4

// DefaultWorkers is how many requests a server handles at once when
// Server.Workers is zero. Requests in progress wait for the firewall
// together, so that their kernel changes share one transaction.
const DefaultWorkers = 64

// Server answers NAT-PMP requests. Set its fields before the first Serve.
type Server struct {
	// Table is the lease core. Required.
	Table *gateway.Table
	// Logger receives refusals and malformed packets at debug level and
	// failures at error level; the core logs grants itself. Nil discards.
	Logger *slog.Logger
	// Workers bounds the requests in progress per listener. Zero means
	// DefaultWorkers.
	Workers int
	// PCP answers the packets whose version byte is not NAT-PMP's 0 (RFC
	// 6887 §9: PCP's 2, and every other version, which it refuses with
	// UNSUPP_VERSION), and every packet of an IPv6 socket. Nil: NAT-PMP
	// alone, which answers other versions with its "unsupported version"
	// (RFC 6886 §3.5), and no IPv6 sockets.
	PCP PCP
	// Limiter bounds the requests of each source address, NAT-PMP and
	// PCP together (gateway/ratelimit.Limiter). A request over the rate
	// is refused with NAT-PMP's result 4, Out of resources (RFC 6886
	// §3.5), or PCP's NO_RESOURCES with the short error lifetime (RFC
	// 6887 §7.4), and reaches neither the core nor the PCP handler. Nil:
	// no limit.
	Limiter RequestLimiter
	// Latency, when set, observes the time from the read of each NAT-PMP
	// request to the write of its answer; PCPLatency the same for the
	// requests answered by PCP. A request without an answer is not
	// observed. Nil: nothing.
	Latency, PCPLatency Latency

	mu        sync.Mutex
	listeners map[*listener]struct{}
	announce  context.CancelFunc
	closed    bool
	wg        sync.WaitGroup
}

// PCP is the PCP front-end (gateway/pcpsrv.Server) as this package uses
// it.
type PCP interface {
	// Handle answers the request pkt that arrived from src to dst and
	// returns the reply appended to out, or nil for none.
	Handle(ctx context.Context, pkt []byte, src, dst netip.AddrPort, out []byte) []byte
	// Announcement appends the unsolicited ANNOUNCE (RFC 6887 §14.1.3)
	// to out; Announce sends it with NAT-PMP's announcements.
	Announcement(out []byte) []byte
}

// RequestLimiter decides whether a host may make one more request now.
type RequestLimiter interface {
	Allow(host netip.Addr) bool
}

type job struct {
	buf  [readLen]byte
	n    int
	src  netip.AddrPort
	dst  netip.AddrPort
	read time.Time // when it was read; zero unless observing
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("natpmpsrv: server closed")

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// Serve answers requests that arrive on conn through interface ifindex,
// until Shutdown. conn must be bound to the gateway's address on that
// interface, port 5351, and subnet is that address's on-link prefix (the
// address with its prefix length): a request whose source is outside it (on
// an IPv6 socket: outside it and not link-local) gets no answer, so that a
// spoofed source or a host of another subnet sharing the link cannot map.
// Packets that arrive through any other interface are ignored: the gateway
// never answers the WAN side (RFC 6886 §3: "the NAT gateway MUST NOT accept
// mapping requests destined to the NAT gateway's external IP address or
// received on its external network interface").
// Announcements (Announce) go out through conn on ifindex.
//
// Closing conn ends this Serve alone (with the error of the read), so that
// a daemon can stop serving one LAN address and keep the others.
//
// conn may be bound to an IPv6 address: its packets all go to the PCP
// handler, which must be set.
func (s *Server) Serve(conn *net.UDPConn, ifindex int, subnet netip.Prefix) error {
	if !subnet.IsValid() {
		return errors.New("natpmpsrv: Serve needs the subnet of the address served")
	}
	l, err := newListener(conn, ifindex, subnet)
	if err != nil {
		return err
	}
	if l.v6 != nil && s.PCP == nil {
		return errors.New("natpmpsrv: an IPv6 socket is served by PCP, and the server has no PCP handler")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = make(map[*listener]struct{})
	}
	s.listeners[l] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()

	workers := s.Workers
	if workers <= 0 {
		workers = DefaultWorkers
	}
	free := make(chan *job, workers)
	for range workers {
		free <- new(job)
	}
	todo := make(chan *job)
	var offLink offLinkLog
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			out := make([]byte, 0, maxPacket)
			for j := range todo {
				out = s.handle(context.Background(), l, j, out[:0])
				s.observe(j, out)
				free <- j
			}
		})
	}
	defer wg.Wait()
	defer close(todo)

	for {
		j := <-free
		n, src, dst, ok, err := l.read(j.buf[:])
		if err != nil {
			free <- j
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		if !ok {
			free <- j
			continue
		}
		if !l.onLink(src.Addr()) {
			free <- j
			offLink.note(s.logger(), src, l.subnet)
			continue
		}
		j.n, j.src, j.dst = n, src, dst
		if s.observing() {
			j.read = time.Now()
		}
		todo <- j
	}
}

// handle answers one request, appending the reply to out.
func (s *Server) handle(ctx context.Context, l *listener, j *job, out []byte) []byte {
	pkt := j.buf[:j.n]
	src := netip.AddrPortFrom(j.src.Addr().Unmap(), j.src.Port())
	isPCP := s.PCP != nil && (l.v6 != nil || len(pkt) > 0 && pkt[0] != natpmp.Version)
	if s.Limiter != nil && !s.Limiter.Allow(src.Addr()) {
		out = s.overRate(isPCP, pkt, out)
		if len(out) > 0 {
			s.reply(l, out, src)
		}
		return out
	}
	if isPCP {
		r := s.PCP.Handle(ctx, pkt, src, j.dst, out)
		if r == nil {
			return out
		}
		s.reply(l, r, src)
		return r
	}
	log := s.logger()
	epoch := s.Table.Epoch()
	req, err := natpmp.ParseRequest(pkt)
	if err != nil {
		var re *natpmp.RequestError
		if !errors.As(err, &re) || !re.Reply {
			log.Debug("ignored packet", "client", src, "len", len(pkt), "err", err)
			return out
		}
		log.Debug("refused malformed request", "client", src, "len", len(pkt), "result", re.Code, "err", err)
		out = natpmp.AppendErrorResponse(out, re.Op, re.Code, epoch, pkt)
		s.reply(l, out, src)
		return out
	}
	switch req.Opcode {
	case natpmp.OpExternalAddress:
		resp := natpmp.ExternalAddressResponse{Epoch: epoch, Address: s.Table.ExternalAddress()}
		if !resp.Address.IsValid() {
			// RFC 6886 §3.2: "the NAT gateway ... has no external
			// address" is result 3, Network Failure, address zero.
			resp.ResultCode = natpmp.NetworkFailure
			resp.Address = netip.IPv4Unspecified()
		}
		out, _ = resp.AppendBinary(out)
	case natpmp.OpMapUDP, natpmp.OpMapTCP:
		out = s.mapping(ctx, src, req.Mapping, epoch, out)
	}
	s.reply(l, out, src)
	return out
}

// overRate appends the refusal of a request over its host's rate: result 4,
// Out of resources, for a NAT-PMP request (RFC 6886 §3.5), NO_RESOURCES with
// the short error lifetime for a PCP one (RFC 6887 §7.4: "the server is
// temporarily out of resources"). A packet that is no well-formed request of
// either gets nothing: a host over its rate is not owed the other answers.
func (s *Server) overRate(isPCP bool, pkt, out []byte) []byte {
	epoch := s.Table.Epoch()
	if isPCP {
		if len(pkt) < pcp.HeaderLen || len(pkt)%4 != 0 || pkt[0] != pcp.Version || pkt[1]&pcp.ResponseBit != 0 {
			return out
		}
		return pcp.AppendErrorResponse(out, pkt, pcp.NoResources, pcp.NoResources.ErrorLifetime(), epoch)
	}
	req, err := natpmp.ParseRequest(pkt)
	if err != nil {
		return out
	}
	return natpmp.AppendErrorResponse(out, req.Opcode, natpmp.OutOfResources, epoch, pkt)
}

// mapping serves a mapping request (RFC 6886 §3.3) or a deletion (§3.4).
func (s *Server) mapping(ctx context.Context, src netip.AddrPort, req natpmp.MappingRequest, epoch uint32, out []byte) []byte {
	proto := gateway.UDP
	if req.Opcode == natpmp.OpMapTCP {
		proto = gateway.TCP
	}
	resp := natpmp.MappingResponse{Opcode: req.Opcode, Epoch: epoch, InternalPort: req.InternalPort}
	client := src.Addr()
	log := s.logger()
	switch {
	case !client.Is4():
		resp.ResultCode = natpmp.NotAuthorized
	case req.IsDelete() && req.InternalPort == 0:
		// §3.4: internal port 0 and lifetime 0 delete all of the
		// client's mappings of this protocol made over NAT-PMP.
		gone := s.Table.DeleteClient(ctx, proto, client, gateway.OriginNATPMP)
		log.Debug("deleted all", "client", client, "proto", proto, "count", len(gone))
	case req.IsDelete():
		// §3.4: deleting a mapping that does not exist succeeds too;
		// the answer carries external port and lifetime zero.
		_, err := s.Table.Delete(ctx, proto, netip.AddrPortFrom(client, req.InternalPort))
		if err != nil && !errors.Is(err, gateway.ErrNotFound) {
			resp.ResultCode = resultOf(err)
		}
	case !s.Table.ExternalAddress().IsValid():
		resp.ResultCode = natpmp.NetworkFailure
		log.Debug("refused: no external address", "client", client)
	default:
		res, err := s.Table.Map(ctx, gateway.MapRequest{
			Protocol:     proto,
			Internal:     netip.AddrPortFrom(client, req.InternalPort),
			ExternalPort: req.SuggestedExternalPort,
			Lifetime:     time.Duration(req.Lifetime) * time.Second,
			Origin:       gateway.OriginNATPMP,
		})
		if err != nil {
			resp.ResultCode = resultOf(err)
			break
		}
		resp.ExternalPort = res.ExternalPort
		resp.Lifetime = uint32(res.Granted / time.Second)
	}
	out, _ = resp.AppendBinary(out)
	return out
}

// resultOf maps a lease core error to a NAT-PMP result code (RFC 6886 §3.5).
func resultOf(err error) natpmp.ResultCode {
	switch {
	case errors.Is(err, gateway.ErrOutOfResources), errors.Is(err, gateway.ErrHostQuota):
		return natpmp.OutOfResources
	case errors.Is(err, gateway.ErrFirewall), errors.Is(err, gateway.ErrClosed):
		return natpmp.NetworkFailure
	default:
		return natpmp.NotAuthorized
	}
}

func (s *Server) reply(l *listener, b []byte, to netip.AddrPort) {
	if _, err := l.conn.WriteToUDPAddrPort(b, to); err != nil {
		s.logger().Debug("reply not sent", "client", to, "err", err)
	}
}

// Announce sends the external address to 224.0.0.1:5350 on every link the
// server listens on, ten times, the first at once and then at intervals
// doubling from 250 ms (RFC 6886 §3.2.1). With a PCP handler it sends an
// unsolicited ANNOUNCE with each, to 224.0.0.1:5350 on the IPv4 sockets and
// [ff02::1]:5350 on the IPv6 ones (RFC 6887 §14.1.3, which asks for the
// same schedule), also while there is no external address. A new call
// restarts the schedule with the address then current; Shutdown stops it.
func (s *Server) Announce() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.announce != nil {
		s.announce()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.announce = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.announceLoop(ctx)
	}()
}

func (s *Server) announceLoop(ctx context.Context) {
	dst := natpmp.AnnounceAddr()
	pcp4, pcp6 := pcp.AnnounceAddrs()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for _, d := range natpmp.AnnounceIntervals() {
		timer.Reset(d)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		var msg, announce []byte
		if addr := s.Table.ExternalAddress(); addr.IsValid() {
			msg, _ = natpmp.ExternalAddressResponse{Epoch: s.Table.Epoch(), Address: addr}.AppendBinary(nil)
		}
		if s.PCP != nil {
			announce = s.PCP.Announcement(nil)
		}
		if msg == nil && announce == nil {
			return
		}
		s.mu.Lock()
		for l := range s.listeners {
			if l.v6 != nil {
				s.multicast(l, announce, pcp6)
				continue
			}
			s.multicast(l, msg, dst)
			s.multicast(l, announce, pcp4)
		}
		s.mu.Unlock()
	}
}

// multicast sends msg, unless nil, to dst through l.
func (s *Server) multicast(l *listener, msg []byte, dst netip.AddrPort) {
	if msg == nil {
		return
	}
	if err := l.multicast(msg, dst); err != nil {
		s.logger().Debug("announcement not sent", "ifindex", l.ifindex, "to", dst, "err", err)
	}
}

// Shutdown stops every Serve and announcement and waits for requests in
// progress to finish, or for ctx to be done. It is safe to call twice.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	if s.announce != nil {
		s.announce()
	}
	for l := range s.listeners {
		_ = l.conn.SetReadDeadline(time.Unix(1, 0))
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
