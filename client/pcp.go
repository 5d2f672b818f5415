package client

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/portlease/portlease/pcp"
)

// The PCP driver (RFC 6887): MAP for IPv4 mappings and IPv6 pinholes, with
// the mapping's nonce kept for its whole life (§11.1, §11.2, §15), the
// epoch checked in every answer (§8.5), THIRD_PARTY (§13.1),
// PREFER_FAILURE (§13.2) and FILTER (§13.3).

// pcpPort is the gateway's PCP port.
func (c *Client) pcpPort() uint16 {
	if c.cfg.PCPPort != 0 {
		return c.cfg.PCPPort
	}
	return pcp.ServerPort
}

// pcpConnFor returns g's PCP connection from src, opening it on first use.
func (c *Client) pcpConnFor(g *gateway, src netip.Addr) *pcpConn {
	g.mu.Lock()
	defer g.mu.Unlock()
	if p := g.pcps[src]; p != nil {
		return p
	}
	if g.pcps == nil {
		g.pcps = make(map[netip.Addr]*pcpConn)
	}
	server := g.route.gw
	if server.Is6() && server.IsLinkLocalUnicast() {
		server = server.WithZone(g.route.iface)
	}
	p := &pcpConn{log: c.log, udpSocket: udpSocket{ns: c.ns, server: netip.AddrPortFrom(server, c.pcpPort()), local: src}}
	g.pcps[src] = p
	return p
}

// closeSockets closes g's NAT-PMP and PCP sockets.
func (g *gateway) closeSockets() {
	g.pmp.close()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range g.pcps {
		p.close()
	}
}

// pcpSource returns the address a request for internal comes from, and the
// THIRD_PARTY address (§13.1) when internal is not one of this machine's:
// "the PCP client's IP address" is the mapping's internal address unless
// THIRD_PARTY names another (§11.1).
func (c *Client) pcpSource(g *gateway, internal netip.Addr) (src, third netip.Addr, err error) {
	if internal == g.route.local {
		return internal, netip.Addr{}, nil
	}
	own, err := c.ownAddr(internal)
	if err != nil {
		return netip.Addr{}, netip.Addr{}, err
	}
	if own && internal.Is6() == g.route.local.Is6() {
		return internal, netip.Addr{}, nil
	}
	return g.route.local, internal, nil
}

// ownAddr reports whether a is an address of this machine.
func (c *Client) ownAddr(a netip.Addr) (bool, error) {
	var addrs []net.Addr
	err := c.ns.do(func() error {
		var err error
		addrs, err = net.InterfaceAddrs()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("client: list this machine's addresses: %w", err)
	}
	for _, x := range addrs {
		if ipn, ok := x.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Unmap() == a.WithZone("") {
				return true, nil
			}
		}
	}
	return false, nil
}

// pcpProtocol is the protocol number of MAP (§11.1).
func pcpProtocol(p Protocol) uint8 {
	if p == UDP {
		return pcp.ProtocolUDP
	}
	return pcp.ProtocolTCP
}

// pcpMapRequest builds the MAP request of r: lifetime 0 deletes it (§15).
func pcpMapRequest(r Request, third netip.Addr, eport uint16, ext netip.Addr, lifetime uint32) pcp.Request {
	req := pcp.Request{
		Opcode:   pcp.OpMap,
		Lifetime: lifetime,
		Map: pcp.MapData{
			Nonce:        r.Nonce,
			Protocol:     pcpProtocol(r.Protocol),
			InternalPort: r.InternalPort,
			ExternalPort: eport,
			ExternalAddr: ext,
		},
	}
	req.Options.ThirdParty = third
	if lifetime == 0 {
		return req
	}
	// §13.2: PREFER_FAILURE when the port asked for is wanted and no
	// other; a pinhole's external port is its internal one anyway.
	req.Options.PreferFailure = r.ExternalPort != 0 && !r.InternalAddr.Is6()
	for _, f := range r.Filters {
		req.Options.Filters = append(req.Options.Filters, pcp.Filter{Remote: f.Remote, Port: f.Port})
	}
	if r.Description != "" && len(r.Description) <= pcp.MaxDescriptionLen {
		req.Options.Description, req.Options.HasDescription = r.Description, true
	}
	return req
}

