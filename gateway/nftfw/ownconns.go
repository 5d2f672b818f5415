package nftfw

import (
	"fmt"
	"slices"
	"sync"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// maxOwnPortIDs bounds the port IDs remembered: those of the current
// connection and of the connections it replaced, or of the transient
// connections opened when a lasting one could not be.
const maxOwnPortIDs = 64

// ownConns remembers the netlink connections a Firewall opens: their port
// IDs, which the kernel puts in the nlmsg_pid of the nftables events a
// transaction causes (so that Watch can tell the Firewall's own changes from
// others'), and the send buffer of the last one, which bounds a transaction.
type ownConns struct {
	mu      sync.Mutex
	ids     []uint32 // oldest first
	sendBuf int      // bytes; 0 until known
}

// record is a nftables.SockOption: it remembers the port ID of c and its
// send buffer.
func (o *ownConns) record(c *netlink.Conn) error {
	size := 0
	if rc, err := c.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			// Linux reports twice the size asked for, the usable room.
			size, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
		})
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.ids) == maxOwnPortIDs {
		o.ids = slices.Delete(o.ids, 0, 1)
	}
	o.ids = append(o.ids, c.PID())
	if size > 0 {
		o.sendBuf = size
	}
	return nil
}

// has reports whether id is the port ID of one of the connections.
func (o *ownConns) has(id uint32) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Contains(o.ids, id)
}

// sendBuffer returns the send buffer of the last connection, or def when it
// is not known.
func (o *ownConns) sendBuffer(def int) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.sendBuf == 0 {
		return def
	}
	return o.sendBuf
}

// dumpBuffer is the size of the receive the kernel is shown once, so that it
// fills dumps in chunks of that size (the most it takes is 32 KiB) rather
// than of a page. Dumping a hash set costs a walk of the set up to the
// chunk's start for each chunk: with 32 KiB chunks a dump of 100,000
// elements takes several times less than with 4 KiB ones.
const dumpBuffer = 32 << 10

// widenDumps is a nftables.SockOption: it makes the kernel fill the dumps
// of c in chunks of dumpBuffer. The kernel sizes them by the largest
// receive it has seen on the socket, and the netlink library receives a
// page at first; so it asks for the ruleset generation and receives the
// answer with a dumpBuffer-byte receive.
func widenDumps(c *netlink.Conn) error {
	req := netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN),
			Flags: netlink.Request,
		},
		Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	}
	if _, err := c.Send(req); err != nil {
		return fmt.Errorf("ask generation: %w", err)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	buf := make([]byte, dumpBuffer)
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		_, _, rerr = unix.Recvfrom(int(fd), buf, 0)
		return rerr != unix.EAGAIN
	}); err != nil {
		return err
	}
	if rerr != nil {
		return fmt.Errorf("read generation: %w", rerr)
	}
	return nil
}
