package natpmpsrv

import (
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// listener is one socket bound to a LAN address, IPv4 or IPv6, with the
// interface it serves.
type listener struct {
	conn    *net.UDPConn
	v4      *ipv4.PacketConn // set on an IPv4 socket
	v6      *ipv6.PacketConn // set on an IPv6 socket
	ifindex int
	port    uint16
	// subnet is the on-link prefix of the address the socket serves: a
	// request from outside it gets no answer.
	subnet netip.Prefix
}

// newListener asks the kernel for each packet's interface and destination
// and sets the interface and scope of the socket's multicast.
func newListener(conn *net.UDPConn, ifindex int, subnet netip.Prefix) (*listener, error) {
	local, _ := conn.LocalAddr().(*net.UDPAddr)
	l := &listener{conn: conn, ifindex: ifindex, subnet: subnet.Masked()}
	if local != nil {
		l.port = uint16(local.Port)
	}
	ifi, ifErr := net.InterfaceByIndex(ifindex)
	if local != nil && local.IP.To4() == nil {
		pc := ipv6.NewPacketConn(conn)
		if err := pc.SetControlMessage(ipv6.FlagInterface|ipv6.FlagDst, true); err != nil {
			return nil, err
		}
		if ifErr == nil {
			if err := pc.SetMulticastInterface(ifi); err != nil {
				return nil, err
			}
		}
		_ = pc.SetMulticastHopLimit(1)
		_ = pc.SetMulticastLoopback(false)
		l.v6 = pc
		return l, nil
	}
	pc := ipv4.NewPacketConn(conn)
	if err := pc.SetControlMessage(ipv4.FlagInterface|ipv4.FlagDst, true); err != nil {
		return nil, err
	}
	if ifErr == nil {
		if err := pc.SetMulticastInterface(ifi); err != nil {
			return nil, err
		}
	}
	_ = pc.SetMulticastTTL(1)
	_ = pc.SetMulticastLoopback(false)
	l.v4 = pc
	return l, nil
}

// read reads one datagram into b. ok is false for a datagram that arrived
// through another interface than the listener's, which must be ignored
// (RFC 6886 §3, RFC 6887 §8.3: never answer the WAN side).
func (l *listener) read(b []byte) (n int, src, dst netip.AddrPort, ok bool, err error) {
	var from net.Addr
	var ifindex int
	var to net.IP
	if l.v6 != nil {
		var cm *ipv6.ControlMessage
		n, cm, from, err = l.v6.ReadFrom(b)
		if cm != nil {
			ifindex, to = cm.IfIndex, cm.Dst
		}
	} else {
		var cm *ipv4.ControlMessage
		n, cm, from, err = l.v4.ReadFrom(b)
		if cm != nil {
			ifindex, to = cm.IfIndex, cm.Dst
		}
	}
	if err != nil {
		return 0, src, dst, false, err
	}
	udp, isUDP := from.(*net.UDPAddr)
	if !isUDP || ifindex != l.ifindex || ifindex == 0 {
		return n, src, dst, false, nil
	}
	if a, isIP := netip.AddrFromSlice(to); isIP {
		dst = netip.AddrPortFrom(a.Unmap(), l.port)
	}
	return n, udp.AddrPort(), dst, true, nil
}

// onLink reports whether a request from src may be answered: src is on the
// subnet of the address the socket serves, or, on an IPv6 socket, a
// link-local address (fe80::/10), which only a host on the link can have
// since the packet arrived through the listener's interface (read checks
// that). Anything else is spoofed or belongs to another subnet that shares
// the link, and is no client of this address.
func (l *listener) onLink(src netip.Addr) bool {
	src = src.Unmap().WithZone("")
	if l.v6 != nil && src.Is6() && src.IsLinkLocalUnicast() {
		return true
	}
	return l.subnet.Contains(src)
}

// multicast sends b to the group dst on the listener's interface.
func (l *listener) multicast(b []byte, dst netip.AddrPort) error {
	to := net.UDPAddrFromAddrPort(dst)
	if l.v6 != nil {
		_, err := l.v6.WriteTo(b, &ipv6.ControlMessage{IfIndex: l.ifindex}, to)
		return err
	}
	_, err := l.v4.WriteTo(b, nil, to)
	return err
}
