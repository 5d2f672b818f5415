package client

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/portlease/portlease/natpmp"
)

// listenAnnouncements makes sure NAT-PMP announcements (RFC 6886 §3.2.1)
// are heard from g: the client's one listener is opened on first use, and
// joined to 224.0.0.1 on g's link. A listener that cannot be opened (the
// port taken without SO_REUSEADDR, no multicast) is logged: the periodic
// gateway check still finds restarts.
func (c *Client) listenAnnouncements(g *gateway) {
	c.annMu.Lock()
	defer c.annMu.Unlock()
	if c.checkOpen() != nil {
		return
	}
	addr := c.cfg.AnnounceAddr
	if !addr.IsValid() {
		addr = natpmp.AnnounceAddr()
	}
	if c.annConn == nil {
		if c.annTry {
			return
		}
		c.annTry = true
		var conn *net.UDPConn
		err := c.ns.do(func() error {
			lc := net.ListenConfig{Control: reuseAddrPort}
			pc, err := lc.ListenPacket(context.Background(), "udp4", addr.String())
			if err != nil {
				return err
			}
			conn = pc.(*net.UDPConn)
			return nil
		})
		if err != nil {
			c.log.Warn("cannot listen for NAT-PMP announcements: relying on periodic checks", "addr", addr, "err", err)
			return
		}
		c.annConn = conn
		c.annJoined = make(map[int]bool)
		c.wg.Add(1)
		go c.readAnnouncements(conn)
	}
	if !addr.Addr().IsMulticast() || c.annJoined[g.route.ifindex] {
		return
	}
	c.annJoined[g.route.ifindex] = true
	err := c.ns.do(func() error {
		p := ipv4.NewPacketConn(c.annConn)
		return p.JoinGroup(&net.Interface{Index: g.route.ifindex, Name: g.route.iface}, net.UDPAddrFromAddrPort(addr))
	})
	if err != nil && !errors.Is(err, syscall.EADDRINUSE) {
		// 224.0.0.1 is joined by every host anyway; a refusal costs
		// nothing on Linux, where the socket still hears the group.
		c.log.Debug("join the NAT-PMP announcement group", "interface", g.route.iface, "err", err)
	}
}

// readAnnouncements reads announcements until conn is closed (Close).
func (c *Client) readAnnouncements(conn *net.UDPConn) {
	defer c.wg.Done()
	buf := make([]byte, 64)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			c.log.Debug("NAT-PMP announcement socket", "err", err)
			time.Sleep(100 * time.Millisecond) // a transient error must not spin
			continue
		}
		c.onAnnouncement(netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), buf[:n])
	}
}

// onAnnouncement digests one announcement: RFC 6886 §3.2.1, "Upon receiving
// a gratuitous address announcement packet, the client MUST check the source
// IP address, and silently discard the packet if the address is not the
// address of the client's current configured gateway". From a gateway, its
// epoch is checked (§3.6: a restart makes every mapping through it be
// made again) and its address learnt.
func (c *Client) onAnnouncement(from netip.AddrPort, b []byte) {
	resp, err := natpmp.ParseResponse(b)
	if err != nil || resp.Header.Opcode != natpmp.OpExternalAddress || resp.Err() != nil {
		c.log.Debug("ignoring a packet on the announcement port", "from", from, "err", err)
		return
	}
	var g *gateway
	c.mu.Lock()
	for m := range c.mappings {
		if m.bind != nil && m.bind.gw.route.gw == from.Addr() {
			g = m.bind.gw
			break
		}
	}
	c.mu.Unlock()
	if g == nil {
		c.log.Debug("ignoring a NAT-PMP announcement from a host that is not our gateway", "from", from)
		return
	}
	c.log.Debug("NAT-PMP announcement", "gateway", from, "epoch", resp.Header.Epoch, "address", resp.ExternalAddress.Address)
	at := time.Now()
	if !c.natpmpEpoch(g, pmpAnswer{resp: resp, at: at}, nil) {
		// The epoch check allows seconds of slack (§3.6) and misses a
		// gateway that restarted moments after granting. The epoch also
		// says when the gateway's state began: a NAT-PMP mapping granted
		// before that (the epoch counts whole seconds, so up to a second
		// after it, to be safe) cannot be in it. Mapping it again is a
		// renewal when the gateway did keep it.
		began := at.Add(-time.Duration(resp.Header.Epoch)*time.Second + time.Second)
		if !g.newEpochStart(began) {
			c.learnExternal(g, resp.ExternalAddress.Address)
			return
		}
		c.gatewayLostIf(g, "NAT-PMP announcement of a new epoch", nil, func(m *Mapping) bool {
			return m.bind.method == NATPMP && m.granted && m.grantedAt.Before(began)
		})
	}
	c.learnExternal(g, resp.ExternalAddress.Address)
}

// reuseAddrPort sets SO_REUSEADDR and SO_REUSEPORT, so that several
// listeners of one multicast port each get every datagram.
func reuseAddrPort(network, address string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
