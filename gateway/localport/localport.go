// Package localport tells whether the gateway itself uses a port, so that
// the lease core never hands out a port on which one of the gateway's own
// services listens: the inbound DNAT of a mapping would take its traffic.
package localport

import (
	"errors"

	"golang.org/x/sys/unix"
)

// InUse reports whether a TCP (proto 6) or UDP (proto 17) socket of this
// network namespace is bound to port on any local IPv4 or IPv6 address. It
// asks the kernel by binding a fresh socket to the wildcard address without
// SO_REUSEADDR, which fails with EADDRINUSE exactly when some socket holds
// the port: a listener, a bound UDP socket, or a connection's local port.
// The probe costs two system calls and no scan of the socket tables.
func InUse(proto uint8, port uint16) bool {
	typ := unix.SOCK_DGRAM
	if proto == unix.IPPROTO_TCP {
		typ = unix.SOCK_STREAM
	}
	for _, family := range []int{unix.AF_INET, unix.AF_INET6} {
		fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			continue // no IPv6 in this namespace, for instance
		}
		var sa unix.Sockaddr = &unix.SockaddrInet4{Port: int(port)}
		if family == unix.AF_INET6 {
			_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
			sa = &unix.SockaddrInet6{Port: int(port)}
		}
		err = unix.Bind(fd, sa)
		unix.Close(fd)
		if errors.Is(err, unix.EADDRINUSE) {
			return true
		}
	}
	return false
}
