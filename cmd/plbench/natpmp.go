package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/portlease/portlease/natpmp"
)

// maxAnswerLen is the receive buffer of a NAT-PMP client: the longest
// answer is the echo of an unsupported request (RFC 6886 §3.5), which is
// as long as the request; a datagram on the Ethernet MTU fits.
const maxAnswerLen = 1500

// natpmpClient is one NAT-PMP client: its own UDP socket, connected to the
// gateway so that the kernel drops packets from anybody else, and its own
// buffers. After the first request it allocates nothing.
type natpmpClient struct {
	cfg  *config
	conn *net.UDPConn
	req  [natpmp.MappingRequestLen]byte
	buf  [maxAnswerLen]byte
}

// runNATPMP runs the NAT-PMP benchmark of cfg.
func runNATPMP(ctx context.Context, cfg config, progress io.Writer) (*result, error) {
	gw := net.UDPAddrFromAddrPort(netip.AddrPortFrom(cfg.gateway, cfg.port))
	clients := make([]client, cfg.clients)
	for k := range clients {
		conn, err := net.DialUDP("udp", nil, gw)
		if err != nil {
			closeAll(clients)
			return nil, fmt.Errorf("plbench: socket to %v: %w", gw, err)
		}
		clients[k] = &natpmpClient{cfg: &cfg, conn: conn}
	}
	defer closeAll(clients)
	r := newRunner(&cfg)
	reached := r.run(ctx, clients, progress)
	res := r.result()
	if !reached {
		return res, fmt.Errorf("%w: no NAT-PMP answer from %v to the first request of any client (%d tries, %v apart)",
			errUnreachable, gw, cfg.tries, cfg.timeout)
	}
	return res, nil
}

// closeAll closes the sockets of the NAT-PMP clients made so far.
func closeAll(clients []client) {
	for _, c := range clients {
		if c, ok := c.(*natpmpClient); ok && c != nil {
			c.conn.Close()
		}
	}
}

// do sends mapping request i and waits for the answer with the same opcode
// and internal port, retransmitting every cfg.timeout up to cfg.tries
// sends (RFC 6886 §3.1 doubles the interval; a benchmark keeps it fixed to
// bound each request's time). Other packets are ignored.
func (c *natpmpClient) do(i int) (kind string, answered bool, latency time.Duration) {
	tcp, port := c.cfg.request(i)
	m := natpmp.MappingRequest{Opcode: natpmp.OpMapUDP, InternalPort: port, SuggestedExternalPort: port, Lifetime: c.cfg.lifetime}
	if tcp {
		m.Opcode = natpmp.OpMapTCP
	}
	if c.cfg.op == opDelete {
		// §3.4: lifetime 0, and the external port "MUST be set to zero".
		m.SuggestedExternalPort, m.Lifetime = 0, 0
	}
	req, err := m.AppendBinary(c.req[:0])
	if err != nil {
		return kindMalformed, false, 0
	}
	return exchange(c.conn, c.cfg, req, c.buf[:], func(answer []byte) (string, bool) {
		resp, err := natpmp.ParseResponse(answer)
		if err != nil || resp.Header.Opcode != m.Opcode {
			return "", false // a stray or unreadable packet
		}
		// An error reply may be the bare 8-byte header (§3.5),
		// without the internal port to match.
		if len(answer) >= natpmp.MappingResponseLen && resp.Mapping.InternalPort != port {
			return "", false
		}
		if code := resp.Header.ResultCode; code != natpmp.Success {
			return resultKind(code), true
		}
		return "", true
	})
}

// exchange sends req on conn and waits for the answer that match accepts
// (returning the errors_by_kind key of its result, "" for success),
// reading into buf and retransmitting every cfg.timeout up to cfg.tries
// sends. Packets match refuses are ignored.
func exchange(conn *net.UDPConn, cfg *config, req, buf []byte, match func(answer []byte) (kind string, ok bool)) (kind string, answered bool, latency time.Duration) {
	start := time.Now()
	for range cfg.tries {
		if _, err := conn.Write(req); err != nil {
			return kindNetwork, false, 0
		}
		if err := conn.SetReadDeadline(time.Now().Add(cfg.timeout)); err != nil {
			return kindNetwork, false, 0
		}
		for {
			n, err := conn.Read(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break // retransmit
			}
			if err != nil {
				return kindNetwork, false, 0
			}
			if kind, ok := match(buf[:n]); ok {
				return kind, true, time.Since(start)
			}
		}
	}
	return kindTimeout, false, 0
}

// resultKind is the errors_by_kind key of a NAT-PMP result code: "result"
// and the number, so "result 4" is Out of resources (RFC 6886 §3.5).
func resultKind(code natpmp.ResultCode) string {
	switch code {
	case natpmp.UnsupportedVersion:
		return "result 1"
	case natpmp.NotAuthorized:
		return "result 2"
	case natpmp.NetworkFailure:
		return "result 3"
	case natpmp.OutOfResources:
		return "result 4"
	case natpmp.UnsupportedOpcode:
		return "result 5"
	}
	return "result " + strconv.Itoa(int(code))
}
