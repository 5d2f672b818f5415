package client

// rtmPriorityOffset is the offset of rtm_priority in OpenBSD's rt_msghdr
// (net/route.h: rtm_msglen u16, rtm_version u8, rtm_type u8, rtm_hdrlen
// u16, rtm_index u16, rtm_tableid u16, rtm_priority u8).
const rtmPriorityOffset = 10

// routeMetric returns the route's priority on OpenBSD, lower preferred
// (route(8): the priority of static routes is 8, of routes from a DHCP
// client 16...).
func routeMetric(hdr []byte, _ int) int {
	if len(hdr) <= rtmPriorityOffset {
		return 0
	}
	return int(hdr[rtmPriorityOffset])
}
