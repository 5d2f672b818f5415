package main

import (
	"net"
	"net/netip"
	"slices"

	"github.com/portlease/portlease/gateway/config"
	"github.com/portlease/portlease/gateway/ifaddr"
)

// upnpAddrs6 returns the IPv6 LAN addresses the UPnP service serves beside
// the IPv4 ones that resolveListeners finds (UPnP Device Architecture 1.1
// Appendix A, IPv6): the global and unique local addresses of every link a
// "listen on IF" or "listen on *" directive serves, and every address a
// "listen on ADDRESS" directive names that some link of this host holds.
// Link-local addresses are left out: a LOCATION on one would need the
// searcher's zone, and a LAN host that has a global or unique local
// address reaches the gateway's. The external interface is never served.
// A directive that names nothing for now names nothing here either (its
// IPv4 side is reported by resolveListeners).
func upnpAddrs6(cfg *config.Config) []lanAddress {
	var out []lanAddress
	add := func(ifc ifaddr.Interface, want func(netip.Addr) bool) {
		if ifc.Name == cfg.ExternalInterface {
			return
		}
		for _, p := range ifc.Prefixes {
			a := p.Addr()
			if !servableIPv6(a) || !want(a) {
				continue
			}
			la := lanAddress{addr: p, ifname: ifc.Name, index: ifc.Index}
			if !slices.Contains(out, la) {
				out = append(out, la)
			}
		}
	}
	all := func(netip.Addr) bool { return true }
	for _, l := range cfg.Listen {
		switch {
		case l.Interface != "":
			if ifc, err := ifaddr.Lookup(l.Interface); err == nil {
				add(ifc, all)
			}
		case l.Addr.IsUnspecified():
			links, err := net.Interfaces()
			if err != nil {
				continue
			}
			for _, link := range links {
				if link.Flags&net.FlagLoopback != 0 {
					continue
				}
				if ifc, err := ifaddr.Lookup(link.Name); err == nil {
					add(ifc, all)
				}
			}
		case servableIPv6(l.Addr):
			if ifc, err := ifaddr.ByAddress(l.Addr); err == nil {
				add(ifc, func(a netip.Addr) bool { return a == l.Addr })
			}
		}
	}
	return out
}

// servableIPv6 reports whether a is an IPv6 address the UPnP service can
// be reached on from the LAN: global or unique local, not link-local.
func servableIPv6(a netip.Addr) bool {
	return a.Is6() && !a.Is4In6() && a.IsGlobalUnicast() && a.Zone() == ""
}
