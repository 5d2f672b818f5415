package client

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
)

// defaultRoute is a default route as a system's routing table holds it: the
// link's index, the router and the route's metric (lower is preferred).
// They are read from the routing socket (route_bsd.go) or the IP
// Helper forward table (iphlpforward.go) and turned into routes by
// pickRoutes.
type defaultRoute struct {
	ifindex int
	gw      netip.Addr
	metric  int
}

// linkAddr is an address of a link with its on-link prefix length; avoid
// marks one a pinhole should not lead to (temporary, deprecated or not yet
// confirmed by duplicate address detection, where the system tells).
type linkAddr struct {
	prefix netip.Prefix
	avoid  bool
}

// linkInfo is what route discovery needs of a link: its name and addresses.
type linkInfo struct {
	name  string
	addrs []linkAddr
}

// routeLookups are the system calls pickRoutes makes, parameters so that
// the tests can give captured answers: the link of an index, and the source
// address the kernel chooses towards an address (a connected UDP socket).
type routeLookups struct {
	link    func(index int) (linkInfo, error)
	localTo func(gw netip.Addr) (netip.Addr, error)
}

// pickRoutes turns the default routes of one family (IPv6 when v6) into
// routes, as defaultRoutes and defaultRoutes6 return them on Linux: one per
// (link, router), only those on iface when it is not empty, lowest metric
// first (ties in table order). An IPv4 route's local address is the link's
// address on the router's subnet, or the kernel's source address towards
// it; an IPv6 route's is a global address of the link (the router is often
// link-local, and a pinhole's internal address is a global one), and a link
// without one is left out.
func pickRoutes(defaults []defaultRoute, v6 bool, iface string, lk routeLookups) ([]route, error) {
	type key struct {
		ifindex int
		gw      netip.Addr
	}
	seen := make(map[key]bool)
	var out []route
	for _, d := range defaults {
		gw := d.gw.Unmap().WithZone("")
		if !gw.IsValid() || gw.IsUnspecified() || gw.Is6() != v6 || d.ifindex <= 0 || seen[key{d.ifindex, gw}] {
			continue
		}
		link, err := lk.link(d.ifindex)
		if err != nil {
			return nil, fmt.Errorf("client: link %d: %w", d.ifindex, err)
		}
		if iface != "" && link.name != iface {
			continue
		}
		var local netip.Addr
		if v6 {
			local = globalAddr6Of(link.addrs)
			if !local.IsValid() {
				continue // no global address on the link: no pinhole to open
			}
		} else {
			local = addrOnSubnet(link.addrs, gw)
			if !local.IsValid() {
				if local, err = lk.localTo(gw); err != nil {
					return nil, fmt.Errorf("client: source address towards gateway %s: %w", gw, err)
				}
			}
		}
		seen[key{d.ifindex, gw}] = true
		out = append(out, route{iface: link.name, ifindex: d.ifindex, local: local.Unmap().WithZone(""), gw: gw, metric: d.metric})
	}
	slices.SortStableFunc(out, func(a, b route) int { return cmp.Compare(a.metric, b.metric) })
	return out, nil
}

// addrOnSubnet returns the IPv4 address of addrs whose prefix holds gw, or
// the zero Addr.
func addrOnSubnet(addrs []linkAddr, gw netip.Addr) netip.Addr {
	for _, a := range addrs {
		if a.prefix.Addr().Is4() && a.prefix.Contains(gw) {
			return a.prefix.Addr()
		}
	}
	return netip.Addr{}
}

// globalAddr6Of returns the first global IPv6 address of addrs that is not
// a unique local one and not to be avoided, or the zero Addr (as
// route6_linux.go's globalAddr6).
func globalAddr6Of(addrs []linkAddr) netip.Addr {
	for _, a := range addrs {
		ip := a.prefix.Addr()
		if ip.Is6() && !ip.Is4In6() && ip.IsGlobalUnicast() && !isULA(ip) && !a.avoid {
			return ip.WithZone("")
		}
	}
	return netip.Addr{}
}
