// Package netaddr turns the interface addresses the net package reports
// into netip prefixes, the one conversion the client's per-OS code and the
// UPnP client's on-link check share.
package netaddr

import (
	"net"
	"net/netip"
)

// Prefixes returns addrs (from net.Interface.Addrs or net.InterfaceAddrs)
// as prefixes that keep the address itself (not masked): an IPv4 address
// in IPv6 form is unmapped with its mask shortened to match, and an address
// whose mask the net package could not read is the address alone. What is
// not an *net.IPNet is left out.
func Prefixes(addrs []net.Addr) []netip.Prefix {
	var ps []netip.Prefix
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ones, bits := n.Mask.Size()
		if ip.Is4In6() && bits == 128 {
			ones -= 96
		}
		ip = ip.Unmap()
		if bits == 0 || ones < 0 || ones > ip.BitLen() {
			ones = ip.BitLen()
		}
		ps = append(ps, netip.PrefixFrom(ip, ones))
	}
	return ps
}
