package netlab

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// ServeGreeting runs a TCP server on h, listening on network ("tcp4",
// "tcp6", or "tcp" for both) at every address of that family and port, that writes greeting
// and a newline to every connection and closes it: the far end of the
// lab's traffic checks. It stops when the test ends; a listen error fails
// the test.
func ServeGreeting(t testing.TB, h *Host, network string, port uint16, greeting string) {
	t.Helper()
	addr := fmt.Sprintf(":%d", port)
	switch network {
	case "tcp4":
		addr = fmt.Sprintf("0.0.0.0:%d", port)
	case "tcp6":
		addr = fmt.Sprintf("[::]:%d", port)
	}
	ln, err := h.Listen(network, addr)
	if err != nil {
		t.Fatalf("netlab: %s listen on %s: %v", h.Name, addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, greeting)
			c.Close()
		}
	}()
}

// FetchLine connects from h over network to addr and returns the first line
// the server writes, without its newline: the near end of ServeGreeting.
// The connection and the read each get 3 s, so that a connection the
// gateway drops fails as a timeout.
func FetchLine(h *Host, network, addr string) (string, error) {
	return FetchLineFrom(h, network, netip.AddrPort{}, addr)
}

// FetchLineFrom is FetchLine from source endpoint src: any address when
// src's is not valid, any port when it is 0.
func FetchLineFrom(h *Host, network string, src netip.AddrPort, addr string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var c net.Conn
	err := h.Do(func() error {
		var d net.Dialer
		if src.Addr().IsValid() {
			d.LocalAddr = net.TCPAddrFromAddrPort(src)
		}
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}
