package client

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// udpSocket is a UDP socket from one of this machine's addresses to a
// gateway's port, connected so that the kernel drops packets from any other
// address or port: only the gateway asked can answer. It is opened in the
// client's namespace on first use. NAT-PMP and PCP each keep their own.
type udpSocket struct {
	ns     *nsRunner
	server netip.AddrPort
	local  netip.Addr

	// mu guards conn and closed.
	mu     sync.Mutex
	conn   *net.UDPConn
	closed bool
}

// socket returns the connected socket, opening it on first use; what names
// the protocol in errors.
func (s *udpSocket) socket(what string) (*net.UDPConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.conn != nil {
		return s.conn, nil
	}
	network := "udp4"
	if s.server.Addr().Is6() {
		network = "udp6"
	}
	err := s.ns.do(func() error {
		var err error
		laddr := &net.UDPAddr{IP: s.local.AsSlice(), Zone: s.local.Zone()}
		s.conn, err = net.DialUDP(network, laddr, net.UDPAddrFromAddrPort(s.server))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("client: %s socket to %s: %w", what, s.server, err)
	}
	return s.conn, nil
}

// close closes the socket; later transactions fail with ErrClosed.
func (s *udpSocket) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}
