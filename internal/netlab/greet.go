package netlab

import (
	"fmt"
	"testing"
)

// ServeGreeting runs a TCP server on h, listening on network ("tcp4" or
// "tcp6") at every address of that family and port, that writes greeting
// and a newline to every connection and closes it: the far end of the
// lab's traffic checks. It stops when the test ends; a listen error fails
// the test.
func ServeGreeting(t testing.TB, h *Host, network string, port uint16, greeting string) {
	t.Helper()
	addr := fmt.Sprintf("0.0.0.0:%d", port)
	if network == "tcp6" {
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
