package client

import "net/netip"

// goldenRIB is a routing-table dump of macOS (xnu bsd/net/route.h): rt_msghdr of 92 bytes (rtm_msglen u16, rtm_version, rtm_type, rtm_index u16, 2 bytes padding, rtm_flags, rtm_addrs, then rtm_pid, rtm_seq, rtm_errno, rtm_use, rtm_inits and rt_metrics), addresses 4-byte aligned, AF_INET6 30. The route on link 3 is a scoped one (RTF_IFSCOPE 0x1000000): after the primary.
// See route_bsd_test.go for how it was made.
var goldenRIB = "" +
	// IPv4 default route via 198.51.100.1 on link 2
	"80000504020000000308000007000000" + // msglen 128, version 5, type RTM_GET, index 2, flags 0x803, addrs 0x7
	zeros(76) + // rtm_pid, rtm_seq, rtm_errno, rtm_use, rtm_inits, rt_metrics (56 bytes): 0
	"10020000000000000000000000000000" + // sockaddr_in len 16 AF_INET 0.0.0.0
	"10020000c63364010000000000000000" + // sockaddr_in len 16 AF_INET 198.51.100.1
	"00000000" + // sockaddr_in, sa_len 0 (the kernel's short form of 0.0.0.0)
	// 198.51.100.0/24 onto link 2: no router
	"90000504020000000108000007000000" + // msglen 144, version 5, type RTM_GET, index 2, flags 0x801, addrs 0x7
	zeros(76) + // rtm_pid, rtm_seq, rtm_errno, rtm_use, rtm_inits, rt_metrics (56 bytes): 0
	"10020000c63364000000000000000000" + // sockaddr_in len 16 AF_INET 198.51.100.0
	"1412020006000000000000000000000000000000" + // sockaddr_dl len 20 AF_LINK index 2 (a route onto the link)
	"10020000ffffff000000000000000000" + // sockaddr_in len 16 AF_INET 255.255.255.0
	// IPv6 default route via fe80::1 (KAME form, link 2 embedded) on link 2
	"b0000504020000000308000007000000" + // msglen 176, version 5, type RTM_GET, index 2, flags 0x803, addrs 0x7
	zeros(76) + // rtm_pid, rtm_seq, rtm_errno, rtm_use, rtm_inits, rt_metrics (56 bytes): 0
	"1c1e0000000000000000000000000000000000000000000000000000" + // sockaddr_in6 len 28 AF_INET6(30) ::
	"1c1e000000000000fe80000200000000000000000000000100000000" + // sockaddr_in6 len 28 AF_INET6(30) fe80:2::1 (fe80::1%2)
	"1c1e0000000000000000000000000000000000000000000000000000" + // sockaddr_in6 len 28 AF_INET6(30) ::
	// IPv4 default route via 203.0.113.1 on link 3 (RTF_IFSCOPE)
	"80000504030000000308000107000000" + // msglen 128, version 5, type RTM_GET, index 3, flags 0x1000803, addrs 0x7
	zeros(76) + // rtm_pid, rtm_seq, rtm_errno, rtm_use, rtm_inits, rt_metrics (56 bytes): 0
	"10020000000000000000000000000000" + // sockaddr_in len 16 AF_INET 0.0.0.0
	"10020000cb0071010000000000000000" + // sockaddr_in len 16 AF_INET 203.0.113.1
	"00000000" + // sockaddr_in, sa_len 0 (the kernel's short form of 0.0.0.0)
	// host route to 198.51.100.9 via 198.51.100.1: not a default
	"7c000504020000000700000003000000" + // msglen 124, version 5, type RTM_GET, index 2, flags 0x7, addrs 0x3
	zeros(76) + // rtm_pid, rtm_seq, rtm_errno, rtm_use, rtm_inits, rt_metrics (56 bytes): 0
	"10020000c63364090000000000000000" + // sockaddr_in len 16 AF_INET 198.51.100.9
	"10020000c63364010000000000000000" // sockaddr_in len 16 AF_INET 198.51.100.1

var goldenDefaults = []defaultRoute{{2, netip.MustParseAddr("198.51.100.1"), 0}, {2, netip.MustParseAddr("fe80::1"), 0}, {3, netip.MustParseAddr("203.0.113.1"), 1}}
