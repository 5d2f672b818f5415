//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package igdclient

import "syscall"

// reuseControl does nothing where SO_REUSEPORT is not known: the SSDP port
// is then shared only if the system shares it by default.
func reuseControl(_, _ string, _ syscall.RawConn) error { return nil }
