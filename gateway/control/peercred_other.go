//go:build !linux

package control

import (
	"errors"
	"net"
)

// PeerCred is Linux's SO_PEERCRED: elsewhere every peer is refused.
func PeerCred(c net.Conn) (Cred, error) {
	return Cred{}, errors.ErrUnsupported
}
