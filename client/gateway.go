package client

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/portlease/portlease/natpmp"
)

// gateway is a router the client knows, with what it learnt of it. The
// Client keeps one per (link, router) for its whole life, so that epochs,
// sockets and IGDs survive a new discovery.
type gateway struct {
	route route
	pmp   *pmpConn

	mu sync.Mutex
	// NAT-PMP: when it was last probed and what came of it.
	pmpProbed time.Time
	pmpInfo   *NATPMPInfo // nil: no answer
	pmpErr    error
	// haveEpoch, epoch and epochAt: the last Seconds Since Start of Epoch
	// received and when, for RFC 6886 §3.6.
	haveEpoch bool
	epoch     uint32
	epochAt   time.Time
	// PCP: the connections by source address (a pinhole's or a mapping's
	// internal address), when it was last probed and what came of it,
	// the epoch (RFC 6887 §8.5) and the last burst of ANNOUNCEs.
	pcps      map[netip.Addr]*pcpConn
	pcpProbed time.Time
	pcpInfo   *PCPInfo
	pcpErr    error
	pcpEpoch  pcpEpochState
	pcpBurst  announceBurst
	// pcpHold is when the PCP mappings through the gateway may be asked
	// for again after an announcement (RFC 6887 §14.1.1's random wait).
	pcpHold time.Time
	// UPnP: when IGDs were last looked for and what was found.
	igdsFound time.Time
	igds      []igdDevice
	igdErr    error
	// bootIDs are the BOOTID.UPNP.ORG last heard per device UDN.
	bootIDs map[string]int
	// ext is the last external address learnt; reported the last one
	// told in an event.
	ext      netip.Addr
	reported netip.Addr
	// watching is set once a NOTIFY watch was asked for; checking while
	// a periodic check runs.
	watching bool
	checking bool
	// burst is the last burst of NAT-PMP announcements heard.
	burst announceBurst
	// byebye holds the UDNs of the IGDs heard saying ssdp:byebye and
	// not ssdp:alive since.
	byebye map[string]bool
}

// String returns "198.51.100.1 on eth0".
func (g *gateway) String() string { return g.route.gw.String() + " on " + g.route.iface }

// observeEpoch records a NAT-PMP epoch received at at and reports whether
// it shows that the gateway lost its state (RFC 6886 §3.6).
func (g *gateway) observeEpoch(epoch uint32, at time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	lost := g.haveEpoch && natpmp.StateLost(g.epoch, at.Sub(g.epochAt), epoch)
	if !g.haveEpoch || !at.Before(g.epochAt) {
		g.haveEpoch, g.epoch, g.epochAt = true, epoch, at
	}
	return lost
}

// external returns the last external address learnt.
func (g *gateway) external() netip.Addr {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ext
}

// natpmpProbe asks the gateway for its external address over NAT-PMP, or
// returns what an earlier probe found when it is younger than maxAge.
func (c *Client) natpmpProbe(ctx context.Context, g *gateway, maxAge time.Duration) (*NATPMPInfo, error) {
	g.mu.Lock()
	if !g.pmpProbed.IsZero() && time.Since(g.pmpProbed) < maxAge {
		info, err := g.pmpInfo, g.pmpErr
		g.mu.Unlock()
		return info, err
	}
	g.mu.Unlock()

	info, err := c.natpmpExternal(ctx, g, probeTries)
	if ctx.Err() != nil {
		return nil, ctx.Err() // not the gateway's fault: remember nothing
	}
	g.mu.Lock()
	g.pmpProbed, g.pmpInfo, g.pmpErr = time.Now(), info, err
	g.mu.Unlock()
	return info, err
}

// natpmpExternal sends an external address request and digests the answer:
// the epoch check, the external address. A PCP-only server yields an info
// with PCPOnly and an error wrapping ErrUnsupported.
func (c *Client) natpmpExternal(ctx context.Context, g *gateway, tries int) (*NATPMPInfo, error) {
	a, err := g.pmp.externalAddress(ctx, tries)
	if errors.Is(err, natpmp.ErrPCPServer) {
		return &NATPMPInfo{PCPOnly: true}, &GatewayError{Op: "probe", Method: NATPMP, Gateway: g.route.gw,
			Err: fmt.Errorf("%w: the gateway speaks PCP only, not NAT-PMP (%w)", ErrUnsupported, err)}
	}
	if err != nil {
		return nil, &GatewayError{Op: "probe", Method: NATPMP, Gateway: g.route.gw, Err: err}
	}
	c.natpmpEpoch(g, a, nil)
	if err := a.resp.Err(); err != nil {
		return nil, &GatewayError{Op: "probe", Method: NATPMP, Gateway: g.route.gw, Err: err}
	}
	addr := a.resp.ExternalAddress.Address
	c.learnExternal(g, addr)
	return &NATPMPInfo{ExternalAddress: addr, Epoch: a.resp.Header.Epoch}, nil
}

