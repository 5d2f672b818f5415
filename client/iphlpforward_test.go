package client

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"slices"
	"testing"
)

// goldenForwardTable2 is a MIB_IPFORWARD_TABLE2 as GetIpForwardTable2(AF_UNSPEC)
// fills it on 64-bit Windows. No Windows machine was at hand: it was
// assembled field by field (by a script; the comments name each field)
// from netioapi.h's MIB_IPFORWARD_ROW2, 104 bytes a row, the layout that
// route_windows.go checks against golang.org/x/sys/windows' struct when it
// builds. Little-endian; addresses are SOCKADDR_INET (AF_INET 2: in_addr at
// 4; AF_INET6 23: in6_addr at 8, scope id at 24).
const goldenForwardTable2 = "" +
	"0600000000000000" + // NumEntries 6, 4 bytes padding
	// row: 0.0.0.0/0 via 198.51.100.1 on interface 12, metric 0
	"0000000080000600" + // InterfaceLuid
	"0c000000" + // InterfaceIndex
	"02000000000000000000000000000000000000000000000000000000" + // DestinationPrefix.Prefix (SOCKADDR_INET)
	"00000000" + // DestinationPrefix.PrefixLength, padding
	"02000000c63364010000000000000000000000000000000000000000" + // NextHop (SOCKADDR_INET)
	"00000000ffffffffffffffff" + // SitePrefixLength, padding, ValidLifetime, PreferredLifetime
	"00000000" + // Metric
	"03000000" + // Protocol (MIB_IPPROTO_NETMGMT)
	"00000101" + // Loopback, AutoconfigureAddress, Publish, Immortal
	"0000000000000000" + // Age, Origin
	// row: 198.51.100.0/24 on-link (next hop 0.0.0.0) on interface 12
	"0000000080000600" + // InterfaceLuid
	"0c000000" + // InterfaceIndex
	"02000000c63364000000000000000000000000000000000000000000" + // DestinationPrefix.Prefix (SOCKADDR_INET)
	"18000000" + // DestinationPrefix.PrefixLength, padding
	"02000000000000000000000000000000000000000000000000000000" + // NextHop (SOCKADDR_INET)
	"00000000ffffffffffffffff" + // SitePrefixLength, padding, ValidLifetime, PreferredLifetime
	"00010000" + // Metric
	"03000000" + // Protocol (MIB_IPPROTO_NETMGMT)
	"00000101" + // Loopback, AutoconfigureAddress, Publish, Immortal
	"0000000000000000" + // Age, Origin
	// row: ::/0 via fe80::1%12 on interface 12, metric 256
	"0000000080000600" + // InterfaceLuid
	"0c000000" + // InterfaceIndex
	"17000000000000000000000000000000000000000000000000000000" + // DestinationPrefix.Prefix (SOCKADDR_INET)
	"00000000" + // DestinationPrefix.PrefixLength, padding
	"1700000000000000fe8000000000000000000000000000010c000000" + // NextHop (SOCKADDR_INET)
	"00000000ffffffffffffffff" + // SitePrefixLength, padding, ValidLifetime, PreferredLifetime
	"00010000" + // Metric
	"03000000" + // Protocol (MIB_IPPROTO_NETMGMT)
	"00000101" + // Loopback, AutoconfigureAddress, Publish, Immortal
	"0000000000000000" + // Age, Origin
	// row: ::/0 on-link (next hop ::) on interface 12: no router
	"0000000080000600" + // InterfaceLuid
	"0c000000" + // InterfaceIndex
	"17000000000000000000000000000000000000000000000000000000" + // DestinationPrefix.Prefix (SOCKADDR_INET)
	"00000000" + // DestinationPrefix.PrefixLength, padding
	"17000000000000000000000000000000000000000000000000000000" + // NextHop (SOCKADDR_INET)
	"00000000ffffffffffffffff" + // SitePrefixLength, padding, ValidLifetime, PreferredLifetime
	"00010000" + // Metric
	"03000000" + // Protocol (MIB_IPPROTO_NETMGMT)
	"00000101" + // Loopback, AutoconfigureAddress, Publish, Immortal
	"0000000000000000" + // Age, Origin
	// row: 0.0.0.0/0 via 127.0.0.1 marked Loopback on interface 1
	"0000000000001800" + // InterfaceLuid
	"01000000" + // InterfaceIndex
	"02000000000000000000000000000000000000000000000000000000" + // DestinationPrefix.Prefix (SOCKADDR_INET)
	"00000000" + // DestinationPrefix.PrefixLength, padding
	"020000007f0000010000000000000000000000000000000000000000" + // NextHop (SOCKADDR_INET)
	"00000000ffffffffffffffff" + // SitePrefixLength, padding, ValidLifetime, PreferredLifetime
	"00000000" + // Metric
	"03000000" + // Protocol (MIB_IPPROTO_NETMGMT)
	"01000101" + // Loopback, AutoconfigureAddress, Publish, Immortal
	"0000000000000000" + // Age, Origin
	// row: 0.0.0.0/0 via 203.0.113.1 on interface 5, metric 10
	"0000010080000600" + // InterfaceLuid
	"05000000" + // InterfaceIndex
	"02000000000000000000000000000000000000000000000000000000" + // DestinationPrefix.Prefix (SOCKADDR_INET)
	"00000000" + // DestinationPrefix.PrefixLength, padding
	"02000000cb0071010000000000000000000000000000000000000000" + // NextHop (SOCKADDR_INET)
	"00000000ffffffffffffffff" + // SitePrefixLength, padding, ValidLifetime, PreferredLifetime
	"0a000000" + // Metric
	"03000000" + // Protocol (MIB_IPPROTO_NETMGMT)
	"00000101" + // Loopback, AutoconfigureAddress, Publish, Immortal
	"0000000000000000" // Age, Origin

func TestDecodeForwardTable2(t *testing.T) {
	b, err := hex.DecodeString(goldenForwardTable2)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeForwardTable2(b)
	if err != nil {
		t.Fatalf("decodeForwardTable2: %v", err)
	}
	want := []defaultRoute{
		{ifindex: 12, gw: netip.MustParseAddr("198.51.100.1"), metric: 0},
		{ifindex: 12, gw: netip.MustParseAddr("fe80::1"), metric: 256},
		{ifindex: 5, gw: netip.MustParseAddr("203.0.113.1"), metric: 10},
	}
	if !slices.Equal(got, want) {
		t.Errorf("decodeForwardTable2(golden) = %v; want %v", got, want)
	}
}

func TestDecodeForwardTable2Short(t *testing.T) {
	b, err := hex.DecodeString(goldenForwardTable2)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 4, forwardTableRows + forwardRowLen, len(b) - 1} {
		if _, err := decodeForwardTable2(b[:n]); !errors.Is(err, errShortForwardTable) {
			t.Errorf("decodeForwardTable2(golden[:%d]) error = %v; want %v", n, err, errShortForwardTable)
		}
	}
	empty := make([]byte, forwardTableRows)
	if got, err := decodeForwardTable2(empty); err != nil || len(got) != 0 {
		t.Errorf("decodeForwardTable2(no rows) = %v, %v; want none, no error", got, err)
	}
}
