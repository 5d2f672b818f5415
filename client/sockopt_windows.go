package client

import (
	"syscall"

	"golang.org/x/sys/windows"
)

// reuseAddrPort sets SO_REUSEADDR, which on Windows lets several sockets
// bind one multicast port, each getting every datagram (there is no
// SO_REUSEPORT).
func reuseAddrPort(network, address string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = windows.SetsockoptInt(windows.Handle(fd), windows.SOL_SOCKET, windows.SO_REUSEADDR, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
