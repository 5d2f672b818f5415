package upnpsrv

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Neighbours tells the link-layer address of a LAN host's IP address, from
// the gateway's neighbour table (ARP for IPv4, NDP for IPv6). In secure mode
// a host may open a pinhole for any address with the same link-layer
// address as the one it sends the request from: a host with several IPv6
// addresses (global, temporary, ULA) asks from one of them for another.
type Neighbours interface {
	// LinkAddr returns the link-layer address of ip, or an error when the
	// table holds none for it (or cannot be read).
	LinkAddr(ip netip.Addr) (net.HardwareAddr, error)
}

// errNoNeighbour means the neighbour table holds no usable entry for an
// address.
var errNoNeighbour = errors.New("upnpsrv: no neighbour entry")

// KernelNeighbours reads the kernel's neighbour table over netlink
// (RTM_GETNEIGH) in the network namespace of the calling thread, the
// gateway's. Entries that are incomplete or failed name no link-layer
// address and are skipped.
type KernelNeighbours struct{}

// LinkAddr returns the link-layer address the kernel's neighbour table
// holds for ip.
func (KernelNeighbours) LinkAddr(ip netip.Addr) (net.HardwareAddr, error) {
	ip = ip.Unmap().WithZone("")
	family := netlink.FAMILY_V6
	if ip.Is4() {
		family = netlink.FAMILY_V4
	}
	neighs, err := netlink.NeighList(0, family)
	if err != nil {
		return nil, fmt.Errorf("upnpsrv: neighbour table: %w", err)
	}
	for _, n := range neighs {
		a, ok := netip.AddrFromSlice(n.IP)
		if !ok || a.Unmap() != ip || len(n.HardwareAddr) == 0 {
			continue
		}
		if n.State&(unix.NUD_INCOMPLETE|unix.NUD_FAILED) != 0 || n.State == unix.NUD_NONE {
			continue
		}
		return n.HardwareAddr, nil
	}
	return nil, fmt.Errorf("%w for %v", errNoNeighbour, ip)
}
