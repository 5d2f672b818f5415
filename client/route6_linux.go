package client

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// defaultRoutes6 returns the IPv6 default routers of the main table, one
// per (link, router), lowest metric first, only those on iface when it is
// not empty: the PCP servers for pinholes (RFC 6887 §8.1: the client sends
// to its default router unless configured otherwise). The local address of
// each is a global address of this machine on the link (the router is often
// link-local, and a pinhole's internal address is a global one).
func defaultRoutes6(iface string) ([]route, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("client: netlink: %w", err)
	}
	defer h.Close()
	rs, err := h.RouteListFiltered(netlink.FAMILY_V6, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("client: list IPv6 routes: %w", err)
	}
	var out []route
	seen := make(map[[2]any]bool)
	for _, r := range rs {
		gw, ok := netip.AddrFromSlice(r.Gw)
		if !isDefault(r.Dst) || !ok || r.LinkIndex == 0 || seen[[2]any{r.LinkIndex, gw}] {
			continue
		}
		link, err := h.LinkByIndex(r.LinkIndex)
		if err != nil {
			return nil, fmt.Errorf("client: link %d: %w", r.LinkIndex, err)
		}
		name := link.Attrs().Name
		if iface != "" && name != iface {
			continue
		}
		local, err := globalAddr6(h, link)
		if err != nil {
			return nil, err
		}
		if !local.IsValid() {
			continue // no global address on the link: no pinhole to open
		}
		seen[[2]any{r.LinkIndex, gw}] = true
		out = append(out, route{iface: name, ifindex: r.LinkIndex, local: local, gw: gw, metric: r.Priority})
	}
	return out, nil
}

// globalAddr6 returns a global IPv6 address of link (not temporary, not
// deprecated, not a unique local one), or the zero Addr.
func globalAddr6(h *netlink.Handle, link netlink.Link) (netip.Addr, error) {
	addrs, err := h.AddrList(link, netlink.FAMILY_V6)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("client: addresses of %s: %w", link.Attrs().Name, err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || !ip.IsGlobalUnicast() || isULA(ip) || a.Flags&(unix.IFA_F_TEMPORARY|unix.IFA_F_DEPRECATED|unix.IFA_F_TENTATIVE) != 0 {
			continue
		}
		return ip, nil
	}
	return netip.Addr{}, nil
}
