package ssdpsrv

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// inbound is a socket that receives searches, of either family: exactly
// one of pc4 and pc6 is set.
type inbound struct {
	conn *net.UDPConn
	pc4  *ipv4.PacketConn
	pc6  *ipv6.PacketConn
	// unicastOnly drops multicast searches (the SearchPort socket).
	unicastOnly bool
}

// listenShared opens a UDP socket on addr, of addr's family, that shares
// its port (SO_REUSEADDR, SO_REUSEPORT) and reports each datagram's
// interface and destination (IP_PKTINFO, IPV6_RECVPKTINFO). An IPv6 socket
// is IPv6 only (Go sets IPV6_V6ONLY for "udp6"): IPv4 has its own sockets.
func listenShared(addr netip.AddrPort) (*inbound, error) {
	network, control := "udp4", controlShared
	if !addr.Addr().Is4() {
		network, control = "udp6", controlShared6
	}
	lc := net.ListenConfig{Control: control}
	c, err := lc.ListenPacket(context.Background(), network, addr.String())
	if err != nil {
		return nil, fmt.Errorf("ssdpsrv: listen on %v: %w", addr, err)
	}
	conn := c.(*net.UDPConn)
	in := &inbound{conn: conn}
	if network == "udp4" {
		in.pc4 = ipv4.NewPacketConn(conn)
		err = in.pc4.SetControlMessage(ipv4.FlagInterface|ipv4.FlagDst, true)
	} else {
		in.pc6 = ipv6.NewPacketConn(conn)
		err = in.pc6.SetControlMessage(ipv6.FlagInterface|ipv6.FlagDst, true)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ssdpsrv: packet info on %v: %w", addr, err)
	}
	return in, nil
}

// readFrom reads a datagram into buf, with the interface it came through
// and the address it was sent to (unmapped); ok is false when the kernel
// did not say.
func (in *inbound) readFrom(buf []byte) (n, ifindex int, dst netip.Addr, src netip.AddrPort, ok bool, err error) {
	var from net.Addr
	var dstIP net.IP
	if in.pc4 != nil {
		var cm *ipv4.ControlMessage
		n, cm, from, err = in.pc4.ReadFrom(buf)
		if cm != nil {
			ifindex, dstIP, ok = cm.IfIndex, cm.Dst, true
		}
	} else {
		var cm *ipv6.ControlMessage
		n, cm, from, err = in.pc6.ReadFrom(buf)
		if cm != nil {
			ifindex, dstIP, ok = cm.IfIndex, cm.Dst, true
		}
	}
	if err != nil {
		return 0, 0, netip.Addr{}, netip.AddrPort{}, false, err
	}
	udp, isUDP := from.(*net.UDPAddr)
	if !isUDP {
		return n, 0, netip.Addr{}, netip.AddrPort{}, false, nil
	}
	dst, _ = netip.AddrFromSlice(dstIP)
	return n, ifindex, dst.Unmap(), udp.AddrPort(), ok, nil
}

// writeTo sends b to dst, from src (unless it is the zero Addr) through
// interface ifindex (unless 0).
func (in *inbound) writeTo(b []byte, src netip.Addr, ifindex int, dst netip.AddrPort) error {
	to := net.UDPAddrFromAddrPort(dst)
	var srcIP net.IP
	if src.IsValid() {
		srcIP = src.AsSlice()
	}
	var err error
	if in.pc4 != nil {
		var cm *ipv4.ControlMessage
		if srcIP != nil || ifindex != 0 {
			cm = &ipv4.ControlMessage{Src: srcIP, IfIndex: ifindex}
		}
		_, err = in.pc4.WriteTo(b, cm, to)
	} else {
		var cm *ipv6.ControlMessage
		if srcIP != nil || ifindex != 0 {
			cm = &ipv6.ControlMessage{Src: srcIP, IfIndex: ifindex}
		}
		_, err = in.pc6.WriteTo(b, cm, to)
	}
	return err
}

// setMulticast makes the socket send multicast through ifi with the given
// TTL (hop limit) and without loopback.
func (in *inbound) setMulticast(ifi *net.Interface, ttl int) error {
	if in.pc4 != nil {
		if err := in.pc4.SetMulticastInterface(ifi); err != nil {
			return fmt.Errorf("ssdpsrv: multicast interface %s: %w", ifi.Name, err)
		}
		if err := in.pc4.SetMulticastTTL(ttl); err != nil {
			return fmt.Errorf("ssdpsrv: multicast TTL on %s: %w", ifi.Name, err)
		}
		if err := in.pc4.SetMulticastLoopback(false); err != nil {
			return fmt.Errorf("ssdpsrv: multicast loopback on %s: %w", ifi.Name, err)
		}
		return nil
	}
	if err := in.pc6.SetMulticastInterface(ifi); err != nil {
		return fmt.Errorf("ssdpsrv: multicast interface %s: %w", ifi.Name, err)
	}
	if err := in.pc6.SetMulticastHopLimit(ttl); err != nil {
		return fmt.Errorf("ssdpsrv: multicast hop limit on %s: %w", ifi.Name, err)
	}
	if err := in.pc6.SetMulticastLoopback(false); err != nil {
		return fmt.Errorf("ssdpsrv: multicast loopback on %s: %w", ifi.Name, err)
	}
	return nil
}

// join joins group on ifi.
func (in *inbound) join(ifi *net.Interface, group netip.Addr) error {
	g := &net.UDPAddr{IP: group.AsSlice()}
	if in.pc4 != nil {
		return in.pc4.JoinGroup(ifi, g)
	}
	return in.pc6.JoinGroup(ifi, g)
}
