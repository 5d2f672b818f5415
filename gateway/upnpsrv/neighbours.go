package upnpsrv

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

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
// address and are skipped. An address the table does not hold is solicited:
// a host's other addresses (a privacy address just made, a ULA) need not
// have talked to the gateway yet.
type KernelNeighbours struct{}

// solicitWait bounds how long LinkAddr waits for the answer to a
// solicitation; on a LAN it comes within a millisecond.
const solicitWait = 500 * time.Millisecond

// LinkAddr returns the link-layer address the kernel's neighbour table
// holds for ip. When it holds none, LinkAddr sends ip one empty UDP
// datagram to the discard port (9), which makes the kernel resolve it (ARP,
// NDP neighbour solicitation), and reads the table again until the entry is
// there or solicitWait has passed. The caller sends only to LAN addresses.
func (k KernelNeighbours) LinkAddr(ip netip.Addr) (net.HardwareAddr, error) {
	ip = ip.Unmap().WithZone("")
	hw, err := k.lookup(ip)
	if !errors.Is(err, errNoNeighbour) {
		return hw, err
	}
	c, derr := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 9)))
	if derr != nil {
		return nil, err
	}
	_, _ = c.Write(nil)
	c.Close()
	for deadline := time.Now().Add(solicitWait); time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		if hw, err = k.lookup(ip); !errors.Is(err, errNoNeighbour) {
			return hw, err
		}
	}
	return nil, err
}

// lookup reads the table's entry for ip.
func (KernelNeighbours) lookup(ip netip.Addr) (net.HardwareAddr, error) {
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
