package client

import "net/netip"

// goldenRIB is a routing-table dump of FreeBSD amd64/arm64 (sys/net/route.h): rt_msghdr of 152 bytes (rtm_msglen u16, rtm_version, rtm_type, rtm_index u16, rtm_spare1 u16, rtm_flags, rtm_addrs, then rtm_pid, rtm_seq, rtm_errno, rtm_fmask, rtm_inits u_long and rt_metrics of 112 bytes), addresses 8-byte aligned, AF_INET6 28. FreeBSD has no route priority: all equal, in table order.
// See route_bsd_test.go for how it was made.
var goldenRIB = "" +
	// IPv4 default route via 198.51.100.1 on link 2
	"c8000504020000000308000007000000" + // msglen 200, version 5, type RTM_GET, index 2, flags 0x803, addrs 0x7
	zeros(136) + // rtm_pid, rtm_seq, rtm_errno, rtm_fmask, rtm_inits (u_long), rt_metrics (112 bytes): 0
	"10020000000000000000000000000000" + // sockaddr_in len 16 AF_INET 0.0.0.0
	"10020000c63364010000000000000000" + // sockaddr_in len 16 AF_INET 198.51.100.1
	"10020000000000000000000000000000" + // sockaddr_in len 16 AF_INET 0.0.0.0
	// 198.51.100.0/24 onto link 2: no router
	"d0000504020000000108000007000000" + // msglen 208, version 5, type RTM_GET, index 2, flags 0x801, addrs 0x7
	zeros(136) + // rtm_pid, rtm_seq, rtm_errno, rtm_fmask, rtm_inits (u_long), rt_metrics (112 bytes): 0
	"10020000c63364000000000000000000" + // sockaddr_in len 16 AF_INET 198.51.100.0
	"141202000600000000000000000000000000000000000000" + // sockaddr_dl len 20 AF_LINK index 2 (a route onto the link)
	"10020000ffffff000000000000000000" + // sockaddr_in len 16 AF_INET 255.255.255.0
	// IPv6 default route via fe80::1 (KAME form, link 2 embedded) on link 2
	"f8000504020000000308000007000000" + // msglen 248, version 5, type RTM_GET, index 2, flags 0x803, addrs 0x7
	zeros(136) + // rtm_pid, rtm_seq, rtm_errno, rtm_fmask, rtm_inits (u_long), rt_metrics (112 bytes): 0
	"1c1c000000000000000000000000000000000000000000000000000000000000" + // sockaddr_in6 len 28 AF_INET6(28) ::
	"1c1c000000000000fe8000020000000000000000000000010000000000000000" + // sockaddr_in6 len 28 AF_INET6(28) fe80:2::1 (fe80::1%2)
	"1c1c000000000000000000000000000000000000000000000000000000000000" + // sockaddr_in6 len 28 AF_INET6(28) ::
	// IPv4 default route via 203.0.113.1 on link 3
	"c8000504030000000308000007000000" + // msglen 200, version 5, type RTM_GET, index 3, flags 0x803, addrs 0x7
	zeros(136) + // rtm_pid, rtm_seq, rtm_errno, rtm_fmask, rtm_inits (u_long), rt_metrics (112 bytes): 0
	"10020000000000000000000000000000" + // sockaddr_in len 16 AF_INET 0.0.0.0
	"10020000cb0071010000000000000000" + // sockaddr_in len 16 AF_INET 203.0.113.1
	"10020000000000000000000000000000" + // sockaddr_in len 16 AF_INET 0.0.0.0
	// host route to 198.51.100.9 via 198.51.100.1: not a default
	"b8000504020000000700000003000000" + // msglen 184, version 5, type RTM_GET, index 2, flags 0x7, addrs 0x3
	zeros(136) + // rtm_pid, rtm_seq, rtm_errno, rtm_fmask, rtm_inits (u_long), rt_metrics (112 bytes): 0
	"10020000c63364090000000000000000" + // sockaddr_in len 16 AF_INET 198.51.100.9
	"10020000c63364010000000000000000" // sockaddr_in len 16 AF_INET 198.51.100.1

var goldenDefaults = []defaultRoute{{2, netip.MustParseAddr("198.51.100.1"), 0}, {2, netip.MustParseAddr("fe80::1"), 0}, {3, netip.MustParseAddr("203.0.113.1"), 0}}
