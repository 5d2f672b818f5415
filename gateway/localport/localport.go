// Package localport tells whether the gateway itself uses a port, so that
// the lease core never hands out a port on which one of the gateway's own
// services listens: the inbound DNAT of a mapping would take its traffic.
package localport

import (
	"bytes"
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// Prober asks the kernel of one network namespace whether ports are in use.
// It is safe for concurrent use.
type Prober struct {
	// dualStack is true when new IPv6 sockets accept IPv4 too
	// (net.ipv6.bindv6only is 0), so that a probe need not say so.
	dualStack bool
}

// NewProber returns a Prober for the caller's network namespace, reading
// its net.ipv6.bindv6only once.
func NewProber() *Prober {
	b, err := os.ReadFile("/proc/sys/net/ipv6/bindv6only")
	return &Prober{dualStack: err == nil && bytes.Equal(bytes.TrimSpace(b), []byte("0"))}
}

// InUse reports whether a TCP (proto 6) or UDP (proto 17) socket of this
// network namespace is bound to port on any local IPv4 or IPv6 address. It
// asks the kernel by binding a fresh socket to the wildcard address without
// SO_REUSEADDR, which fails with EADDRINUSE exactly when some socket holds
// the port: a listener, a bound UDP socket, or a connection's local port.
//
// One dual-stack IPv6 socket (IPV6_V6ONLY off) asks for both families at
// once: its wildcard bind conflicts with a socket of either family on the
// port (Linux inet6 bind conflict rules). Where IPv6 is unavailable, an IPv4
// socket asks. The probe costs three system calls (four where
// net.ipv6.bindv6only is set) and no scan of the socket tables.
//
// A process without CAP_NET_BIND_SERVICE (portleased after its privilege
// drop) may not bind a port below net.ipv4.ip_unprivileged_port_start: the
// bind fails with EACCES, which says nothing of the port. For that case
// alone the kernel's socket tables are read instead (see tablesHold).
func (p *Prober) InUse(proto uint8, port uint16) bool {
	err := p.bind(proto, port)
	if errors.Is(err, unix.EACCES) {
		return tablesHold(proto, port)
	}
	return errors.Is(err, unix.EADDRINUSE)
}

// bind binds a fresh socket of proto to the wildcard address and port and
// returns bind's error.
func (p *Prober) bind(proto uint8, port uint16) error {
	typ := unix.SOCK_DGRAM
	if proto == unix.IPPROTO_TCP {
		typ = unix.SOCK_STREAM
	}
	if fd, err := unix.Socket(unix.AF_INET6, typ|unix.SOCK_CLOEXEC, 0); err == nil {
		if p.dualStack || unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0) == nil {
			err = unix.Bind(fd, &unix.SockaddrInet6{Port: int(port)})
			unix.Close(fd)
			return err
		}
		unix.Close(fd)
	}
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	err = unix.Bind(fd, &unix.SockaddrInet4{Port: int(port)})
	unix.Close(fd)
	return err
}
