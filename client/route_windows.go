package client

import (
	"fmt"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/windows"
)

// The decoder's layout (iphlpforward.go) is golang.org/x/sys/windows'
// MibIpForwardTable2, itself netioapi.h's: a difference fails the build
// (a negative constant converted to uintptr).
const (
	_ = uintptr(forwardRowLen - unsafe.Sizeof(windows.MibIpForwardRow2{}))
	_ = uintptr(unsafe.Sizeof(windows.MibIpForwardRow2{}) - forwardRowLen)
	_ = uintptr(forwardTableRows - unsafe.Offsetof(windows.MibIpForwardTable2{}.Table))
	_ = uintptr(unsafe.Offsetof(windows.MibIpForwardTable2{}.Table) - forwardTableRows)
	_ = uintptr(forwardRowIfIndex - unsafe.Offsetof(windows.MibIpForwardRow2{}.InterfaceIndex))
	_ = uintptr(unsafe.Offsetof(windows.MibIpForwardRow2{}.InterfaceIndex) - forwardRowIfIndex)
	_ = uintptr(forwardRowDestination - unsafe.Offsetof(windows.MibIpForwardRow2{}.DestinationPrefix))
	_ = uintptr(unsafe.Offsetof(windows.MibIpForwardRow2{}.DestinationPrefix) - forwardRowDestination)
	_ = uintptr(forwardRowPrefixLen - forwardRowDestination - unsafe.Offsetof(windows.IpAddressPrefix{}.PrefixLength))
	_ = uintptr(unsafe.Offsetof(windows.IpAddressPrefix{}.PrefixLength) + forwardRowDestination - forwardRowPrefixLen)
	_ = uintptr(forwardRowNextHop - unsafe.Offsetof(windows.MibIpForwardRow2{}.NextHop))
	_ = uintptr(unsafe.Offsetof(windows.MibIpForwardRow2{}.NextHop) - forwardRowNextHop)
	_ = uintptr(forwardRowMetric - unsafe.Offsetof(windows.MibIpForwardRow2{}.Metric))
	_ = uintptr(unsafe.Offsetof(windows.MibIpForwardRow2{}.Metric) - forwardRowMetric)
	_ = uintptr(forwardRowLoopback - unsafe.Offsetof(windows.MibIpForwardRow2{}.Loopback))
	_ = uintptr(unsafe.Offsetof(windows.MibIpForwardRow2{}.Loopback) - forwardRowLoopback)
	_ = uintptr(sockaddrInetLen - unsafe.Sizeof(windows.RawSockaddrInet{}))
	_ = uintptr(unsafe.Sizeof(windows.RawSockaddrInet{}) - sockaddrInetLen)
)

// defaultRoutes returns the IPv4 default routes that go through a router,
// one per (link, router), lowest metric first (the route's metric plus its
// interface's, as Windows chooses); only those on iface (the interface's
// name as the net package gives it, e.g. "Ethernet") when it is not empty.
// They are read with the IP Helper API's GetIpForwardTable2.
func defaultRoutes(iface string) ([]route, error) {
	return forwardTableDefaults(windows.AF_INET, iface)
}

// defaultRoutes6 returns the IPv6 default routers, as defaultRoutes, each
// with a global address of this machine on its link that is preferred,
// not temporary: the PCP servers for pinholes (RFC 6887 §8.1). A link
// without one is left out.
func defaultRoutes6(iface string) ([]route, error) {
	return forwardTableDefaults(windows.AF_INET6, iface)
}

func forwardTableDefaults(family uint16, iface string) ([]route, error) {
	defaults, err := forwardTable(family)
	if err != nil {
		return nil, err
	}
	for i, d := range defaults {
		row := windows.MibIpInterfaceRow{Family: family, InterfaceIndex: uint32(d.ifindex)}
		if err := windows.GetIpInterfaceEntry(&row); err != nil {
			return nil, fmt.Errorf("client: GetIpInterfaceEntry of interface %d: %w", d.ifindex, err)
		}
		defaults[i].metric += int(row.Metric)
	}
	link := netLink
	if family == windows.AF_INET6 {
		avoid, err := avoidedAddrs6()
		if err != nil {
			return nil, err
		}
		link = func(index int) (linkInfo, error) {
			info, err := netLink(index)
			for i, a := range info.addrs {
				info.addrs[i].avoid = avoid[a.prefix.Addr()]
			}
			return info, err
		}
	}
	return pickRoutes(defaults, family == windows.AF_INET6, iface, routeLookups{link: link, localTo: sourceAddrTo})
}

// forwardTable returns the default routes of family in the system's
// forward table (GetIpForwardTable2), decoded from the table's bytes.
func forwardTable(family uint16) ([]defaultRoute, error) {
	var t *windows.MibIpForwardTable2
	if err := windows.GetIpForwardTable2(family, &t); err != nil {
		return nil, fmt.Errorf("client: GetIpForwardTable2: %w", err)
	}
	defer windows.FreeMibTable(unsafe.Pointer(t))
	b := unsafe.Slice((*byte)(unsafe.Pointer(t)), forwardTableRows+int(t.NumEntries)*forwardRowLen)
	return decodeForwardTable2(b)
}

// avoidedAddrs6 returns this machine's IPv6 addresses a pinhole should not
// lead to: temporary ones (RFC 8981, a random suffix) and those not
// preferred (deprecated, tentative, duplicate), from
// GetUnicastIpAddressTable.
func avoidedAddrs6() (map[netip.Addr]bool, error) {
	var t *windows.MibUnicastIpAddressTable
	if err := windows.GetUnicastIpAddressTable(windows.AF_INET6, &t); err != nil {
		return nil, fmt.Errorf("client: GetUnicastIpAddressTable: %w", err)
	}
	defer windows.FreeMibTable(unsafe.Pointer(t))
	avoid := make(map[netip.Addr]bool)
	for _, r := range unsafe.Slice(&t.Table[0], t.NumEntries) {
		if r.SuffixOrigin == windows.IpSuffixOriginRandom || r.DadState != windows.IpDadStatePreferred {
			avoid[netip.AddrFrom16(r.Address.Addr)] = true
		}
	}
	return avoid, nil
}
