package control

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxPeerGroups bounds the supplementary groups read (NGROUPS_MAX is
// 65536; a process with more than this many is refused, not misread).
const maxPeerGroups = 1024

// PeerCred returns the credentials of c's peer (SO_PEERCRED and
// SO_PEERGROUPS, socket(7)); c must be a Unix socket connection.
func PeerCred(c net.Conn) (Cred, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return Cred{}, fmt.Errorf("control: peer credentials: %T is not a socket", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return Cred{}, fmt.Errorf("control: peer credentials: %w", err)
	}
	var cred Cred
	var opErr error
	err = raw.Control(func(fd uintptr) {
		u, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			opErr = fmt.Errorf("control: SO_PEERCRED: %w", err)
			return
		}
		cred = Cred{PID: int(u.Pid), UID: int(u.Uid), GID: int(u.Gid)}
		cred.Groups, opErr = peerGroups(int(fd))
	})
	if err == nil {
		err = opErr
	}
	return cred, err
}

// peerGroups reads SO_PEERGROUPS (Linux 4.13): the peer's supplementary
// groups, as 32-bit gids. An older kernel (ENOPROTOOPT) gives nil and no
// error: the primary group alone is checked then.
func peerGroups(fd int) ([]int, error) {
	buf := make([]byte, 4*maxPeerGroups)
	n := uint32(len(buf))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
		uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
	switch {
	case errno == unix.ENOPROTOOPT:
		return nil, nil
	case errno == unix.ERANGE:
		return nil, errors.New("control: SO_PEERGROUPS: the peer has more than 1024 groups")
	case errno != 0:
		return nil, fmt.Errorf("control: SO_PEERGROUPS: %w", errno)
	}
	groups := make([]int, 0, n/4)
	for i := uint32(0); i+4 <= n; i += 4 {
		groups = append(groups, int(binary.NativeEndian.Uint32(buf[i:])))
	}
	return groups, nil
}
