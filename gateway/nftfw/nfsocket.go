package nftfw

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// nlmsgHeaderLen is the size of a struct nlmsghdr.
const nlmsgHeaderLen = 16

// nfRecvBuffer is the size of an nfSocket's receive buffer: more than the
// largest chunk the kernel fills a dump with (dumpBuffer), which it sizes
// by the largest receive it has seen.
const nfRecvBuffer = 2 * dumpBuffer

// nfSocket is a netfilter netlink socket that Reconcile speaks to nftables
// over with messages it encodes and decodes itself: it receives into one
// buffer that it reuses, so that reading a dump of any size, or the
// answers to a transaction, takes a few allocations.
type nfSocket struct {
	c   *netlink.Conn
	raw syscall.RawConn
	seq uint32 // of the last message made
	buf []byte
	// n and err are the outcome of the last receive or send, out is what
	// send sends; read and write are given to raw (made once, so that
	// they allocate nothing).
	n           int
	err         error
	out         []byte
	read, write func(fd uintptr) bool
}

// dialNF opens an nfSocket in the network namespace netns (0 for the
// caller's own), and applies opts to it.
func dialNF(netns int, opts ...func(*netlink.Conn) error) (*nfSocket, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns})
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	raw, err := c.SyscallConn()
	for _, opt := range opts {
		if err == nil {
			err = opt(c)
		}
	}
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	s := &nfSocket{c: c, raw: raw, buf: make([]byte, nfRecvBuffer)}
	s.read, s.write = s.recvOnce, s.sendOnce
	return s, nil
}

func (s *nfSocket) close() error { return s.c.Close() }

// nextSeq returns the sequence number of the next message.
func (s *nfSocket) nextSeq() uint32 {
	s.seq++
	return s.seq
}

// recvOnce receives one datagram into s.buf; it reports false (wait for
// the socket to be readable) when there is none yet.
func (s *nfSocket) recvOnce(fd uintptr) bool {
	// MSG_TRUNC: n is the datagram's real length, so that one larger
	// than the buffer is noticed.
	s.n, _, s.err = unix.Recvfrom(int(fd), s.buf, unix.MSG_TRUNC)
	return s.err != unix.EAGAIN && s.err != unix.EINTR
}

// recv returns the next datagram, a slice of s.buf valid until the next
// recv.
func (s *nfSocket) recv() ([]byte, error) {
	if err := s.raw.Read(s.read); err != nil {
		return nil, err
	}
	if s.err != nil {
		return nil, s.err
	}
	if s.n > len(s.buf) {
		return nil, fmt.Errorf("netlink message of %d bytes, more than the %d-byte buffer", s.n, len(s.buf))
	}
	return s.buf[:s.n], nil
}

// kernelAddr is the netlink address of the kernel.
var kernelAddr = &unix.SockaddrNetlink{Family: unix.AF_NETLINK}

func (s *nfSocket) sendOnce(fd uintptr) bool {
	s.err = unix.Sendto(int(fd), s.out, 0, kernelAddr)
	return s.err != unix.EAGAIN && s.err != unix.EINTR
}

// send sends b, one or more messages, in one datagram.
func (s *nfSocket) send(b []byte) error {
	s.out = b
	err := s.raw.Write(s.write)
	s.out = nil
	if err != nil {
		return err
	}
	return s.err
}

// nlMsg is a netlink message in a datagram received.
type nlMsg struct {
	typ, flags uint16
	seq        uint32
	payload    []byte
}

// nextMsg splits the first netlink message off the datagram b. ok is false
// when b is empty.
func nextMsg(b []byte) (m nlMsg, rest []byte, ok bool, err error) {
	if len(b) == 0 {
		return nlMsg{}, nil, false, nil
	}
	if len(b) < nlmsgHeaderLen {
		return nlMsg{}, nil, false, fmt.Errorf("netlink message of %d bytes", len(b))
	}
	n := int(binary.NativeEndian.Uint32(b))
	if n < nlmsgHeaderLen || n > len(b) {
		return nlMsg{}, nil, false, fmt.Errorf("netlink message length %d of %d bytes", n, len(b))
	}
	m = nlMsg{
		typ:     binary.NativeEndian.Uint16(b[4:]),
		flags:   binary.NativeEndian.Uint16(b[6:]),
		seq:     binary.NativeEndian.Uint32(b[8:]),
		payload: b[nlmsgHeaderLen:n],
	}
	return m, b[min((n+3)&^3, len(b)):], true, nil
}

// errnoOf returns the error an NLMSG_ERROR or NLMSG_DONE message m reports
// (both carry a negated errno, zero for an acknowledgement or a complete
// dump).
func errnoOf(m nlMsg) error {
	if len(m.payload) < 4 {
		return fmt.Errorf("netlink message type %d of %d bytes", m.typ, len(m.payload))
	}
	if code := int32(binary.NativeEndian.Uint32(m.payload)); code != 0 {
		return unix.Errno(-code)
	}
	return nil
}

// appendMsgHeader appends a struct nlmsghdr whose length is patched by
// endMsg, and returns where the message starts.
func appendMsgHeader(b []byte, typ, flags uint16, seq uint32) ([]byte, int) {
	start := len(b)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0) // port ID: the kernel sets it
	return b, start
}

// endMsg sets the length of the message that starts at start.
func endMsg(b []byte, start int) {
	binary.NativeEndian.PutUint32(b[start:], uint32(len(b)-start))
}

// appendNfgen appends a struct nfgenmsg.
func appendNfgen(b []byte, family uint8, resID uint16) []byte {
	b = append(b, family, unix.NFNETLINK_V0)
	return binary.BigEndian.AppendUint16(b, resID)
}

// appendNLAttr appends a netlink attribute, padded to 4 bytes.
func appendNLAttr(b []byte, typ uint16, payload []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(nlaHeaderLen+len(payload)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, payload...)
	return padAttr(b)
}

// appendU64Attr appends an attribute of a big-endian 64-bit number.
func appendU64Attr(b []byte, typ uint16, v uint64) []byte {
	b = binary.NativeEndian.AppendUint16(b, nlaHeaderLen+8)
	b = binary.NativeEndian.AppendUint16(b, typ)
	return binary.BigEndian.AppendUint64(b, v)
}

// appendStringAttr appends a NUL-terminated string attribute.
func appendStringAttr(b []byte, typ uint16, s string) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(nlaHeaderLen+len(s)+1))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, s...)
	b = append(b, 0)
	return padAttr(b)
}

// startNested appends the header of a nested attribute, whose length
// endNested patches, and returns where it starts.
func startNested(b []byte, typ uint16) ([]byte, int) {
	start := len(b)
	b = binary.NativeEndian.AppendUint16(b, 0)
	b = binary.NativeEndian.AppendUint16(b, typ|unix.NLA_F_NESTED)
	return b, start
}

// endNested sets the length of the nested attribute that starts at start.
func endNested(b []byte, start int) {
	binary.NativeEndian.PutUint16(b[start:], uint16(len(b)-start))
}

func padAttr(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
