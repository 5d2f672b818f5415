package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/portlease/portlease/pcp"
)

// pcpClient is one PCP client: its own UDP socket, connected to the
// gateway, and its own buffers. Over IPv4 its MAP requests ask for NAT
// mappings; over IPv6 (a gateway address that is IPv6) for firewall
// pinholes of the client's own address.
type pcpClient struct {
	cfg  *config
	conn *net.UDPConn
	self netip.Addr // the PCP Client's IP Address field (RFC 6887 §7.1)
	req  []byte
	buf  [maxAnswerLen]byte
}

// runPCP runs the PCP benchmark of cfg.
func runPCP(ctx context.Context, cfg config, progress io.Writer) (*result, error) {
	gw := net.UDPAddrFromAddrPort(netip.AddrPortFrom(cfg.gateway, cfg.port))
	clients := make([]client, cfg.clients)
	closeAll := func() {
		for _, c := range clients {
			if c, ok := c.(*pcpClient); ok && c != nil {
				c.conn.Close()
			}
		}
	}
	for k := range clients {
		conn, err := net.DialUDP("udp", nil, gw)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("plbench: socket to %v: %w", gw, err)
		}
		self := conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
		clients[k] = &pcpClient{cfg: &cfg, conn: conn, self: self, req: make([]byte, 0, pcp.MaxMessageLen)}
	}
	defer closeAll()
	r := newRunner(&cfg)
	reached := r.run(ctx, clients, progress)
	res := r.result()
	if !reached {
		return res, fmt.Errorf("%w: no PCP answer from %v to the first request of any client (%d tries, %v apart)",
			errUnreachable, gw, cfg.tries, cfg.timeout)
	}
	return res, nil
}

// nonceOf is the mapping nonce of an internal port and protocol: the same
// in every run, so that a renewal or deletion by a later plbench carries
// the nonce of the mapping it names (RFC 6887 §11.3).
func nonceOf(tcp bool, port uint16) [pcp.NonceLen]byte {
	var n [pcp.NonceLen]byte
	copy(n[:], "plbench")
	binary.BigEndian.PutUint16(n[8:], port)
	if tcp {
		n[10] = pcp.ProtocolTCP
	} else {
		n[10] = pcp.ProtocolUDP
	}
	return n
}

// do sends MAP request i and waits for the answer with the request's nonce,
// protocol and internal port, retransmitting every cfg.timeout up to
// cfg.tries sends (RFC 6887 §8.1.1 backs off; a benchmark keeps the interval
// fixed to bound each request's time). Other packets are ignored.
func (c *pcpClient) do(i int) (kind string, answered bool, latency time.Duration) {
	tcp, port := c.cfg.request(i)
	m := pcp.MapData{Nonce: nonceOf(tcp, port), Protocol: pcp.ProtocolUDP, InternalPort: port, ExternalPort: port}
	if tcp {
		m.Protocol = pcp.ProtocolTCP
	}
	lifetime := c.cfg.lifetime
	if c.cfg.op == opDelete {
		lifetime, m.ExternalPort = 0, 0
	}
	req, err := pcp.Request{Opcode: pcp.OpMap, Lifetime: lifetime, Client: c.self, Map: m}.AppendBinary(c.req[:0])
	if err != nil {
		return kindMalformed, false, 0
	}
	return exchange(c.conn, c.cfg, req, c.buf[:], func(answer []byte) (string, bool) {
		var resp pcp.Response
		if resp.UnmarshalBinary(answer) != nil || resp.Opcode != pcp.OpMap ||
			resp.Map.Nonce != m.Nonce || resp.Map.Protocol != m.Protocol || resp.Map.InternalPort != port {
			return "", false // a stray or unreadable packet
		}
		if resp.Result != pcp.Success {
			return "pcp " + strconv.Itoa(int(resp.Result)), true
		}
		return "", true
	})
}
