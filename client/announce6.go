package client

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/ipv6"

	"github.com/portlease/portlease/pcp"
)

// listenAnnouncements6 makes sure PCP's IPv6 announcements are heard from
// g, an IPv6 default router: unsolicited ANNOUNCE responses to
// [ff02::1]:5350 (RFC 6887 §14.1.3). The client's one IPv6 listener is
// bound to [::]:5350 (a link-local group cannot be bound without a zone)
// with SO_REUSEADDR and SO_REUSEPORT, and joined to ff02::1 on g's link;
// what it hears goes the way of the IPv4 announcements (onAnnouncement:
// the source must be a gateway that holds kept mappings; a burst is
// handled once). Config.AnnounceAddr6, when valid, is bound instead
// (tests: [::1] and a port of their own). A listener that cannot be opened
// is logged: the periodic gateway check still finds restarts.
func (c *Client) listenAnnouncements6(g *gateway) {
	c.annMu.Lock()
	defer c.annMu.Unlock()
	if c.checkOpen() != nil {
		return
	}
	bind, group := c.cfg.AnnounceAddr6, netip.AddrPort{}
	if !bind.IsValid() {
		_, group = pcp.AnnounceAddrs()
		bind = netip.AddrPortFrom(netip.IPv6Unspecified(), group.Port())
	}
	if c.annConn6 == nil {
		if c.annTry6 {
			return
		}
		c.annTry6 = true
		var conn *net.UDPConn
		err := c.ns.do(func() error {
			lc := net.ListenConfig{Control: reuseAddrPort}
			pc, err := lc.ListenPacket(context.Background(), "udp6", bind.String())
			if err != nil {
				return err
			}
			conn = pc.(*net.UDPConn)
			return nil
		})
		if err != nil {
			c.log.Warn("cannot listen for PCP announcements over IPv6: relying on periodic checks", "addr", bind, "err", err)
			return
		}
		c.annConn6 = conn
		c.annJoined6 = make(map[int]bool)
		c.wg.Add(1)
		go c.readAnnouncements(conn)
	}
	if !group.IsValid() || c.annJoined6[g.route.ifindex] {
		return
	}
	c.annJoined6[g.route.ifindex] = true
	err := c.ns.do(func() error {
		p := ipv6.NewPacketConn(c.annConn6)
		return p.JoinGroup(&net.Interface{Index: g.route.ifindex, Name: g.route.iface}, net.UDPAddrFromAddrPort(group))
	})
	if err != nil && !errors.Is(err, syscall.EADDRINUSE) {
		c.log.Debug("join the PCP announcement group ff02::1", "interface", g.route.iface, "err", err)
	}
}
