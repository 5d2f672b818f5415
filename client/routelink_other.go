//go:build !linux

package client

import (
	"fmt"
	"net"
	"net/netip"
)

// netLink returns the name and addresses of the link with index, as the
// net package reads them (the routing socket on macOS and the BSDs,
// GetAdaptersAddresses on Windows); it cannot tell a temporary or
// deprecated IPv6 address from others.
func netLink(index int) (linkInfo, error) {
	ifc, err := net.InterfaceByIndex(index)
	if err != nil {
		return linkInfo{}, err
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return linkInfo{}, fmt.Errorf("addresses of %s: %w", ifc.Name, err)
	}
	info := linkInfo{name: ifc.Name}
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
		if bits == 0 || ones < 0 {
			ones = ip.BitLen() // a mask the net package could not read: the address alone
		}
		info.addrs = append(info.addrs, linkAddr{prefix: netip.PrefixFrom(ip, ones)})
	}
	return info, nil
}

// sourceAddrTo returns the source address the kernel chooses towards gw
// (routeTo: connecting a UDP socket sends nothing).
func sourceAddrTo(gw netip.Addr) (netip.Addr, error) {
	r, err := routeTo(gw)
	if err != nil {
		return netip.Addr{}, err
	}
	return r.local, nil
}
