package nftfw

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// nlmsgHeaderLen is the size of a struct nlmsghdr.
const nlmsgHeaderLen = 16

// dumpRecvBuffer is the size of the dumper's receive buffer: more than the
// largest chunk the kernel fills (dumpBuffer), which it sizes by the
// largest receive it has seen.
const dumpRecvBuffer = 2 * dumpBuffer

// dumpTries bounds the reads of a set whose dump the kernel reports as
// interrupted by a change of the ruleset.
const dumpTries = 3

// errDumpInterrupted is returned when the kernel flagged a dump
// NLM_F_DUMP_INTR: the ruleset changed while it was read, so elements may
// be missing from it or be in it twice.
var errDumpInterrupted = errors.New("nftfw: dump interrupted by a ruleset change")

// elemDumper reads the elements of sets over a netlink socket of its own,
// into one buffer that it reuses: a dump of any size takes a few
// allocations, and an element none (decodeSetElemMsg).
type elemDumper struct {
	c   *netlink.Conn
	raw syscall.RawConn
	buf []byte
	// n and err are the outcome of the last recv, and read the function
	// given to raw.Read (made once, so that a receive allocates nothing).
	n    int
	err  error
	read func(fd uintptr) bool
}

// dialDumper opens an elemDumper in the network namespace netns (0 for the
// caller's own).
func dialDumper(netns int) (*elemDumper, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns})
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	raw, err := c.SyscallConn()
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	d := &elemDumper{c: c, raw: raw, buf: make([]byte, dumpRecvBuffer)}
	d.read = d.recvOnce
	return d, nil
}

func (d *elemDumper) close() error { return d.c.Close() }

// recvOnce receives one datagram into d.buf; it reports false (wait for
// the socket to be readable) when there is none yet.
func (d *elemDumper) recvOnce(fd uintptr) bool {
	// MSG_TRUNC: n is the datagram's real length, so that one larger
	// than the buffer is noticed.
	d.n, _, d.err = unix.Recvfrom(int(fd), d.buf, unix.MSG_TRUNC)
	return d.err != unix.EAGAIN && d.err != unix.EINTR
}

// recv returns the next datagram, a slice of d.buf valid until the next
// recv.
func (d *elemDumper) recv() ([]byte, error) {
	if err := d.raw.Read(d.read); err != nil {
		return nil, err
	}
	if d.err != nil {
		return nil, d.err
	}
	if d.n > len(d.buf) {
		return nil, fmt.Errorf("netlink message of %d bytes, more than the %d-byte buffer", d.n, len(d.buf))
	}
	return d.buf[:d.n], nil
}

// elements calls fn for each element of the set name of the inet table
// table, as one dump reads them. When the kernel reports the dump
// interrupted, it calls restart and reads the set again, up to dumpTries
// times in all. An error of fn stops the dump and is returned.
func (d *elemDumper) elements(table, name string, restart func(), fn func(dumpedElem) error) error {
	for try := 1; ; try++ {
		err := d.dumpOnce(table, name, fn)
		if !errors.Is(err, errDumpInterrupted) || try == dumpTries {
			return err
		}
		restart()
	}
}

// dumpOnce sends one NFT_MSG_GETSETELEM dump request and reads its answer
// to the end, even past an interruption, which it then returns.
func (d *elemDumper) dumpOnce(table, name string, fn func(dumpedElem) error) error {
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.NFTA_SET_ELEM_LIST_TABLE, table)
	ae.String(unix.NFTA_SET_ELEM_LIST_SET, name)
	attrs, err := ae.Encode()
	if err != nil {
		return err
	}
	req, err := d.c.Send(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETSETELEM),
			Flags: netlink.Request | netlink.Dump,
		},
		Data: append([]byte{unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0}, attrs...),
	})
	if err != nil {
		return err
	}
	var interrupted, failed error
	for {
		b, err := d.recv()
		if err != nil {
			return err
		}
		for len(b) > 0 {
			if len(b) < nlmsgHeaderLen {
				return fmt.Errorf("netlink message of %d bytes", len(b))
			}
			n := int(binary.NativeEndian.Uint32(b))
			if n < nlmsgHeaderLen || n > len(b) {
				return fmt.Errorf("netlink message length %d of %d bytes", n, len(b))
			}
			typ := binary.NativeEndian.Uint16(b[4:])
			flags := binary.NativeEndian.Uint16(b[6:])
			seq := binary.NativeEndian.Uint32(b[8:])
			payload := b[nlmsgHeaderLen:n]
			b = b[min((n+3)&^3, len(b)):]
			if seq != req.Header.Sequence {
				continue // not ours
			}
			if flags&unix.NLM_F_DUMP_INTR != 0 {
				interrupted = errDumpInterrupted
			}
			switch typ {
			case unix.NLMSG_NOOP:
			case unix.NLMSG_ERROR, unix.NLMSG_DONE:
				// Both carry an errno, negated; zero for an
				// acknowledgement or a complete dump.
				if len(payload) < 4 {
					return fmt.Errorf("netlink message type %d of %d bytes", typ, len(payload))
				}
				if code := int32(binary.NativeEndian.Uint32(payload)); code != 0 {
					return unix.Errno(-code)
				}
				return errors.Join(failed, interrupted)
			case unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWSETELEM:
				// After an error of fn, read on to the end, so
				// that the socket can dump again.
				if failed == nil {
					failed = decodeSetElemMsg(payload, fn)
				}
			default:
				return fmt.Errorf("unexpected netlink message type %#x in a set element dump", typ)
			}
		}
	}
}