// mapPCP maps r over PCP (§11): an IPv4 mapping, or for an IPv6 internal
// address a pinhole (the gateway answers with the same address and port).
// A renewal (prevPort set) suggests the external address and port held
// (§11.2).
func (c *Client) mapPCP(ctx context.Context, g *gateway, r Request, prevPort uint16, except *Mapping) (outcome, error) {
	fail := func(err error) (outcome, error) {
		return outcome{}, &GatewayError{Op: "map", Method: PCP, Gateway: g.route.gw, Err: err}
	}
	internal := internalAddr(r, g)
	if internal.Is6() != g.route.gw.Is6() {
		return fail(fmt.Errorf("%w: internal address %s through gateway %s", ErrInvalidRequest, internal, g.route.gw))
	}
	nonce, err := c.pcpNonce(r, internal)
	if err != nil {
		return fail(err)
	}
	r.Nonce = nonce
	src, third, err := c.pcpSource(g, internal)
	if err != nil {
		return fail(err)
	}
	pinhole := internal.Is6()
	suggest := prevPort
	if suggest == 0 {
		suggest = r.ExternalPort
	}
	if suggest == 0 || pinhole {
		suggest = r.InternalPort
	}
	var ext netip.Addr
	if prevPort != 0 && !pinhole {
		ext = g.external()
	}
	req := pcpMapRequest(r, third, suggest, ext, lifetimeSeconds(lifetimeOf(r)))
	a, err := c.pcpConnFor(g, src).transact(ctx, req, pcpMapWait)
	if err != nil {
		if ctx.Err() == nil {
			g.forgetPCP()
		}
		return fail(err)
	}
	restarted := c.pcpEpochCheck(g, a, except)
	if a.resp.Result != pcp.Success {
		return fail(&PCPError{Code: a.resp.Result, Lifetime: a.resp.Lifetime})
	}
	m := a.resp.Map
	if a.resp.Lifetime == 0 || m.ExternalPort == 0 {
		return fail(fmt.Errorf("client: the gateway granted port %d for %d s", m.ExternalPort, a.resp.Lifetime))
	}
	if !pinhole {
		c.learnExternal(g, m.ExternalAddr.Unmap())
	}
	return outcome{
		res: Result{
			Protocol:  r.Protocol,
			Internal:  netip.AddrPortFrom(internal, r.InternalPort),
			External:  netip.AddrPortFrom(m.ExternalAddr.Unmap(), m.ExternalPort),
			Lifetime:  time.Duration(a.resp.Lifetime) * time.Second,
			Method:    PCP,
			Pinhole:   pinhole,
			Nonce:     r.Nonce,
			Gateway:   g.route.gw,
			Interface: g.route.iface,
		},
		bind:      &binding{gw: g, method: PCP},
		restarted: restarted,
		began:     earliestEpochStart(a.sent, a.resp.Epoch),
	}, nil
}

// unmapPCP deletes r's PCP mapping: a MAP request with lifetime 0 and the
// mapping's nonce (§15: "If the PCP-controlled device ... the nonce does
// not match, the PCP server ... NOT_AUTHORIZED"). The gateway answers
// SUCCESS for a mapping it does not hold.
func (c *Client) unmapPCP(ctx context.Context, g *gateway, r Request, eport uint16) error {
	fail := func(err error) error { return &GatewayError{Op: "unmap", Method: PCP, Gateway: g.route.gw, Err: err} }
	internal := internalAddr(r, g)
	if internal.Is6() != g.route.gw.Is6() {
		return fail(fmt.Errorf("%w: internal address %s through gateway %s", ErrInvalidRequest, internal, g.route.gw))
	}
	if r.Nonce.IsZero() && len(c.cfg.NonceKey) == 0 {
		return fail(fmt.Errorf("%w: PCP deletes a mapping only with its nonce (§15)", ErrUnsupported))
	}
	nonce, err := c.pcpNonce(r, internal)
	if err != nil {
		return fail(err)
	}
	r.Nonce = nonce
	src, third, err := c.pcpSource(g, internal)
	if err != nil {
		return fail(err)
	}
	if eport == 0 {
		eport = r.ExternalPort
	}
	a, err := c.pcpConnFor(g, src).transact(ctx, pcpMapRequest(r, third, eport, netip.Addr{}, 0), pcpDeleteWait)
	if err != nil {
		return fail(err)
	}
	c.pcpEpochCheck(g, a, nil)
	if a.resp.Result != pcp.Success {
		return fail(&PCPError{Code: a.resp.Result, Lifetime: a.resp.Lifetime})
	}
	return nil
}

