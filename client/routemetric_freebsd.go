package client

// routeMetric returns how much less a route is preferred: FreeBSD's
// rt_msghdr carries no route priority (a routing table, FIB, holds one
// default route, or several of equal weight), so all are equal and keep
// the table's order.
func routeMetric([]byte, int) int { return 0 }
