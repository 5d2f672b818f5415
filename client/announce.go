package client

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/portlease/portlease/natpmp"
	"github.com/portlease/portlease/pcp"
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
	buf := make([]byte, pcp.MaxMessageLen)
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
// address is learnt and its epoch checked (§3.6: a gateway that lost its
// state has every mapping through it made again). The first announcement of
// each burst also has the gateway's NAT-PMP mappings verified at once: the
// epoch's whole seconds and two seconds of slack miss a gateway that
// restarted moments after granting, and a burst means that the gateway may
// have lost or changed its mappings (a gateway that does not reset its epoch
// when it loses them, against §3.7, is repaired too).
func (c *Client) onAnnouncement(from netip.AddrPort, b []byte) {
	if len(b) > 0 && b[0] == pcp.Version {
		c.onPCPPacket(from, b)
		return
	}
	resp, err := natpmp.ParseResponse(b)
	if err != nil || resp.Header.Opcode != natpmp.OpExternalAddress || resp.Err() != nil {
		c.log.Debug("ignoring a packet on the announcement port", "from", from, "err", err)
		return
	}
	g := c.keptGateway(from.Addr())
	if g == nil {
		c.log.Debug("ignoring a NAT-PMP announcement from a host that is not our gateway", "from", from)
		return
	}
	at := time.Now()
	epoch, addr := resp.Header.Epoch, resp.ExternalAddress.Address
	g.mu.Lock()
	fresh := g.burst.next(at, epoch, addr)
	g.mu.Unlock()
	c.log.Debug("NAT-PMP announcement", "gateway", from, "epoch", epoch, "address", addr, "new_burst", fresh)
	c.learnExternal(g, addr)
	if g.observeEpoch(epoch, at) {
		// The PCP mappings through g wait as after PCP's own
		// ANNOUNCE (pcpHoldAfterAnnounce), the NAT-PMP ones do not.
		c.log.Warn("gateway lost its mappings (NAT-PMP epoch went back, announced)", "gateway", g.route.gw, "epoch", epoch)
		c.gatewayLostAnnounced(g, "NAT-PMP epoch")
		return
	}
	if !fresh {
		return
	}
	c.verifyMappings(g, NATPMP, "NAT-PMP announcement", func(*Mapping) bool { return true })
}

// keptGateway returns the gateway at addr that holds kept mappings, nil if
// none does.
func (c *Client) keptGateway(addr netip.Addr) *gateway {
	c.mu.Lock()
	defer c.mu.Unlock()
	for m := range c.mappings {
		if m.bind != nil && m.bind.gw.route.gw == addr.WithZone("") {
			return m.bind.gw
		}
	}
	return nil
}

// onPCPPacket digests a PCP packet heard on the announcement port: an
// unsolicited ANNOUNCE response (RFC 6887 §14.1.2) from a gateway that
// holds kept mappings; anything else is dropped.
func (c *Client) onPCPPacket(from netip.AddrPort, b []byte) {
	var resp pcp.Response
	err := resp.UnmarshalBinary(b)
	if err != nil || resp.Opcode&^pcp.ResponseBit != pcp.OpAnnounce || resp.Result != pcp.Success {
		c.log.Debug("ignoring a PCP packet on the announcement port", "from", from, "err", err)
		return
	}
	g := c.keptGateway(from.Addr())
	if g == nil {
		c.log.Debug("ignoring a PCP announcement from a host that is not our gateway", "from", from)
		return
	}
	c.onPCPAnnouncement(g, from, resp)
}
