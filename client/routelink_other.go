//go:build !linux

package client

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/portlease/portlease/internal/netaddr"
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
	for _, p := range netaddr.Prefixes(addrs) {
		info.addrs = append(info.addrs, linkAddr{prefix: p})
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
