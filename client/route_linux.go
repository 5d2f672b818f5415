package client

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// defaultRoutes returns the IPv4 default routes of the main table that go
// through a router, one per (link, router), lowest metric first; only those
// on iface when it is not empty. It runs in the caller's network namespace
// (see nsRunner).
func defaultRoutes(iface string) ([]route, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("client: netlink: %w", err)
	}
	defer h.Close()
	filter := &netlink.Route{Table: unix.RT_TABLE_MAIN}
	rs, err := h.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("client: list routes: %w", err)
	}
	var out []route
	seen := make(map[[2]any]bool)
	add := func(ifindex int, gw net.IP, metric int) error {
		a, ok := netip.AddrFromSlice(gw)
		if !ok || ifindex == 0 {
			return nil
		}
		a = a.Unmap()
		if !a.Is4() || seen[[2]any{ifindex, a}] {
			return nil
		}
		link, err := h.LinkByIndex(ifindex)
		if err != nil {
			return fmt.Errorf("client: link %d: %w", ifindex, err)
		}
		name := link.Attrs().Name
		if iface != "" && name != iface {
			return nil
		}
		local, err := localAddrTo(h, a)
		if err != nil {
			return err
		}
		seen[[2]any{ifindex, a}] = true
		out = append(out, route{iface: name, ifindex: ifindex, local: local, gw: a, metric: metric})
		return nil
	}
	for _, r := range rs {
		if !isDefault(r.Dst) {
			continue
		}
		if r.Gw != nil {
			if err := add(r.LinkIndex, r.Gw, r.Priority); err != nil {
				return nil, err
			}
		}
		for _, nh := range r.MultiPath {
			if err := add(nh.LinkIndex, nh.Gw, r.Priority); err != nil {
				return nil, err
			}
		}
	}
	slices.SortStableFunc(out, func(a, b route) int { return cmp.Compare(a.metric, b.metric) })
	return out, nil
}

// isDefault reports whether dst is the default destination, which netlink
// reports as nil or as 0.0.0.0/0 depending on the version.
func isDefault(dst *net.IPNet) bool {
	if dst == nil {
		return true
	}
	ones, _ := dst.Mask.Size()
	return ones == 0
}

// routeTo returns the route the kernel takes to dst: the link and this
// machine's source address ("ip route get"). The router of the returned route
// is dst itself: it is how a gateway given by address is reached.
func routeTo(dst netip.Addr) (route, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return route{}, fmt.Errorf("client: netlink: %w", err)
	}
	defer h.Close()
	rs, err := h.RouteGet(dst.AsSlice())
	if err != nil {
		return route{}, fmt.Errorf("client: route to %s: %w", dst, err)
	}
	if len(rs) == 0 {
		return route{}, fmt.Errorf("%w: no route to %s", ErrNoGateway, dst)
	}
	link, err := h.LinkByIndex(rs[0].LinkIndex)
	if err != nil {
		return route{}, fmt.Errorf("client: link %d: %w", rs[0].LinkIndex, err)
	}
	local, ok := netip.AddrFromSlice(rs[0].Src)
	if !ok {
		return route{}, fmt.Errorf("client: no source address towards %s", dst)
	}
	return route{iface: link.Attrs().Name, ifindex: rs[0].LinkIndex, local: local.Unmap(), gw: dst}, nil
}

// localAddrTo returns the source address the kernel uses towards gw.
func localAddrTo(h *netlink.Handle, gw netip.Addr) (netip.Addr, error) {
	rs, err := h.RouteGet(gw.AsSlice())
	if err != nil {
		return netip.Addr{}, fmt.Errorf("client: route to gateway %s: %w", gw, err)
	}
	if len(rs) == 0 {
		return netip.Addr{}, fmt.Errorf("%w: no route to gateway %s", ErrNoGateway, gw)
	}
	local, ok := netip.AddrFromSlice(rs[0].Src)
	if !ok {
		return netip.Addr{}, fmt.Errorf("client: no source address towards gateway %s", gw)
	}
	return local.Unmap(), nil
}
