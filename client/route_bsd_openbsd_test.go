package client

import "net/netip"

// goldenRIB is a routing-table dump of OpenBSD (sys/net/route.h): rt_msghdr of 96 bytes (rtm_msglen u16, rtm_version, rtm_type, rtm_hdrlen u16, rtm_index u16, rtm_tableid u16, rtm_priority, rtm_mpls, rtm_addrs, rtm_flags, then rtm_fmask, rtm_pid, rtm_seq, rtm_errno, rtm_inits and rt_metrics), addresses 8-byte aligned, AF_INET6 24. The routes carry priorities 8 (static) and 16.
// See route_bsd_test.go for how it was made.
var goldenRIB = "" +
	// IPv4 default route via 198.51.100.1 on link 2
	"8800050460000200000008000700000003080000" + // msglen 136, version 5, type RTM_GET, hdrlen 96, index 2, tableid 0, priority 8, addrs 0x7, flags 0x803
	zeros(76) + // rtm_fmask, rtm_pid, rtm_seq, rtm_errno, rtm_inits, rt_metrics (56 bytes): 0
	"10020000000000000000000000000000" + // sockaddr_in len 16 AF_INET 0.0.0.0
	"10020000c63364010000000000000000" + // sockaddr_in len 16 AF_INET 198.51.100.1
	"0000000000000000" + // sockaddr_in, sa_len 0 (the kernel's short form of 0.0.0.0)
	// 198.51.100.0/24 onto link 2: no router
	"9800050460000200000004000700000001080000" + // msglen 152, version 5, type RTM_GET, hdrlen 96, index 2, tableid 0, priority 4, addrs 0x7, flags 0x801
	zeros(76) + // rtm_fmask, rtm_pid, rtm_seq, rtm_errno, rtm_inits, rt_metrics (56 bytes): 0
	"10020000c63364000000000000000000" + // sockaddr_in len 16 AF_INET 198.51.100.0
	"141202000600000000000000000000000000000000000000" + // sockaddr_dl len 20 AF_LINK index 2 (a route onto the link)
	"10020000ffffff000000000000000000" + // sockaddr_in len 16 AF_INET 255.255.255.0
	// IPv6 default route via fe80::1 (KAME form, link 2 embedded) on link 2
	"c000050460000200000008000700000003080000" + // msglen 192, version 5, type RTM_GET, hdrlen 96, index 2, tableid 0, priority 8, addrs 0x7, flags 0x803
	zeros(76) + // rtm_fmask, rtm_pid, rtm_seq, rtm_errno, rtm_inits, rt_metrics (56 bytes): 0
	"1c18000000000000000000000000000000000000000000000000000000000000" + // sockaddr_in6 len 28 AF_INET6(24) ::
	"1c18000000000000fe8000020000000000000000000000010000000000000000" + // sockaddr_in6 len 28 AF_INET6(24) fe80:2::1 (fe80::1%2)
	"1c18000000000000000000000000000000000000000000000000000000000000" + // sockaddr_in6 len 28 AF_INET6(24) ::
	// IPv4 default route via 203.0.113.1 on link 3
	"8800050460000300000010000700000003080000" + // msglen 136, version 5, type RTM_GET, hdrlen 96, index 3, tableid 0, priority 16, addrs 0x7, flags 0x803
	zeros(76) + // rtm_fmask, rtm_pid, rtm_seq, rtm_errno, rtm_inits, rt_metrics (56 bytes): 0
	"10020000000000000000000000000000" + // sockaddr_in len 16 AF_INET 0.0.0.0
	"10020000cb0071010000000000000000" + // sockaddr_in len 16 AF_INET 203.0.113.1
	"0000000000000000" + // sockaddr_in, sa_len 0 (the kernel's short form of 0.0.0.0)
	// host route to 198.51.100.9 via 198.51.100.1: not a default
	"8000050460000200000008000300000007000000" + // msglen 128, version 5, type RTM_GET, hdrlen 96, index 2, tableid 0, priority 8, addrs 0x3, flags 0x7
	zeros(76) + // rtm_fmask, rtm_pid, rtm_seq, rtm_errno, rtm_inits, rt_metrics (56 bytes): 0
	"10020000c63364090000000000000000" + // sockaddr_in len 16 AF_INET 198.51.100.9
	"10020000c63364010000000000000000" // sockaddr_in len 16 AF_INET 198.51.100.1

var goldenDefaults = []defaultRoute{{2, netip.MustParseAddr("198.51.100.1"), 8}, {2, netip.MustParseAddr("fe80::1"), 8}, {3, netip.MustParseAddr("203.0.113.1"), 16}}
