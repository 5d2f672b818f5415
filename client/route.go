package client

import "net/netip"

// route is a way to a gateway: the router's address, the link it is on and
// this machine's address there. Each OS finds them its own way: netlink on
// Linux (route_linux.go, route6_linux.go), the routing socket on macOS and
// the BSDs, the IP Helper API on Windows.
type route struct {
	iface   string
	ifindex int
	local   netip.Addr
	gw      netip.Addr
	metric  int
}
