//go:build !linux

package client

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/portlease/portlease/internal/netaddr"
)

// routeTo returns the way to dst: the link and this machine's source
// address, as the kernel chooses them for a UDP socket connected to dst
// (connecting sends nothing). The router of the returned route is dst
// itself: it is how a gateway given by address is reached.
func routeTo(dst netip.Addr) (route, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9)))
	if err != nil {
		return route{}, fmt.Errorf("%w: no route to %s: %v", ErrNoGateway, dst, err)
	}
	local := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	c.Close()
	ifc, err := interfaceWith(local)
	if err != nil {
		return route{}, err
	}
	return route{iface: ifc.Name, ifindex: ifc.Index, local: local, gw: dst}, nil
}

// interfaceWith returns the interface that holds address a.
func interfaceWith(a netip.Addr) (net.Interface, error) {
	ifcs, err := net.Interfaces()
	if err != nil {
		return net.Interface{}, fmt.Errorf("client: list interfaces: %w", err)
	}
	for _, ifc := range ifcs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, p := range netaddr.Prefixes(addrs) {
			if p.Addr() == a.WithZone("") {
				return ifc, nil
			}
		}
	}
	return net.Interface{}, fmt.Errorf("client: no interface holds %s", a)
}
