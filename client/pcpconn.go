package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"

	"github.com/portlease/portlease/pcp"
)

// Retransmission of PCP requests (RFC 6887 §8.1.1): "IRT 3 seconds, MRC 0,
// MRT 1024 seconds, MRD 0": the first wait is IRT, each next one doubles up
// to MRT, each with a random factor of ±10%, and a client that must not
// wait forever bounds the whole.
const (
	pcpIRT = 3 * time.Second
	pcpMRT = 1024 * time.Second
	// pcpProbeWait bounds a probe (ANNOUNCE): a PCP server on a LAN
	// answers within milliseconds, one that does not speak PCP answers
	// NAT-PMP's UNSUPP_VERSION or an ICMP port unreachable at once.
	pcpProbeWait = pcpIRT
	// pcpMapWait bounds a mapping request: three transmissions, about
	// 3 + 6 + 12 s.
	pcpMapWait = 21 * time.Second
	// pcpDeleteWait bounds a deletion, as a probe.
	pcpDeleteWait = pcpIRT
)

// pcpRetransmit returns the wait after a transmission whose previous wait
// was prev (zero for the first): RT = (1+RAND)*IRT, then
// RT = (1+RAND)*MIN(2*RTprev, MRT), RAND uniform in [-0.1, +0.1] (§8.1.1,
// after RFC 3315 §14).
func pcpRetransmit(prev time.Duration) time.Duration {
	base := pcpIRT
	if prev > 0 {
		base = min(2*prev, pcpMRT)
	}
	return time.Duration(float64(base) * (0.9 + 0.2*rand.Float64()))
}

// errNATPMPOnly: a NAT-PMP server answered a PCP request with its own
// version 0 and UNSUPP_VERSION (RFC 6887 §9, RFC 6886 §3.5).
var errNATPMPOnly = errors.New("the gateway speaks NAT-PMP only (it answered PCP with version 0)")

// pcpConn is the PCP client side of one gateway from one of this machine's
// addresses (a mapping's internal address, RFC 6887 §11.1: "the PCP
// client's IP address"). One request is in flight at a time, so that the
// epochs of the answers come in order.
type pcpConn struct {
	udpSocket
	log *slog.Logger

	tx sync.Mutex
}

// pcpAnswer is a response with when it arrived and when its request was
// first sent, for the epoch checks of §8.5.
type pcpAnswer struct {
	resp pcp.Response
	at   time.Time
	sent time.Time
}

// transact sends req on the schedule of §8.1.1 for at most wait and returns
// the first response to it (§8.2: same opcode; for MAP the same nonce,
// protocol and internal port). A NAT-PMP server's answer fails with
// ErrUnsupported, an ICMP port unreachable with ErrNoAnswer at once, silence
// with ErrNoAnswer after wait.
func (p *pcpConn) transact(ctx context.Context, req pcp.Request, wait time.Duration) (pcpAnswer, error) {
	p.tx.Lock()
	defer p.tx.Unlock()
	conn, err := p.socket("PCP")
	if err != nil {
		return pcpAnswer{}, err
	}
	req.Client = p.local.WithZone("")
	msg, err := req.AppendBinary(nil)
	if err != nil {
		return pcpAnswer{}, fmt.Errorf("client: PCP request: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	buf := make([]byte, pcp.MaxMessageLen+4)
	sent := time.Now()
	end := sent.Add(wait)
	refused := 0
	var rt time.Duration
	for tries := 1; ; tries++ {
		if _, err := conn.Write(msg); err != nil {
			if !isRefused(err) {
				if ctx.Err() != nil {
					return pcpAnswer{}, ctx.Err()
				}
				return pcpAnswer{}, fmt.Errorf("client: send to %s: %w", p.server, err)
			}
			if refused++; refused >= 2 {
				return pcpAnswer{}, fmt.Errorf("%w: %s: port unreachable", ErrNoAnswer, p.server)
			}
		}
		rt = pcpRetransmit(rt)
		deadline := time.Now().Add(rt)
		last := !deadline.Before(end)
		if last {
			deadline = end
		}
		if err := conn.SetReadDeadline(deadline); err != nil {
			return pcpAnswer{}, err
		}
		if err := ctx.Err(); err != nil {
			return pcpAnswer{}, err
		}
		a, err := p.receive(ctx, conn, buf, req)
		switch {
		case err == nil:
			a.sent = sent
			return a, nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			if last {
				return pcpAnswer{}, fmt.Errorf("%w: %s: no PCP answer after %d tries", ErrNoAnswer, p.server, tries)
			}
		case isRefused(err):
			if refused++; refused >= 2 {
				return pcpAnswer{}, fmt.Errorf("%w: %s: port unreachable", ErrNoAnswer, p.server)
			}
		default:
			return pcpAnswer{}, err
		}
	}
}

// receive reads until the answer to req, the read deadline or an error.
func (p *pcpConn) receive(ctx context.Context, conn *net.UDPConn, buf []byte, req pcp.Request) (pcpAnswer, error) {
	for {
		n, err := conn.Read(buf)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return pcpAnswer{}, ctx.Err()
			case errors.Is(err, net.ErrClosed):
				return pcpAnswer{}, ErrClosed
			case errors.Is(err, os.ErrDeadlineExceeded), isRefused(err):
				return pcpAnswer{}, err
			}
			return pcpAnswer{}, fmt.Errorf("client: receive from %s: %w", p.server, err)
		}
		at := time.Now()
		b := buf[:n]
		if len(b) >= 2 && b[0] == 0 && b[1]&pcp.ResponseBit != 0 {
			return pcpAnswer{}, fmt.Errorf("%w: %w", ErrUnsupported, errNATPMPOnly)
		}
		var resp pcp.Response
		if err := resp.UnmarshalBinary(b); err != nil {
			p.log.Debug("ignoring a malformed PCP packet", "gateway", p.server, "err", err, "len", n)
			continue
		}
		if !answers(resp, req) {
			p.log.Debug("ignoring a PCP answer to another request", "gateway", p.server, "opcode", resp.Opcode)
			continue
		}
		return pcpAnswer{resp: resp, at: at}, nil
	}
}

// answers reports whether resp is the answer to req (§8.2: "validates that
// the Opcode, ... and, for MAP and PEER, the Mapping Nonce, Protocol and
// Internal Port match").
func answers(resp pcp.Response, req pcp.Request) bool {
	if resp.Opcode&^pcp.ResponseBit != req.Opcode {
		return false
	}
	if req.Opcode != pcp.OpMap {
		return true
	}
	return resp.Map.Nonce == req.Map.Nonce && resp.Map.Protocol == req.Map.Protocol &&
		resp.Map.InternalPort == req.Map.InternalPort
}
