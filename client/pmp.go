package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/portlease/portlease/natpmp"
)

// How many times a NAT-PMP request is sent (RFC 6886 §3.1 schedule: 250 ms,
// then doubling). The RFC's nine tries take over two minutes, which is a
// fine last resort for a keeper but not for telling whether a router speaks
// NAT-PMP at all; §3.1 itself lets a deletion give up sooner.
const (
	// probeTries: 250+500+1000 ms. A router that speaks NAT-PMP answers
	// within milliseconds on a LAN.
	probeTries = 3
	// mapTries: up to 250 ms .. 8 s, 15.75 s in all.
	mapTries = 6
	// deleteTries: as probeTries.
	deleteTries = 3
)

// pmpConn is the NAT-PMP client side of one gateway: a udpSocket to the
// gateway's port 5351. One request is in flight at a time, so that answers
// and the epochs they carry come in order.
type pmpConn struct {
	udpSocket
	log *slog.Logger

	// tx serializes transactions.
	tx sync.Mutex
}

// pmpAnswer is a response with the moment it arrived, for the epoch check
// of §3.6.
type pmpAnswer struct {
	resp natpmp.Response
	at   time.Time
	// sent is when the request was first sent.
	sent time.Time
}

// transact sends req up to tries times on the schedule of RFC 6886 §3.1 and
// returns the first response to it: opcode op and, for a mapping, internal
// port iport (a late answer to an earlier request is skipped). A PCP server's
// answer fails with natpmp.ErrPCPServer, an ICMP port unreachable with
// ErrNoAnswer at once, silence with ErrNoAnswer after the last try.
func (p *pmpConn) transact(ctx context.Context, req []byte, op natpmp.Opcode, iport uint16, tries int) (pmpAnswer, error) {
	p.tx.Lock()
	defer p.tx.Unlock()
	conn, err := p.socket("NAT-PMP")
	if err != nil {
		return pmpAnswer{}, err
	}
	// Cancelling ctx unblocks the read; the check after each
	// SetReadDeadline below closes the race with a later deadline.
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	buf := make([]byte, 64) // every NAT-PMP response fits (16 bytes; longer ones are not ours)
	intervals := natpmp.RetransmitIntervals()
	tries = min(tries, len(intervals))
	// An ICMP port unreachable is reported by the next send or receive on
	// the socket, possibly one left from an earlier request (the gateway
	// was restarting): only two in a row mean that nothing listens.
	refused := 0
	sent := time.Now()
	unreachable := func() bool {
		refused++
		return refused >= 2
	}
	for try := range tries {
		if _, err := conn.Write(req); err != nil {
			if isRefused(err) {
				if unreachable() {
					return pmpAnswer{}, fmt.Errorf("%w: %s: port unreachable", ErrNoAnswer, p.server)
				}
				continue
			}
			if ctx.Err() != nil {
				return pmpAnswer{}, ctx.Err()
			}
			return pmpAnswer{}, fmt.Errorf("client: send to %s: %w", p.server, err)
		}
		deadline := time.Now().Add(intervals[try])
		if err := conn.SetReadDeadline(deadline); err != nil {
			return pmpAnswer{}, err
		}
		if err := ctx.Err(); err != nil {
			return pmpAnswer{}, err
		}
		for {
			n, err := conn.Read(buf)
			if err != nil {
				if ctx.Err() != nil {
					return pmpAnswer{}, ctx.Err()
				}
				if isRefused(err) {
					if unreachable() {
						return pmpAnswer{}, fmt.Errorf("%w: %s: port unreachable", ErrNoAnswer, p.server)
					}
					break // retransmit at once
				}
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break // retransmit
				}
				if errors.Is(err, net.ErrClosed) {
					return pmpAnswer{}, ErrClosed
				}
				return pmpAnswer{}, fmt.Errorf("client: receive from %s: %w", p.server, err)
			}
			at := time.Now()
			resp, err := natpmp.ParseResponse(buf[:n])
			if errors.Is(err, natpmp.ErrPCPServer) {
				return pmpAnswer{}, err
			}
			if err != nil {
				p.log.Debug("ignoring a malformed NAT-PMP packet", "gateway", p.server, "err", err, "len", n)
				continue
			}
			// A failure may come as the 8-byte header alone (§3.5),
			// without the internal port to match.
			short := resp.Header.ResultCode != natpmp.Success && resp.Mapping.InternalPort == 0
			if resp.Header.Opcode != op || (op != natpmp.OpExternalAddress && resp.Mapping.InternalPort != iport && !short) {
				p.log.Debug("ignoring a NAT-PMP answer to another request", "gateway", p.server,
					"opcode", resp.Header.Opcode, "internal_port", resp.Mapping.InternalPort)
				continue
			}
			return pmpAnswer{resp: resp, at: at, sent: sent}, nil
		}
	}
	return pmpAnswer{}, fmt.Errorf("%w: %s: no NAT-PMP answer after %d tries", ErrNoAnswer, p.server, tries)
}

// externalAddress asks for the external address (RFC 6886 §3.2). A non-zero
// result code is returned in the answer, not as an error.
func (p *pmpConn) externalAddress(ctx context.Context, tries int) (pmpAnswer, error) {
	req, _ := natpmp.ExternalAddressRequest{}.AppendBinary(nil)
	return p.transact(ctx, req, natpmp.OpExternalAddress, 0, tries)
}

// mapPort sends a mapping request (RFC 6886 §3.3), or a deletion when
// lifetime is 0 (§3.4).
func (p *pmpConn) mapPort(ctx context.Context, proto Protocol, iport, eport uint16, lifetime uint32, tries int) (pmpAnswer, error) {
	op := natpmp.OpMapTCP
	if proto == UDP {
		op = natpmp.OpMapUDP
	}
	req, err := natpmp.MappingRequest{Opcode: op, InternalPort: iport, SuggestedExternalPort: eport, Lifetime: lifetime}.AppendBinary(nil)
	if err != nil {
		return pmpAnswer{}, err
	}
	return p.transact(ctx, req, op, iport, tries)
}

// isRefused reports whether err is an ICMP port unreachable reported on a
// connected UDP socket: nothing listens on the gateway's port.
func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}

// lifetimeSeconds converts a requested lifetime to whole seconds, at least 1,
// at most what the 32-bit field holds.
func lifetimeSeconds(d time.Duration) uint32 {
	s := (d + time.Second - 1) / time.Second
	switch {
	case s < 1:
		return 1
	case s > 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(s)
}
