//go:build !linux

package ssdpsrv

import "syscall"

// controlShared leaves the socket's options as they are: outside Linux
// port 1900 is not shared with other SSDP listeners.
func controlShared(network, address string, c syscall.RawConn) error { return nil }

// controlShared6 is controlShared for IPv6.
func controlShared6(network, address string, c syscall.RawConn) error { return nil }
