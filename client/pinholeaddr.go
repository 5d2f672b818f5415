package client

import (
	"net/netip"
	"slices"
)

// PinholeAddrs returns this machine's global IPv6 addresses that a pinhole
// can lead to (Request.InternalAddr): one per link that has an IPv6 default
// route (only Config.Interface when it is set), the address PCP would map
// from, lowest route metric first, without repeats. A temporary, deprecated
// or unique local address is never one. None (and no error) means the host
// has no global IPv6 connectivity: there is nothing to open. It reads the
// kernel's routes and addresses only; nothing is sent.
func (c *Client) PinholeAddrs() ([]netip.Addr, error) {
	if err := c.checkOpen(); err != nil {
		return nil, err
	}
	var routes []route
	if err := c.ns.do(func() error {
		var err error
		routes, err = defaultRoutes6(c.cfg.Interface)
		return err
	}); err != nil {
		return nil, err
	}
	slices.SortStableFunc(routes, func(a, b route) int { return a.metric - b.metric })
	var out []netip.Addr
	for _, r := range routes {
		if !slices.Contains(out, r.local) {
			out = append(out, r.local)
		}
	}
	return out, nil
}
