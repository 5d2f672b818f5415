package client

// rtfIfscope is macOS's RTF_IFSCOPE (net/route.h): a route bound to its
// interface, one of the per-interface default routes beside the primary
// (unscoped) one.
const rtfIfscope = 0x1000000

// routeMetric returns how much less a route is preferred: macOS has no
// route priority; its primary default route is the unscoped one, the
// scoped ones of other interfaces come after it.
func routeMetric(_ []byte, flags int) int {
	if flags&rtfIfscope != 0 {
		return 1
	}
	return 0
}
