package ssdpsrv

import (
	"net/netip"

	"github.com/portlease/portlease/upnp"
)

// SSDP over IPv6 (UDA 1.1 Appendix A; UDA 2.0 §1.1.2): the device listens
// on the link-local group FF02::C and the site-local group FF05::C, and
// advertises to both. A Link whose Addr is IPv6 is served this way.

// siteLocalGroup6 is FF05::C, SSDP's site-local IPv6 group.
var siteLocalGroup6 = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x05, 15: 0x0c})

// groups returns the SSDP multicast groups of a family: 239.255.255.250,
// or FF02::C and FF05::C.
func groups(is4 bool) []netip.Addr {
	if is4 {
		return []netip.Addr{upnp.SSDPMulticastAddr().Addr()}
	}
	return []netip.Addr{upnp.SSDPMulticastAddr6().Addr(), siteLocalGroup6}
}

// notifyHost returns the HOST header of an advertisement sent to group
// (UDA 1.1 Appendix A: "HOST: [FF02::C]:1900").
func notifyHost(group netip.Addr) string {
	return netip.AddrPortFrom(group, upnp.SSDPPort).String()
}

// validSource6 reports whether a search from src may be answered on l, an
// IPv6 link: a unicast address with a port, link-local (it came through
// l's interface, so it is on l) or in l.Prefix when that is set.
func validSource6(l *link, src netip.AddrPort) bool {
	from := src.Addr()
	switch {
	case !from.Is6() || from.Is4In6(), from.IsMulticast(), from.IsUnspecified(), from.IsLoopback(), src.Port() == 0:
		return false
	case from.IsLinkLocalUnicast():
		return true
	}
	return !l.Prefix.IsValid() || l.Prefix.Contains(from)
}

// familyName returns "IPv4" or "IPv6", a's family.
func familyName(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}
