package ssdpsrv

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// controlShared sets the options of a shared SSDP socket before it is
// bound: SO_REUSEADDR and SO_REUSEPORT, so that other SSDP listeners on
// the gateway (minissdpd, a media server) can bind port 1900 too, and
// IP_MULTICAST_ALL off, so that the socket receives only the groups it
// joined itself on the interfaces it joined them (Linux otherwise delivers
// every group any socket joined, on any interface, to a wildcard socket).
func controlShared(network, address string, c syscall.RawConn) error {
	return setSharedOptions(c, unix.IPPROTO_IP, unix.IP_MULTICAST_ALL)
}

// controlShared6 is controlShared for an IPv6 socket: IPV6_MULTICAST_ALL
// (Linux 4.20) off.
func controlShared6(network, address string, c syscall.RawConn) error {
	return setSharedOptions(c, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL)
}

// setSharedOptions sets SO_REUSEADDR and SO_REUSEPORT on, and the multicast-all
// option at level, name off.
func setSharedOptions(c syscall.RawConn, level, name int) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		for _, o := range []struct{ level, name, value int }{
			{unix.SOL_SOCKET, unix.SO_REUSEADDR, 1},
			{unix.SOL_SOCKET, unix.SO_REUSEPORT, 1},
			{level, name, 0},
		} {
			if serr = unix.SetsockoptInt(int(fd), o.level, o.name, o.value); serr != nil {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}
