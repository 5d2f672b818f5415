//go:build unix

package client

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// reuseAddrPort sets SO_REUSEADDR and SO_REUSEPORT, so that several
// listeners of one multicast port each get every datagram.
func reuseAddrPort(network, address string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
