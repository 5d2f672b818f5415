//go:build darwin || freebsd || openbsd

package client

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	rtsock "golang.org/x/net/route"
	"golang.org/x/sys/unix"
)

// defaultRoutes returns the IPv4 default routes that go through a router,
// one per (link, router), lowest metric first; only those on iface when it
// is not empty. They are read from the routing socket's dump of the routing
// table (sysctl NET_RT_DUMP, route(4)).
func defaultRoutes(iface string) ([]route, error) {
	return routingSocketDefaults(false, iface)
}

// defaultRoutes6 returns the IPv6 default routers, as defaultRoutes, each
// with a global address of this machine on its link: the PCP servers for
// pinholes (RFC 6887 §8.1). A link without a global address is left out.
func defaultRoutes6(iface string) ([]route, error) {
	return routingSocketDefaults(true, iface)
}

func routingSocketDefaults(v6 bool, iface string) ([]route, error) {
	rib, err := rtsock.FetchRIB(unix.AF_UNSPEC, rtsock.RIBTypeRoute, 0)
	if err != nil {
		return nil, fmt.Errorf("client: routing table: %w", err)
	}
	defaults, err := ribDefaultRoutes(rib)
	if err != nil {
		return nil, err
	}
	return pickRoutes(defaults, v6, iface, routeLookups{link: netLink, localTo: sourceAddrTo})
}

// ribDefaultRoutes returns the default routes (destination 0.0.0.0/0 or
// ::/0, up, through a router) of rib, a dump of the routing table: a
// sequence of routing messages, each an rt_msghdr (its length first, in
// the machine's byte order) followed by its socket addresses (route(4)).
// Each message is parsed alone so that its header can be read for the
// system's route preference (routeMetric).
func ribDefaultRoutes(rib []byte) ([]defaultRoute, error) {
	var out []defaultRoute
	for len(rib) > 0 {
		if len(rib) < 4 {
			return nil, fmt.Errorf("client: routing table: %d bytes left after the last message", len(rib))
		}
		n := int(binary.NativeEndian.Uint16(rib))
		if n < 4 || n > len(rib) {
			return nil, fmt.Errorf("client: routing table: message length %d of %d bytes left", n, len(rib))
		}
		msg := rib[:n]
		rib = rib[n:]
		msgs, err := rtsock.ParseRIB(rtsock.RIBTypeRoute, msg)
		if err != nil {
			return nil, fmt.Errorf("client: routing table message: %w", err)
		}
		for _, m := range msgs {
			rm, ok := m.(*rtsock.RouteMessage)
			if !ok {
				continue
			}
			if gw, ok := defaultGateway(rm); ok {
				out = append(out, defaultRoute{ifindex: rm.Index, gw: gw, metric: routeMetric(msg, rm.Flags)})
			}
		}
	}
	return out, nil
}

// defaultGateway returns the router of m when m is a usable default route:
// up, through a router, not a host, reject or blackhole route, destination
// the unspecified address with no netmask or an all-zero one.
func defaultGateway(m *rtsock.RouteMessage) (netip.Addr, bool) {
	const need = unix.RTF_UP | unix.RTF_GATEWAY
	if m.Flags&need != need || m.Flags&(unix.RTF_HOST|unix.RTF_REJECT|unix.RTF_BLACKHOLE) != 0 || m.Err != nil {
		return netip.Addr{}, false
	}
	at := func(i int) rtsock.Addr {
		if i < len(m.Addrs) {
			return m.Addrs[i]
		}
		return nil
	}
	dst, ok := sockAddr(at(unix.RTAX_DST))
	if !ok || !dst.IsUnspecified() {
		return netip.Addr{}, false
	}
	if mask := at(unix.RTAX_NETMASK); mask != nil {
		if bits, ok := sockAddr(mask); !ok || !bits.IsUnspecified() {
			return netip.Addr{}, false
		}
	}
	gw, ok := sockAddr(at(unix.RTAX_GATEWAY))
	if !ok || gw.Is4() != dst.Is4() || gw.IsUnspecified() {
		return netip.Addr{}, false // a link address: a route onto the link, no router
	}
	return gw, true
}

// sockAddr returns the internet address of a, without its zone (the link
// is the route's): false for a link-layer or other address.
func sockAddr(a rtsock.Addr) (netip.Addr, bool) {
	switch a := a.(type) {
	case *rtsock.Inet4Addr:
		return netip.AddrFrom4(a.IP), true
	case *rtsock.Inet6Addr:
		return netip.AddrFrom16(a.IP), true
	}
	return netip.Addr{}, false
}