// natpmpEpoch runs the epoch check of RFC 6886 §3.6 on an answer; when the
// gateway lost its state, every kept mapping through it is re-created
// (except, which the answer itself re-created). It reports the loss.
func (c *Client) natpmpEpoch(g *gateway, a pmpAnswer, except *Mapping) bool {
	if !g.observeEpoch(a.resp.Header.Epoch, a.at) {
		return false
	}
	c.log.Warn("gateway lost its mappings (NAT-PMP epoch went back)", "gateway", g.route.gw, "epoch", a.resp.Header.Epoch)
	c.gatewayLost(g, "NAT-PMP epoch", except)
	return true
}

// igdList returns the IGDs found through g, looking for them (SSDP, or
// Config.DescriptionURL) when the last search is older than maxAge.
func (c *Client) igdList(ctx context.Context, g *gateway, maxAge time.Duration) ([]igdDevice, error) {
	g.mu.Lock()
	if !g.igdsFound.IsZero() && time.Since(g.igdsFound) < maxAge {
		igds, err := g.igds, g.igdErr
		g.mu.Unlock()
		return igds, err
	}
	g.mu.Unlock()

	var igds []igdDevice
	err := c.ns.do(func() error {
		var err error
		if c.cfg.DescriptionURL != "" {
			var d igdDevice
			d, err = c.finder.dial(ctx, c.cfg.DescriptionURL, g.route.local)
			if err == nil {
				igds = []igdDevice{d}
			}
			return err
		}
		igds, err = c.finder.discover(ctx, g.route, c.cfg.DiscoveryWait)
		return err
	})
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		err = &GatewayError{Op: "probe", Method: UPnP, Gateway: g.route.gw, Err: err}
	}
	g.mu.Lock()
	g.igdsFound, g.igds, g.igdErr = time.Now(), igds, err
	if g.bootIDs == nil {
		g.bootIDs = make(map[string]int)
	}
	for _, d := range igds {
		if id := d.bootID(); id >= 0 && d.udn() != "" {
			g.bootIDs[d.udn()] = id
		}
	}
	g.mu.Unlock()
	return igds, err
}

// forgetIGDs makes the next igdList search again.
func (g *gateway) forgetIGDs() {
	g.mu.Lock()
	g.igdsFound = time.Time{}
	g.mu.Unlock()
}

// forgetNATPMP makes the next natpmpProbe ask again.
func (g *gateway) forgetNATPMP() {
	g.mu.Lock()
	g.pmpProbed = time.Time{}
	g.mu.Unlock()
}

// gateways returns the gateways to use, finding them when refresh is set or
// nothing was found yet: Config.Gateway, or the IPv4 default routes (of
// Config.Interface) and after them the IPv6 default routers (PCP only, for
// pinholes); for Config.DescriptionURL without Config.Gateway, the URL's
// host.
func (c *Client) gateways(ctx context.Context, refresh bool) ([]*gateway, error) {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if err := c.checkOpen(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.found != nil && !refresh {
		return c.found, nil
	}
	var routes []route
	err := c.ns.do(func() error {
		var err error
		routes, err = c.findRoutes()
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(routes) == 0 {
		if c.cfg.Interface != "" {
			return nil, fmt.Errorf("%w: no default route on %s", ErrNoGateway, c.cfg.Interface)
		}
		return nil, fmt.Errorf("%w: no default route", ErrNoGateway)
	}
	gws := make([]*gateway, 0, len(routes))
	c.mu.Lock()
	for _, r := range routes {
		g := c.known[r.iface+"|"+r.gw.String()]
		if g == nil || g.route.local != r.local {
			if g != nil {
				g.closeSockets()
			}
			g = &gateway{route: r, pmp: &pmpConn{log: c.log, udpSocket: udpSocket{
				ns:     c.ns,
				server: netip.AddrPortFrom(r.gw, c.natpmpPort()),
				local:  r.local,
			}}}
			c.known[r.iface+"|"+r.gw.String()] = g
		}
		gws = append(gws, g)
	}
	c.mu.Unlock()
	c.found = gws
	for _, g := range gws {
		c.log.Debug("gateway", "address", g.route.gw, "interface", g.route.iface, "local", g.route.local)
	}
	return gws, nil
}

// findRoutes runs in the client's namespace.
func (c *Client) findRoutes() ([]route, error) {
	gw := c.cfg.Gateway
	if !gw.IsValid() && c.cfg.DescriptionURL != "" {
		if a, ok := urlHostAddr(c.cfg.DescriptionURL); ok {
			gw = a
		}
	}
	if gw.IsValid() {
		r, err := routeTo(gw.Unmap())
		if err != nil {
			return nil, err
		}
		if c.cfg.Interface != "" && r.iface != c.cfg.Interface {
			return nil, fmt.Errorf("%w: gateway %s is reached through %s, not %s", ErrNoGateway, gw, r.iface, c.cfg.Interface)
		}
		return []route{r}, nil
	}
	v4, err := defaultRoutes(c.cfg.Interface)
	if err != nil {
		return nil, err
	}
	v6, err := defaultRoutes6(c.cfg.Interface)
	if err != nil {
		c.log.Debug("no IPv6 routes", "err", err)
	}
	return append(v4, v6...), nil
}

// natpmpPort is the gateway's NAT-PMP port.
func (c *Client) natpmpPort() uint16 {
	if c.cfg.NATPMPPort != 0 {
		return c.cfg.NATPMPPort
	}
	return natpmp.ServerPort
}
