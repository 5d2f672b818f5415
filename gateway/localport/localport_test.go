package localport

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestInUse: a socket of either family, on a specific or the wildcard
// address, makes its port in use for its protocol, and only while it is
// open; whether or not the prober trusts the namespace's IPv6 sockets to be
// dual-stack by default.
func TestInUse(t *testing.T) {
	for _, p := range []*Prober{NewProber(), {dualStack: false}} {
		t.Run(fmt.Sprintf("dualStack=%v", p.dualStack), func(t *testing.T) { testInUse(t, p) })
	}
}

func testInUse(t *testing.T, p *Prober) {
	for _, tc := range []struct{ network, addr string }{
		{"tcp4", "127.0.0.1:0"},
		{"tcp4", "0.0.0.0:0"},
		{"tcp6", "[::1]:0"},
		{"udp4", "127.0.0.1:0"},
		{"udp4", "0.0.0.0:0"},
		{"udp6", "[::1]:0"},
	} {
		t.Run(tc.network+" "+tc.addr, func(t *testing.T) {
			var port uint16
			var closer interface{ Close() error }
			proto := uint8(unix.IPPROTO_UDP)
			if strings.HasPrefix(tc.network, "tcp") {
				proto = unix.IPPROTO_TCP
				ln, err := net.Listen(tc.network, tc.addr)
				if err != nil {
					t.Skip("cannot listen:", err)
				}
				port, closer = uint16(ln.Addr().(*net.TCPAddr).Port), ln
			} else {
				c, err := net.ListenPacket(tc.network, tc.addr)
				if err != nil {
					t.Skip("cannot listen:", err)
				}
				port, closer = uint16(c.LocalAddr().(*net.UDPAddr).Port), c
			}
			if !p.InUse(proto, port) {
				t.Errorf("InUse(%d, %d) = false with a socket bound to it", proto, port)
			}
			closer.Close()
			if p.InUse(proto, port) {
				t.Errorf("InUse(%d, %d) = true after the socket closed", proto, port)
			}
		})
	}
}

// BenchmarkInUse measures one probe of a free port, with the dual-stack
// default trusted (three system calls) and not (four).
func BenchmarkInUse(b *testing.B) {
	for _, p := range []*Prober{NewProber(), {dualStack: false}} {
		b.Run(fmt.Sprintf("dualStack=%v", p.dualStack), func(b *testing.B) {
			for b.Loop() {
				p.InUse(unix.IPPROTO_UDP, 47999)
			}
		})
	}
}
