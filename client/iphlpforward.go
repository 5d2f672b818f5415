package client

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// The layout of MIB_IPFORWARD_TABLE2 and its MIB_IPFORWARD_ROW2 rows
// (netioapi.h), as GetIpForwardTable2 returns them on 64-bit Windows (amd64
// and arm64, little-endian; natural alignment, rows 8-byte aligned for
// their LUID):
//
//	table:  0  NumEntries ULONG           row:  0  InterfaceLuid NET_LUID (u64)
//	        4  (padding)                        8  InterfaceIndex NET_IFINDEX (u32)
//	        8  Table[NumEntries]               12  DestinationPrefix.Prefix SOCKADDR_INET (28)
//	                                           40  DestinationPrefix.PrefixLength UCHAR (+3 padding)
//	                                           44  NextHop SOCKADDR_INET (28)
//	                                           72  SitePrefixLength UCHAR (+3 padding)
//	                                           76  ValidLifetime, 80 PreferredLifetime ULONG
//	                                           84  Metric ULONG, 88 Protocol (enum, 4)
//	                                           92  Loopback, 93 AutoconfigureAddress,
//	                                           94  Publish, 95 Immortal BOOLEAN
//	                                           96  Age ULONG, 100 Origin (enum, 4)
//
// SOCKADDR_INET is a union of SOCKADDR_IN (family u16, port, in_addr at 4)
// and SOCKADDR_IN6 (family u16, port, flow info, in6_addr at 8, scope id
// at 24). route_windows.go checks these offsets against
// golang.org/x/sys/windows' MibIpForwardRow2 when it is built.
const (
	forwardTableRows             = 8
	forwardRowLen                = 104
	forwardRowIfIndex            = 8
	forwardRowDestination        = 12
	forwardRowPrefixLen          = 40
	forwardRowNextHop            = 44
	forwardRowMetric             = 84
	forwardRowLoopback           = 92
	sockaddrInetLen              = 28
	sockaddrInetFamily           = 0
	sockaddrIn4Addr              = 4
	sockaddrIn6Addr              = 8
	windowsAFInet         uint16 = 2  // ws2def.h AF_INET
	windowsAFInet6        uint16 = 23 // ws2def.h AF_INET6
)

// errShortForwardTable is returned for a forward table buffer shorter than
// its entry count says.
var errShortForwardTable = errors.New("client: short IP forward table")

// decodeForwardTable2 returns the default routes (destination prefix of
// length 0, a next hop that is not the unspecified address, not a loopback
// route) of b, a MIB_IPFORWARD_TABLE2 as GetIpForwardTable2 fills it, with
// each row's route metric (Windows adds the interface's metric to it).
func decodeForwardTable2(b []byte) ([]defaultRoute, error) {
	if len(b) < forwardTableRows {
		return nil, fmt.Errorf("%w: %d bytes, no entry count", errShortForwardTable, len(b))
	}
	n := binary.LittleEndian.Uint32(b)
	if uint64(len(b)-forwardTableRows) < uint64(n)*forwardRowLen {
		return nil, fmt.Errorf("%w: %d bytes for %d rows", errShortForwardTable, len(b), n)
	}
	var out []defaultRoute
	for i := range int(n) {
		row := b[forwardTableRows+i*forwardRowLen:][:forwardRowLen]
		if row[forwardRowPrefixLen] != 0 || row[forwardRowLoopback] != 0 {
			continue
		}
		if _, ok := sockaddrInet(row[forwardRowDestination:]); !ok {
			continue
		}
		gw, ok := sockaddrInet(row[forwardRowNextHop:])
		if !ok || gw.IsUnspecified() {
			continue // an on-link default route: no router
		}
		out = append(out, defaultRoute{
			ifindex: int(binary.LittleEndian.Uint32(row[forwardRowIfIndex:])),
			gw:      gw,
			metric:  int(binary.LittleEndian.Uint32(row[forwardRowMetric:])),
		})
	}
	return out, nil
}

// sockaddrInet returns the address of the SOCKADDR_INET at the start of b
// (at least sockaddrInetLen bytes), without its scope (the route's link is
// its interface), or false for a family other than AF_INET and AF_INET6.
func sockaddrInet(b []byte) (netip.Addr, bool) {
	switch binary.LittleEndian.Uint16(b[sockaddrInetFamily:]) {
	case windowsAFInet:
		return netip.AddrFrom4([4]byte(b[sockaddrIn4Addr:])), true
	case windowsAFInet6:
		return netip.AddrFrom16([16]byte(b[sockaddrIn6Addr:])), true
	}
	return netip.Addr{}, false
}