// pcpAnnounce sends an ANNOUNCE request (§14.1.1): the answer tells that
// the gateway speaks PCP, and its epoch.
func (c *Client) pcpAnnounce(ctx context.Context, g *gateway) (*PCPInfo, error) {
	a, err := c.pcpConnFor(g, g.route.local).transact(ctx, pcp.Request{Opcode: pcp.OpAnnounce}, pcpProbeWait)
	if err != nil {
		return nil, &GatewayError{Op: "probe", Method: PCP, Gateway: g.route.gw, Err: err}
	}
	c.pcpEpochCheck(g, a, nil)
	if a.resp.Result != pcp.Success {
		return nil, &GatewayError{Op: "probe", Method: PCP, Gateway: g.route.gw,
			Err: &PCPError{Code: a.resp.Result, Lifetime: a.resp.Lifetime}}
	}
	return &PCPInfo{Epoch: a.resp.Epoch}, nil
}

// pcpProbe is pcpAnnounce, or what an earlier one found when it is younger
// than maxAge.
func (c *Client) pcpProbe(ctx context.Context, g *gateway, maxAge time.Duration) (*PCPInfo, error) {
	g.mu.Lock()
	if !g.pcpProbed.IsZero() && time.Since(g.pcpProbed) < maxAge {
		info, err := g.pcpInfo, g.pcpErr
		g.mu.Unlock()
		return info, err
	}
	g.mu.Unlock()
	info, err := c.pcpAnnounce(ctx, g)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	g.mu.Lock()
	g.pcpProbed, g.pcpInfo, g.pcpErr = time.Now(), info, err
	g.mu.Unlock()
	return info, err
}

// forgetPCP makes the next pcpProbe ask again.
func (g *gateway) forgetPCP() {
	g.mu.Lock()
	g.pcpProbed = time.Time{}
	g.mu.Unlock()
}

// pcpEpochCheck runs the client's epoch check of §8.5 on an answer: "If
// the PCP client determines that the Epoch time value is invalid, then it
// concludes that the PCP server may have lost state, and it promptly renews
// all its active port mapping leases". Every kept mapping through g but
// except (which the answer itself made again) is mapped again at once. It
// reports the loss.
func (c *Client) pcpEpochCheck(g *gateway, a pcpAnswer, except *Mapping) bool {
	if !c.pcpEpochLost(g, a) {
		return false
	}
	c.gatewayLost(g, "PCP epoch", except)
	return true
}

// pcpEpochLost observes the epoch of a and reports (and logs) whether it
// shows that g lost its state (§8.5).
func (c *Client) pcpEpochLost(g *gateway, a pcpAnswer) bool {
	g.mu.Lock()
	lost := g.pcpEpoch.observe(a.resp.Epoch, a.at)
	g.mu.Unlock()
	if lost {
		c.log.Warn("gateway lost its mappings (PCP epoch)", "gateway", g.route.gw, "epoch", a.resp.Epoch)
	}
	return lost
}

// onPCPAnnouncement digests an unsolicited ANNOUNCE response (§14.1.2)
// from g: its epoch is checked (§8.5, a loss has every mapping made
// again), and the first of each burst has g's PCP mappings asked for again
// (a renewal where the gateway kept them, a re-creation where it lost
// them). Either way the PCP mappings wait first the random time of
// §14.1.1 (pcpHoldAfterAnnounce); other mappings through g go at once.
func (c *Client) onPCPAnnouncement(g *gateway, from netip.AddrPort, resp pcp.Response) {
	at := time.Now()
	g.mu.Lock()
	fresh := g.pcpBurst.next(at, resp.Epoch, netip.Addr{})
	g.mu.Unlock()
	c.log.Debug("PCP announcement", "gateway", from, "epoch", resp.Epoch, "new_burst", fresh)
	if c.pcpEpochLost(g, pcpAnswer{resp: resp, at: at}) {
		c.gatewayLostAnnounced(g, "PCP epoch")
		return
	}
	if !fresh {
		return
	}
	c.verifyMappingsAt(g, PCP, "PCP announcement", func(*Mapping) bool { return true }, c.pcpHoldAfterAnnounce(g, at))
}
