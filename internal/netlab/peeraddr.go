package netlab

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// peerAddrTimeout bounds each connection attempt and read of the peer
// address checks: long enough on a loaded machine, short enough for the
// attempts that must fail.
const peerAddrTimeout = 2 * time.Second

// ServePeerAddr accepts connections on ln and answers each with the peer
// address it sees and a newline, then closes it: the far end of the
// checks of what a translation did to a connection's source. It stops when
// ln is closed, at the latest when the test ends.
func ServePeerAddr(t testing.TB, ln net.Listener) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(c.RemoteAddr().String() + "\n"))
			c.Close()
		}
	}()
}

// ServePeerAddrUDP answers each datagram on pc with the peer address it
// sees. It stops when pc is closed, at the latest when the test ends.
func ServePeerAddrUDP(t testing.TB, pc net.PacketConn) {
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(from.String()), from)
		}
	}()
}

// AskPeerAddr dials addr over TCP from h and returns the peer address a
// ServePeerAddr server saw.
func AskPeerAddr(h *Host, addr string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), peerAddrTimeout)
	defer cancel()
	c, err := h.Dial(ctx, "tcp4", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(peerAddrTimeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// OutboundSource sends a datagram from local on lan to port 9999 of wan
// and returns the source address and port it arrives from: what the
// gateway's outbound translation made of local. Nothing arriving fails
// the test.
func OutboundSource(t testing.TB, lan *Host, local string, wan *Host) string {
	t.Helper()
	recv, err := wan.ListenPacket("udp4", wan.Addr4.String()+":9999")
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	send, err := lan.ListenPacket("udp4", local)
	if err != nil {
		t.Fatal(err)
	}
	defer send.Close()
	if _, err := send.WriteTo([]byte("out"), net.UDPAddrFromAddrPort(netip.AddrPortFrom(wan.Addr4, 9999))); err != nil {
		t.Fatal(err)
	}
	_ = recv.SetReadDeadline(time.Now().Add(peerAddrTimeout))
	buf := make([]byte, 100)
	_, from, err := recv.ReadFrom(buf)
	if err != nil {
		t.Fatalf("%s received nothing from %s: %v", wan.NS, local, err)
	}
	return from.String()
}
